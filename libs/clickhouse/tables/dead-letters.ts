// The `dead_letters` table (schemas/clickhouse/0003_dead_letters.sql): records a stage could
// not process, kept 30 days (TTL) for inspection and replay; a plain MergeTree.
import type { ClickHouseClient } from '@clickhouse/client';
import { ms, nullableStr, selectList, str, type JsonRow } from './row-values.js';

/** A dead letter as a stage reports it. */
export interface DeadLetterInput {
  tenant_id: string;
  stage: string;
  reason: string;
  event_id?: string | null;
  /** the record as received: a string/Buffer is stored verbatim, anything else as JSON */
  payload: unknown;
  error?: unknown;
  /** ms; defaults to the time of the write */
  received_at?: number;
}

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
type MissingDeadLetterColumns = Exclude<keyof DeadLetterRow, (typeof DEAD_LETTER_COLUMNS)[number]>;
const allDeadLetterColumnsListed: MissingDeadLetterColumns extends never ? true : MissingDeadLetterColumns = true;
void allDeadLetterColumnsListed;

/** SELECT list whose rows parseDeadLetterRow reads. */
export const DEAD_LETTER_SELECT = selectList(DEAD_LETTER_COLUMNS, new Set(['received_at']));

export function toDeadLetterRow(d: DeadLetterInput, now: number): DeadLetterRow {
  return {
    tenant_id: d.tenant_id,
    received_at: d.received_at ?? now,
    stage: d.stage,
    reason: d.reason,
    event_id: d.event_id ?? null,
    payload: encodePayload(d.payload),
    error: d.error === undefined || d.error === null ? null : describeError(d.error),
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

function encodePayload(p: unknown): string {
  if (typeof p === 'string') return p;
  if (Buffer.isBuffer(p)) return p.toString('utf8');
  try {
    return JSON.stringify(p) ?? 'null';
  } catch {
    return String(p);
  }
}

function describeError(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return typeof err === 'string' ? err : encodePayload(err);
}
