// The `overwrite_values` table (schemas/clickhouse/0005_overwrites.sql, 0007_suppressions.sql):
// the NEW values of every overwrite request, one row per attribute, a ReplacingMergeTree kept
// 30 days (TTL). The compactor writes it before it changes anything; sinks read it back per
// request into their overwrite registry (libs/compactor/overwrite-registry.ts).
// NOTE: the subject id only as its keyed hash (`id` is left empty); registered_at is ClickHouse's
// clock at the insert (DEFAULT now64(3)), never written here.
import type { ClickHouseClient } from '@clickhouse/client';
import { OVERWRITE_SUBJECTS, type OverwriteMode, type OverwriteSubject } from '../../events/overwrite-command.js';
import { flag, ms, nullableStr, oneOf, str, type JsonRow } from './row-values.js';
import { insertRows, type AllColumnsListed } from './table-columns.js';

/** One row of `overwrite_values` as written; times in ms. */
export interface OverwriteValueRow {
  request_id: string;
  tenant_id: string;
  subject: OverwriteSubject;
  /** '' since id_hash exists (older rows hold the clear id) */
  id: string;
  id_hash: string;
  /** an events map key (e.g. firstName) */
  attr: string;
  /** its new JSON-encoded value; null: the attribute is cleared */
  new_value: string | null;
  mode: OverwriteMode;
  delete_events: 0 | 1;
  requested_at: number;
}

export const OVERWRITE_VALUE_COLUMNS = [
  'request_id',
  'tenant_id',
  'subject',
  'id',
  'id_hash',
  'attr',
  'new_value',
  'mode',
  'delete_events',
  'requested_at',
] as const satisfies readonly (keyof OverwriteValueRow)[];

// Compile-time guard: OVERWRITE_VALUE_COLUMNS names every OverwriteValueRow key.
const allOverwriteValueColumnsListed: AllColumnsListed<OverwriteValueRow, typeof OVERWRITE_VALUE_COLUMNS> = true;
void allOverwriteValueColumnsListed;

/** A request's rows for one subject, as the registry reads them: attribute → new value (null: cleared). */
export interface OverwriteValueGroup {
  request_id: string;
  tenant_id: string;
  subject: OverwriteSubject;
  id_hash: string;
  delete_events: 0 | 1;
  requested_at: number;
  attrs: [string, string | null][];
}

/**
 * The query whose rows parseOverwriteValueGroup reads: the rows matching `where` (a condition
 * on the table's columns, e.g. on registered_at) grouped per request and subject.
 */
export function overwriteValueGroupsQuery(where: string): string {
  return `SELECT request_id, tenant_id, subject, id_hash, any(delete_events) AS delete_events,
                 toUnixTimestamp64Milli(any(requested_at)) AS requested_ms,
                 groupArray(tuple(attr, new_value)) AS attrs
          FROM overwrite_values FINAL
          WHERE ${where}
          GROUP BY request_id, tenant_id, subject, id_hash`;
}

function attrValue(x: unknown): [string, string | null] {
  if (!Array.isArray(x)) throw new TypeError(`overwrite_values.attrs: unexpected value ${JSON.stringify(x)}`);
  return [str(x[0]), nullableStr(x[1])];
}

export function parseOverwriteValueGroup(r: JsonRow): OverwriteValueGroup {
  return {
    request_id: str(r.request_id),
    tenant_id: str(r.tenant_id),
    subject: oneOf(OVERWRITE_SUBJECTS, r.subject, 'overwrite_values.subject'),
    id_hash: str(r.id_hash),
    delete_events: flag(r.delete_events),
    requested_at: ms(r.requested_ms),
    attrs: Array.isArray(r.attrs) ? r.attrs.map(attrValue) : [],
  };
}

export async function insertOverwriteValues(client: ClickHouseClient, rows: readonly OverwriteValueRow[], table = 'overwrite_values'): Promise<void> {
  await insertRows(client, table, OVERWRITE_VALUE_COLUMNS, rows);
}
