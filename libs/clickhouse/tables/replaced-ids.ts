// The `replaced_ids` table (schemas/clickhouse/0011_replaced_ids.sql): per replacing erasure
// (replaceId, issue 15 item 3) the subject's new id, sealed (libs/privacy/id-seal.ts), for the
// sinks' overwrite registry. The compactor writes a row when it registers the request and
// empties `sealed` once the request is verified; the row then only says the id was replaced.
import type { ClickHouseClient } from '@clickhouse/client';
import { ms, str, type JsonRow } from './row-values.js';
import { insertRows, type AllColumnsListed } from './table-columns.js';

/** One row of `replaced_ids`; times in ms. */
export interface ReplacedIdRow {
  request_id: string;
  tenant_id: string;
  /** keyed hash of the old id (libs/privacy/subject-hash.ts) */
  id_hash: string;
  /** the new id sealed to (request_id, tenant_id, id_hash); '' once the request is verified */
  sealed: string;
  requested_at: number;
}

export const REPLACED_ID_COLUMNS = ['request_id', 'tenant_id', 'id_hash', 'sealed', 'requested_at'] as const satisfies readonly (keyof ReplacedIdRow)[];

// Compile-time guard: REPLACED_ID_COLUMNS names every ReplacedIdRow key.
const allReplacedIdColumnsListed: AllColumnsListed<ReplacedIdRow, typeof REPLACED_ID_COLUMNS> = true;
void allReplacedIdColumnsListed;

/**
 * The rows requested since `{since:Int64}` (ms), the current version of each.
 * TRICKY: the time as `requested_ms`: an alias `requested_at` would replace the column in WHERE.
 */
export const RECENT_REPLACED_IDS_QUERY = `SELECT request_id, tenant_id, id_hash, sealed, toUnixTimestamp64Milli(requested_at) AS requested_ms
  FROM default.replaced_ids FINAL WHERE requested_at >= fromUnixTimestamp64Milli({since:Int64})`;

export function parseReplacedIdRow(r: JsonRow): ReplacedIdRow {
  return { request_id: str(r.request_id), tenant_id: str(r.tenant_id), id_hash: str(r.id_hash), sealed: str(r.sealed), requested_at: ms(r.requested_ms) };
}

export async function insertReplacedIds(client: ClickHouseClient, rows: readonly ReplacedIdRow[]): Promise<void> {
  if (rows.length > 0) await insertRows(client, 'replaced_ids', REPLACED_ID_COLUMNS, rows);
}
