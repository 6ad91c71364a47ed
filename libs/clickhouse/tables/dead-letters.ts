// The `dead_letters` table (schemas/clickhouse/0003_dead_letters.sql): inputs a stage could not
// process, kept 30 days (TTL) for inspection and replay; a plain MergeTree. Both runners write
// the same row for the same failure (libs/events/dead-letter.ts): received_at is when the stage
// gave up, and the payload is one JSON format, read back by parseDeadLetterPayload.
import type { ClickHouseClient } from '@clickhouse/client';
import stableStringify from 'safe-stable-stringify';
import type { DeadLetter } from '../../events/dead-letter.js';
import { ms, nullableStr, selectList, str, type JsonRow } from './row-values.js';
import type { AllColumnsListed } from './table-columns.js';

/** One row of `dead_letters`; times in ms. */
export interface DeadLetterRow {
  tenant_id: string;
  received_at: number;
  stage: string;
  reason: string;
  event_id: string | null;
  payload: string;
  error: string | null;
}

export const DEAD_LETTER_COLUMNS = ['tenant_id', 'received_at', 'stage', 'reason', 'event_id', 'payload', 'error'] as const satisfies readonly (keyof DeadLetterRow)[];

// Compile-time guard: DEAD_LETTER_COLUMNS names every DeadLetterRow key.
const allDeadLetterColumnsListed: AllColumnsListed<DeadLetterRow, typeof DEAD_LETTER_COLUMNS> = true;
void allDeadLetterColumnsListed;

/** SELECT list whose rows parseDeadLetterRow reads. */
export const DEAD_LETTER_SELECT = selectList(DEAD_LETTER_COLUMNS, new Set(['received_at']));

/**
 * What a dead letter's payload holds: the input the stage was given, or the bytes of a record
 * that could not be read at all.
 */
export type DeadLetterPayload = { input: unknown } | { unreadable: Buffer };

/**
 * The payload text: `{"input":<the stage's input>}` with keys sorted (the same text whichever
 * runner wrote it), or `{"unreadable_base64":"…"}`.
 */
export function deadLetterPayload(letter: Pick<DeadLetter, 'input' | 'unreadable'>): string {
  if (letter.input === undefined) return JSON.stringify({ unreadable_base64: (letter.unreadable ?? Buffer.alloc(0)).toString('base64') });
  return stableStringify({ input: letter.input }) ?? '{"input":null}';
}

/**
 * Reads a payload back. Rows written before this format (kept until their TTL) read too: the
 * fleet's `{"value_base64":…}` as unreadable bytes, the embedded runner's bare event JSON as the
 * input, and any other text as unreadable bytes.
 */
export function parseDeadLetterPayload(payload: string): DeadLetterPayload {
  let parsed: unknown;
  try {
    parsed = JSON.parse(payload);
  } catch {
    return { unreadable: Buffer.from(payload, 'utf8') };
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return { input: parsed };
  const fields = new Map(Object.entries(parsed));
  if (fields.size === 1 && fields.has('input')) return { input: fields.get('input') };
  for (const key of ['unreadable_base64', 'value_base64']) {
    const b64 = fields.get(key);
    if (typeof b64 === 'string') return { unreadable: Buffer.from(b64, 'base64') };
  }
  return { input: parsed };
}

export function toDeadLetterRow(letter: DeadLetter): DeadLetterRow {
  return {
    tenant_id: letter.tenantId ?? '',
    received_at: letter.failedAt,
    stage: letter.stage,
    reason: letter.reason,
    event_id: letter.eventId,
    payload: deadLetterPayload(letter),
    error: letter.error,
  };
}

export function parseDeadLetterRow(r: JsonRow): DeadLetterRow {
  return {
    tenant_id: str(r.tenant_id),
    received_at: ms(r.received_at),
    stage: str(r.stage),
    reason: str(r.reason),
    event_id: nullableStr(r.event_id),
    payload: str(r.payload),
    error: nullableStr(r.error),
  };
}

export async function insertDeadLetters(client: ClickHouseClient, rows: readonly DeadLetterRow[], table = 'dead_letters'): Promise<void> {
  if (rows.length === 0) return;
  await client.insert({ table, values: rows, format: 'JSONEachRow' });
}
