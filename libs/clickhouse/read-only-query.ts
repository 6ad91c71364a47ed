// Analyst SQL over the admin API: read-only (readonly=1 also refuses table functions such as
// file() and url(), which would read the server's files), bounded in time and rows, and a
// query cannot raise those bounds with its own SETTINGS.
import type { ClickHouseClient } from '@clickhouse/client';

export type AnalystQuery = (sql: string) => Promise<unknown[]>;

const LIMITS = { max_execution_time: 30, max_result_rows: '10000', result_overflow_mode: 'throw' } as const;

/**
 * `session`: chDB, where per-query settings stick to the connection's session: the bounds and
 * readonly=1 are set once on a client reserved for analysts (never the sink's). `per-query`:
 * an HTTP server, where settings travel with each request.
 */
export async function createAnalystQuery(client: ClickHouseClient, mode: 'session' | 'per-query'): Promise<AnalystQuery> {
  if (mode === 'session') {
    for (const [k, v] of Object.entries(LIMITS)) await client.command({ query: `SET ${k} = ${typeof v === 'string' && !/^\d+$/.test(v) ? `'${v}'` : v}` });
    await client.command({ query: 'SET readonly = 1' });
    return async (sql) => (await client.query({ query: sql, format: 'JSONEachRow' })).json<unknown>();
  }
  return async (sql) =>
    (await client.query({ query: sql, format: 'JSONEachRow', clickhouse_settings: { ...LIMITS, readonly: '1' } })).json<unknown>();
}
