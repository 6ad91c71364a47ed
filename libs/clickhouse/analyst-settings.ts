// The engine settings an analyst statement runs under: its bounds (QueryLimits), a tenant's row
// filter over the analyst tables (additional_table_filters), and the one SET that fixes them.

export interface QueryLimits {
  maxMemoryBytes: number;
  maxRowsToRead: number;
  maxBytesToRead: number;
  maxResultRows: number;
  maxResultBytes: number;
  maxExecutionSeconds: number;
}

/**
 * Bounds of one analyst statement (each is enforced by the engine with overflow mode `throw`):
 * - 512 MiB memory: the embedded engine shares the process with the sink; two analyst queries at
 *   once (the default concurrency) stay under 1 GiB, and 512 MiB holds a GROUP BY over millions
 *   of keys. A memory bomb fails within a second at this bound (measured, see the tests).
 * - 100 M rows / 10 GiB read: a year of a busy tenant's events (≈ 300 k a day) is read in one
 *   scan; anything beyond is a runaway cross join or a scan of everything.
 * - 10 k result rows / 16 MiB: the answer travels as one JSON response to a dashboard or a
 *   notebook; more is an export, which is a different API.
 * - 20 s: below the HTTP client's 30 s request timeout (libs/clickhouse/client.ts) so the engine,
 *   not a socket, ends a slow query, and a clear 4xx reaches the analyst.
 */
export const DEFAULT_QUERY_LIMITS: QueryLimits = Object.freeze({
  maxMemoryBytes: 512 * 1024 * 1024,
  maxRowsToRead: 100_000_000,
  maxBytesToRead: 10 * 1024 * 1024 * 1024,
  maxResultRows: 10_000,
  maxResultBytes: 16 * 1024 * 1024,
  maxExecutionSeconds: 20,
});

/** Tables and views a tenant may read; every one has a `tenant_id` column the engine filters on. */
export const ANALYST_TABLES: readonly string[] = Object.freeze([
  'events',
  // trait snapshots of identify/group events (schemas/clickhouse/0010_identify_snapshots.sql)
  'identify_snapshots',
  'users',
  'accounts',
  'dead_letters',
  'overwrite_requests',
  'audit_log',
  // tracking plan violations (schemas/clickhouse/0013_violations.sql)
  'violations',
  // the shipped views (schemas/clickhouse/0004_views.sql)
  'daily_active_users',
  'sessions',
  'top_pages',
  'events_by_account',
  'events_by_country',
  // events FINAL with their trait maps joined back (0010_identify_snapshots.sql)
  'events_with_traits',
]);

export const TENANT_ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;

export const PLAIN_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export type Settings = Record<string, string | number>;

export function limitSettings(l: QueryLimits): Settings {
  return {
    max_memory_usage: l.maxMemoryBytes,
    max_rows_to_read: l.maxRowsToRead,
    max_bytes_to_read: l.maxBytesToRead,
    read_overflow_mode: 'throw',
    max_result_rows: l.maxResultRows,
    max_result_bytes: l.maxResultBytes,
    result_overflow_mode: 'throw',
    max_execution_time: l.maxExecutionSeconds,
    timeout_overflow_mode: 'throw',
  };
}

/**
 * The additional_table_filters value for a tenant: every analyst table and view, bare and
 * database-qualified, filtered on tenant_id. The engine applies it to the storage a table
 * expression reads wherever it appears (views, CTEs, subqueries, joins, IN, FINAL, aliases).
 */
export function tenantFilterSetting(tenantId: string, database = 'default'): string {
  if (!TENANT_ID_PATTERN.test(tenantId)) throw new Error('invalid tenant id');
  const filter = `tenant_id = ${quoteString(tenantId)}`;
  const entries = ANALYST_TABLES.flatMap((t) => [t, `${database}.${t}`]).map((k) => `${quoteString(k)}: ${quoteString(filter)}`);
  return `{${entries.join(', ')}}`;
}

/** A ClickHouse string literal: backslash and quote escaped, so nothing can end it early. */
export function quoteString(v: string): string {
  return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** `SET a = 1, b = 'x', …, readonly = 1`: one statement, so readonly cannot refuse its neighbours. */
export function setStatement(settings: Settings): string {
  const parts = Object.entries(settings).map(([k, v]) => {
    if (!PLAIN_NAME.test(k)) throw new Error(`invalid setting name ${JSON.stringify(k)}`);
    return `${k} = ${typeof v === 'number' ? String(v) : quoteString(v)}`;
  });
  parts.push('readonly = 1');
  return `SET ${parts.join(', ')}`;
}
