// The `overwrite_requests` table (schemas/clickhouse/0005_overwrites.sql): one receipt per
// overwrite command, a ReplacingMergeTree(version) on request_id (libs/compactor/receipts.ts
// writes and reads it). NOTE: never the clear subject id, only its keyed hash.
import type { ClickHouseClient } from '@clickhouse/client';
import { OVERWRITE_MODES, OVERWRITE_SUBJECTS, type OverwriteMode, type OverwriteSubject } from '../../events/overwrite-command.js';
import { ms, nullableMs, nullableStr, num, numberMap, oneOf, selectList, str, type JsonRow } from './row-values.js';
import { insertRows, type AllColumnsListed } from './table-columns.js';

export const RECEIPT_STATUSES = ['pending', 'applied', 'verified', 'failed'] as const;
export type ReceiptStatus = (typeof RECEIPT_STATUSES)[number];

/** A command's receipt: a row of `overwrite_requests` without its version; times in ms. */
export interface Receipt {
  request_id: string;
  tenant_id: string;
  subject: OverwriteSubject;
  /** NOTE: never the clear subject id (a user id may be an email) */
  subject_id_hash: string;
  mode: OverwriteMode;
  status: ReceiptStatus;
  /** table → rows rewritten (events rows whose traits changed, users/accounts rows written, events_deleted) */
  rows_rewritten: Record<string, number>;
  /** why it failed; never a PII value */
  reason: string | null;
  attempts: number;
  requested_at: number;
  applied_at: number | null;
  verified_at: number | null;
}

/** One row of `overwrite_requests`: the latest version of a request_id wins. */
export interface OverwriteRequestRow extends Receipt {
  version: number;
}

export const OVERWRITE_REQUEST_COLUMNS = [
  'request_id',
  'tenant_id',
  'subject',
  'subject_id_hash',
  'mode',
  'status',
  'rows_rewritten',
  'reason',
  'attempts',
  'requested_at',
  'applied_at',
  'verified_at',
  'version',
] as const satisfies readonly (keyof OverwriteRequestRow)[];

// Compile-time guard: OVERWRITE_REQUEST_COLUMNS names every OverwriteRequestRow key.
const allOverwriteRequestColumnsListed: AllColumnsListed<OverwriteRequestRow, typeof OVERWRITE_REQUEST_COLUMNS> = true;
void allOverwriteRequestColumnsListed;

/**
 * SELECT list whose rows parseReceipt and parseOverwriteRequestRow read. NOTE: the times under
 * their own names in ms, so in a WHERE `requested_at` is ms too.
 */
export const OVERWRITE_REQUEST_SELECT = selectList(OVERWRITE_REQUEST_COLUMNS, new Set(['requested_at', 'applied_at', 'verified_at']));

export function parseReceipt(r: JsonRow): Receipt {
  return {
    request_id: str(r.request_id),
    tenant_id: str(r.tenant_id),
    subject: oneOf(OVERWRITE_SUBJECTS, r.subject, 'overwrite_requests.subject'),
    subject_id_hash: str(r.subject_id_hash),
    mode: oneOf(OVERWRITE_MODES, r.mode, 'overwrite_requests.mode'),
    status: oneOf(RECEIPT_STATUSES, r.status, 'overwrite_requests.status'),
    rows_rewritten: numberMap(r.rows_rewritten),
    reason: nullableStr(r.reason),
    attempts: num(r.attempts),
    requested_at: ms(r.requested_at),
    applied_at: nullableMs(r.applied_at),
    verified_at: nullableMs(r.verified_at),
  };
}

export function parseOverwriteRequestRow(r: JsonRow): OverwriteRequestRow {
  return { ...parseReceipt(r), version: num(r.version) };
}

export async function insertOverwriteRequests(client: ClickHouseClient, rows: readonly OverwriteRequestRow[], table = 'overwrite_requests'): Promise<void> {
  await insertRows(client, table, OVERWRITE_REQUEST_COLUMNS, rows);
}
