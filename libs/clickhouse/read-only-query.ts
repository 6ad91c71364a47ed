// Analyst SQL over the admin API: one statement with read-only settings and bounds.
import type { ClickHouseClient } from '@clickhouse/client';

/**
 * Runs one analyst statement with read-only settings. Use a client reserved for this: on
 * chDB the settings stick to the client's session.
 */
export async function readOnlyQuery(client: ClickHouseClient, sql: string): Promise<unknown[]> {
  const rs = await client.query({
    query: sql,
    format: 'JSONEachRow',
    clickhouse_settings: {
      readonly: '2',
      max_execution_time: 30,
      max_result_rows: '10000',
      result_overflow_mode: 'throw',
    },
  });
  return rs.json<unknown>();
}
