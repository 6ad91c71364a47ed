// The compactor's scans of ClickHouse: rows come back as untyped JSON (64-bit integers as
// numbers from chDB, as strings over HTTP) and are read field by field, never cast; whole
// users/accounts rows are parsed by their table modules (libs/clickhouse/tables).
import type { ClickHouseClient } from '@clickhouse/client';

export type RawRow = Readonly<Record<string, unknown>>;

/** The rows of a JSONEachRow query, unparsed. */
export async function queryRows(client: ClickHouseClient, query: string, query_params?: Record<string, unknown>): Promise<RawRow[]> {
  const rs = await client.query({ query, format: 'JSONEachRow', ...(query_params ? { query_params } : {}) });
  return rs.json<Record<string, unknown>>();
}

export function str(x: unknown): string {
  if (typeof x === 'string') return x;
  if (typeof x === 'number' || typeof x === 'bigint') return String(x);
  throw new TypeError(`expected a string, got ${typeof x}`);
}
export function nullableStr(x: unknown): string | null {
  return x === null || x === undefined ? null : str(x);
}
export function strArray(x: unknown): string[] {
  if (!Array.isArray(x)) throw new TypeError(`expected an array, got ${typeof x}`);
  return x.map(str);
}
