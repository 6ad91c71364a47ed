// Lookups by subject or user id that send the ids as data: the ids go into a
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
  /**
   * Runs a SELECT in the lookup's session. Calls made at once run one after another (a session
   * takes one request at a time); a call after `use` settled is refused (the session may serve
   * another lookup by then). `params`: query parameters for what is not an id (a page size):
   * they travel in the URL.
   */
  rows<T>(query: string, params?: Record<string, unknown>): Promise<T[]>;
}

/**
 * Session ids of finished lookups, per client, for the next ones: a server keeps a session (and a
 * connection of the gateway's) for session_timeout after its last request, so a sink opening one
 * per flush would pile them up. Reusing an id is safe once its table is dropped: a session the
 * server has expired meanwhile is simply opened again under the same id. Only ids whose every
 * request succeeded come back here.
 */
const idleSessions = new WeakMap<ClickHouseClient, string[]>();

/** Waits before each new attempt of a request answered SESSION_IS_LOCKED; then it fails. */
const LOCKED_RETRY_DELAYS_MS = [5, 20, 50, 125] as const;

/** ClickHouse's SESSION_IS_LOCKED (373), as @clickhouse/client raises it. */
export function isSessionLocked(err: unknown): boolean {
  const { code, type } = (err ?? {}) as { code?: unknown; type?: unknown };
  return code === '373' || type === 'SESSION_IS_LOCKED';
}

/**
 * TRICKY: a server may answer SESSION_IS_LOCKED even to requests sent one after another on a
 * session (ClickHouse issues #4003, #35948): it releases the session when the request's handler
 * ends, after the response is sent, so the client's next request can arrive first. The refusal comes before the
 * statement runs, so sending it again is safe for every statement, INSERT included. Each
 * statement is retried a few times within ~0.2 s; beyond that the session is held by something
 * else (a statement the client gave up on still running on the server, or a session stuck locked
 * as in #4003) and the lookup fails rather than wait. Where a fresh session can take over — the
 * CREATE opening a reused id, before anything lives in it — a 373 drops that id at once for a new
 * one (randomUUID: no one else holds it). Later statements cannot move: the table lives in the
 * session. A session that ends in any failure is never reused.
 */
async function unlessLocked<R>(send: () => Promise<R>): Promise<R> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await send();
    } catch (err) {
      const delay = LOCKED_RETRY_DELAYS_MS[attempt];
      if (delay === undefined || !isSessionLocked(err)) throw err;
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/**
 * Fills a temporary table with `rows` in a session of its own, runs `use` and drops the table.
 * TRICKY:
 * - over HTTP a temporary table lives in a session (session_id), and a session answers one
 *   request at a time (SESSION_IS_LOCKED otherwise): lookups running at once get sessions of
 *   their own, and one lookup's requests are chained one after another whatever `use` does.
 *   CLICKHOUSE_URL must reach the same server for a session's requests (no round-robin
 *   balancer without session affinity);
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
  const create = `CREATE TEMPORARY TABLE ${table} (${columns.map((c) => `${c} String`).join(', ')})`;
  let session_id = idle.pop();
  if (session_id !== undefined) {
    const reused = session_id;
    const locked = await client.command({ query: create, session_id: reused }).then(
      () => false,
      (err: unknown) => {
        if (isSessionLocked(err)) return true;
        throw err;
      },
    );
    if (locked) session_id = undefined;
  }
  if (session_id === undefined) {
    const fresh = randomUUID();
    await unlessLocked(() => client.command({ query: create, session_id: fresh }));
    session_id = fresh;
  }
  const sid = session_id;

  // the session's requests, one after another; `tail` never rejects
  let tail: Promise<unknown> = Promise.resolve();
  let over = false;
  const inTurn = <R>(send: () => Promise<R>): Promise<R> => {
    const run = tail.then(() => unlessLocked(send));
    tail = run.catch(() => undefined);
    return run;
  };
  let clean = true;
  try {
    if (rows.length > 0) await inTurn(() => client.insert({ table, values: [...rows], format: 'JSONEachRow', session_id: sid }));
    return await use({
      table,
      rows: <R>(query: string, params?: Record<string, unknown>) => {
        if (over) return Promise.reject(new Error('the id lookup is over: its session is not used after withIdLookup settled'));
        const query_params = params ? { query_params: params } : {};
        return inTurn(async () => (await client.query({ query, format: 'JSONEachRow', session_id: sid, ...query_params })).json<R>()).catch((err: unknown) => {
          clean = false;
          throw err;
        });
      },
    });
  } catch (err) {
    clean = false;
    throw err;
  } finally {
    over = true;
    // NOTE: after every request `use` started has settled (a call it did not await included);
    // best effort: a server drops the table with the session (after session_timeout) anyway
    await inTurn(() => client.command({ query: `DROP TEMPORARY TABLE IF EXISTS ${table}`, session_id: sid })).then(
      () => {
        if (clean) idle.push(sid);
      },
      () => undefined,
    );
  }
}
