// Integration-test access to a real ClickHouse engine: a migrated chDB-backed client on a
// fresh temp dir, one per test FILE (vitest's forks pool gives each file its own process).
//
// NOTE (measured, chdb 3.4.0): one process can hold chDB open on one dir at a time; opening
// another dir while a client is open throws, but after close() (which drains chDB's deferred
// teardown, see libs/clickhouse/client.ts) a process can open a different dir. So a file may
// call openTestClickHouse() again after closing the previous one, never two at once.
// Tests share the engine within a file: isolate them by tenant id (uniqueTenant()).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll } from 'vitest';
import { createClickHouse, type ClickHouseClient } from '../../libs/clickhouse/client.js';
import { migrate } from '../../libs/clickhouse/migrate.js';

export interface TestClickHouse {
  client: ClickHouseClient;
  dataDir: string;
  /** Closes the client and deletes the data dir. Idempotent. */
  close(): Promise<void>;
}

export async function openTestClickHouse(opts: { migrate?: boolean } = {}): Promise<TestClickHouse> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tracklane-chdb-'));
  const client = createClickHouse({ dataDir });
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await client.close();
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    if (opts.migrate !== false) await migrate(client);
  } catch (err) {
    await close();
    throw err;
  }
  return { client, dataDir, close };
}

/** Registers beforeAll/afterAll for this file and returns a getter for the shared engine. */
export function useTestClickHouse(opts: { migrate?: boolean } = {}): () => TestClickHouse {
  let ch: TestClickHouse | undefined;
  beforeAll(async () => {
    ch = await openTestClickHouse(opts);
  });
  afterAll(async () => {
    await ch?.close();
  });
  return () => {
    if (!ch) throw new Error('test ClickHouse not open yet (use it inside tests or hooks)');
    return ch;
  };
}

/** A tenant id no other test uses: tests in one file share one database. */
export function uniqueTenant(prefix = 't'): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

/** Runs a query and returns its rows. */
export async function queryRows<T = Record<string, unknown>>(
  client: ClickHouseClient,
  query: string,
  query_params?: Record<string, unknown>,
): Promise<T[]> {
  const rs = await client.query({ query, format: 'JSONEachRow', ...(query_params ? { query_params } : {}) });
  return rs.json<T>();
}
