// The `suppressions` table (schemas/clickhouse/0007_suppressions.sql): one row per suppression
// of a user (issue 4), a plain MergeTree; a user suppressed twice has two rows and the earliest
// decides. The compactor writes it; sinks read it back into their overwrite registry.
// NOTE: the user id only as its keyed hash; registered_at is ClickHouse's clock at the insert
// (DEFAULT now64(3)), never written here.
import type { ClickHouseClient } from '@clickhouse/client';
import { ms, selectList, str, type JsonRow } from './row-values.js';
import { insertRows, type AllColumnsListed } from './table-columns.js';

/** One row of `suppressions` as written; times in ms. */
export interface SuppressionRow {
  tenant_id: string;
  /** keyed hash of the user id (libs/privacy/subject-hash.ts) */
  subject_id_hash: string;
  request_id: string;
  requested_at: number;
}

export const SUPPRESSION_COLUMNS = ['tenant_id', 'subject_id_hash', 'request_id', 'requested_at'] as const satisfies readonly (keyof SuppressionRow)[];

// Compile-time guard: SUPPRESSION_COLUMNS names every SuppressionRow key.
const allSuppressionColumnsListed: AllColumnsListed<SuppressionRow, typeof SUPPRESSION_COLUMNS> = true;
void allSuppressionColumnsListed;

/** SELECT list whose rows parseSuppressionRow reads. */
export const SUPPRESSION_SELECT = selectList(SUPPRESSION_COLUMNS, new Set(['requested_at']));

export function parseSuppressionRow(r: JsonRow): SuppressionRow {
  return {
    tenant_id: str(r.tenant_id),
    subject_id_hash: str(r.subject_id_hash),
    request_id: str(r.request_id),
    requested_at: ms(r.requested_at),
  };
}

/**
 * The query whose rows parseEarliestSuppression reads: each user's earliest suppression among
 * the rows matching `where` (a condition on the table's columns, e.g. on registered_at).
 * TRICKY: its time is `requested_ms`: an alias `requested_at` would replace the column in `where`.
 */
export function earliestSuppressionsQuery(where: string): string {
  return `SELECT tenant_id, subject_id_hash, argMin(request_id, requested_at) AS request_id,
                 toUnixTimestamp64Milli(min(requested_at)) AS requested_ms
          FROM suppressions WHERE ${where} GROUP BY tenant_id, subject_id_hash`;
}

export function parseEarliestSuppression(r: JsonRow): SuppressionRow {
  return parseSuppressionRow({ ...r, requested_at: r.requested_ms });
}

export async function insertSuppressions(client: ClickHouseClient, rows: readonly SuppressionRow[], table = 'suppressions'): Promise<void> {
  await insertRows(client, table, SUPPRESSION_COLUMNS, rows);
}
