// The `history_translations` table (schemas/clickhouse/0012_history_translation.sql): one receipt
// per history translation request (issue 15 item 2), a ReplacingMergeTree(version) on request_id.
// NOTE: counts and times only — never an id or a value.
import type { ClickHouseClient } from '@clickhouse/client';
import { RECEIPT_STATUSES, type ReceiptStatus } from './overwrite-requests.js';
import { ms, nullableMs, nullableStr, num, numberMap, oneOf, selectList, str, type JsonRow } from './row-values.js';
import { insertRows, type AllColumnsListed } from './table-columns.js';

/** A translation's receipt; times in ms. */
export interface TranslationReceipt {
  request_id: string;
  tenant_id: string;
  status: ReceiptStatus;
  /** the version the history was translated to (0 until the compactor picked it) */
  key_version: number;
  /** the tenant's anonymizeSince: what was received before it is translated */
  anonymize_since: number;
  /** table → rows rewritten (events, identify_snapshots, users, dead_letters_deleted) */
  rows_rewritten: Record<string, number>;
  /** why it failed; never a PII value */
  reason: string | null;
  attempts: number;
  requested_at: number;
  applied_at: number | null;
  verified_at: number | null;
}

/** One row of `history_translations`: the latest version of a request_id wins. */
export interface HistoryTranslationRow extends TranslationReceipt {
  version: number;
}

export const HISTORY_TRANSLATION_COLUMNS = [
  'request_id',
  'tenant_id',
  'status',
  'key_version',
  'anonymize_since',
  'rows_rewritten',
  'reason',
  'attempts',
  'requested_at',
  'applied_at',
  'verified_at',
  'version',
] as const satisfies readonly (keyof HistoryTranslationRow)[];

const allColumnsListed: AllColumnsListed<HistoryTranslationRow, typeof HISTORY_TRANSLATION_COLUMNS> = true;
void allColumnsListed;

const TIME_COLUMNS = new Set(['anonymize_since', 'requested_at', 'applied_at', 'verified_at']);
/** SELECT list whose rows parseTranslationRow reads (times in ms under their own names) */
export const HISTORY_TRANSLATION_SELECT = selectList(HISTORY_TRANSLATION_COLUMNS, TIME_COLUMNS);

export function parseTranslationRow(r: JsonRow): HistoryTranslationRow {
  return {
    request_id: str(r.request_id),
    tenant_id: str(r.tenant_id),
    status: oneOf(RECEIPT_STATUSES, r.status, 'history_translations.status'),
    key_version: num(r.key_version),
    anonymize_since: ms(r.anonymize_since),
    rows_rewritten: numberMap(r.rows_rewritten),
    reason: nullableStr(r.reason),
    attempts: num(r.attempts),
    requested_at: ms(r.requested_at),
    applied_at: nullableMs(r.applied_at),
    verified_at: nullableMs(r.verified_at),
    version: num(r.version),
  };
}

export async function insertHistoryTranslations(client: ClickHouseClient, rows: readonly HistoryTranslationRow[], table = 'history_translations'): Promise<void> {
  await insertRows(client, table, HISTORY_TRANSLATION_COLUMNS, rows);
}
