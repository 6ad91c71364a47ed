// The embedded pipeline as a child process that can die and start again on the same data dir,
// port, admin token and master key — as a user's `npm start` after a crash. For crash tests
// through the fault points of libs/core/fault-points.ts.
// NOTE: runs `node --import tsx services/cli/main.ts start`, what `npm start` (tsx) runs, in one
// process: a fault point's SIGKILL is then the child's own exit signal (npm and the tsx CLI would
// turn it into exit code 137).
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, spawnTsx, waitReady, type Child, type Exit } from './child-process.js';

export interface RestartableEmbedded {
  url: string;
  dataDir: string;
  /** starts a process (extra env for this lifetime only) and waits until /readyz answers */
  start(env?: Record<string, string>): Promise<void>;
  /** resolves when the current process exits (by itself or a signal) */
  exited(): Promise<Exit>;
  /** everything the current process wrote to stdout and stderr */
  output(): string;
  admin<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }>;
  /** the operator's analyst SQL (POST /v1/admin/query) */
  query<T = Record<string, unknown>>(sql: string): Promise<T[]>;
  /** a clean stop (SIGTERM) of the current process; resolves with its exit */
  stop(): Promise<Exit>;
  /** SIGTERM to the current process (if any), then removes the data dir */
  dispose(): Promise<void>;
}

/** The run's shared service endpoints are not passed on: the child runs embedded (chDB). */
function embeddedEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { CLICKHOUSE_URL: _c, KAFKA_BROKERS: _k, SCHEMA_REGISTRY_URL: _s, REDIS_URL: _r, TRACKLANE_FAULT_POINT: _f, ...rest } = env;
  return rest;
}

export async function createRestartableEmbedded(): Promise<RestartableEmbedded> {
  const dataDir = await mkdtemp(join(tmpdir(), 'tracklane-crash-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const adminToken = randomBytes(18).toString('base64url');
  const masterKey = `base64:${randomBytes(32).toString('base64')}`;
  let child: Child | null = null;

  const admin = async <T>(method: string, path: string, body?: unknown) => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${adminToken}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, body: (await res.json()) as T };
  };

  return {
    url,
    dataDir,
    async start(env = {}) {
      if (child && !child.exit()) throw new Error('the previous process is still running');
      child = spawnTsx('services/cli/main.ts', ['start'], {
        cwd: process.cwd(),
        env: {
          ...embeddedEnv(process.env),
          PORT: String(port),
          HOST: '127.0.0.1',
          TRACKLANE_DATA_DIR: dataDir,
          TRACKLANE_ADMIN_TOKEN: adminToken,
          TRACKLANE_MASTER_KEY: masterKey,
          LOG_LEVEL: 'warn',
          ...env,
        },
      });
      await waitReady(child, url, { name: 'tracklane start', timeoutMs: 90_000, everyMs: 100 });
    },
    exited: () => child?.exited ?? Promise.resolve({ code: null, signal: null }),
    output: () => child?.output() ?? '',
    admin,
    async query<T>(sql: string) {
      const r = await admin<{ rows?: T[]; message?: string }>('POST', '/v1/admin/query', { sql });
      if (r.status !== 200 || !r.body.rows) throw new Error(`query failed (${r.status}): ${r.body.message}`);
      return r.body.rows;
    },
    async stop() {
      return child?.stop() ?? { code: null, signal: null };
    },
    async dispose() {
      await child?.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
