// Lookups by subject or user id that send the ids as data (issue 12, item 7): the ids go into a
// temporary table of a session of their own (an INSERT, FORMAT JSONEachRow, the ids in its body)
// and the statements read it with GLOBAL IN — never as query parameters (@clickhouse/client puts
// them in the URL, which proxies and the server's logs keep) nor in SQL text (system.query_log).
import { randomUUID } from 'node:crypto';
import type { ClickHouseClient } from '@clickhouse/client';

/** The keys a lookup sends: every row has the columns of the lookup table, String each. */
export type LookupRow = Readonly<Record<string, string>>;

export interface LookupSession {
  /** the temporary table's name: `SELECT … WHERE (a, b) GLOBAL IN (SELECT a, b FROM ${table})` */
  readonly table: string;
  /** runs a SELECT in the lookup's session (one at a time: a session takes one request at once) */
  rows<T>(query: string): Promise<T[]>;
}

/**
 * Session ids of finished lookups, per client, for the next ones: a server keeps a session (and a
 * connection of the gateway's) for session_timeout after its last request, so a sink opening one
 * per flush would pile them up. Reusing an id is always safe: its table is dropped, and a session
 * the server has expired meanwhile is simply opened again under the same id.
 */
const idleSessions = new WeakMap<ClickHouseClient, string[]>();

/**
 * Fills a temporary table with `rows` in a session of its own, runs `use` and drops the table.
 * TRICKY:
 * - over HTTP a temporary table lives in a session (session_id), and a session answers one
 *   request at a time (SESSION_IS_LOCKED otherwise): lookups running at once get sessions of
 *   their own, and `use` must run its statements one after another. CLICKHOUSE_URL must reach
 *   the same server for a session's requests (no round-robin balancer without session affinity);
 * - on chDB session_id is ignored and a temporary table lives on the client's connection, which
 *   other callers share: the table's name is unique per lookup;
 * - GLOBAL IN, not IN: on a cluster the Distributed tables' shards get the table's rows with the
 *   query (a plain IN would look for the table on each shard); on one node both are the same.
 */
export async function withIdLookup<T>(
  client: ClickHouseClient,
  columns: readonly string[],
  rows: readonly LookupRow[],
  use: (lookup: LookupSession) => Promise<T>,
): Promise<T> {
  for (const c of columns) if (!/^[a-z_][a-z0-9_]*$/.test(c)) throw new Error(`lookup column names are identifiers, got ${JSON.stringify(c)}`);
  const table = `tracklane_ids_${randomUUID().replaceAll('-', '')}`;
  const idle = idleSessions.get(client) ?? [];
  idleSessions.set(client, idle);
  const session_id = idle.pop() ?? randomUUID();
  await client.command({ query: `CREATE TEMPORARY TABLE ${table} (${columns.map((c) => `${c} String`).join(', ')})`, session_id });
  try {
    if (rows.length > 0) await client.insert({ table, values: [...rows], format: 'JSONEachRow', session_id });
    return await use({
      table,
      rows: async <R>(query: string) => (await client.query({ query, format: 'JSONEachRow', session_id })).json<R>(),
    });
  } finally {
    // NOTE: best effort: a server drops it with the session (after session_timeout) anyway
    await client.command({ query: `DROP TEMPORARY TABLE IF EXISTS ${table}`, session_id }).then(
      () => idle.push(session_id),
      () => undefined,
    );
  }
}
