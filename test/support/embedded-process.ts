// Starts `npm start` (the embedded pipeline) as a child process on a free port and a temp
// data dir, as a user would, and stops it with SIGTERM. For end-to-end tests.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, spawnChild, waitReady } from './child-process.js';

export interface EmbeddedProcess {
  url: string;
  adminToken: string;
  dataDir: string;
  /** everything the process wrote to stdout and stderr so far */
  output(): string;
  admin<T = unknown>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }>;
  query<T = Record<string, unknown>>(sql: string): Promise<T[]>;
  stop(): Promise<number | null>;
}

export async function startEmbeddedProcess(env: Record<string, string> = {}): Promise<EmbeddedProcess> {
  const dataDir = await mkdtemp(join(tmpdir(), 'tracklane-e2e-'));
  const port = await freePort();
  const adminToken = randomBytes(18).toString('base64url');
  const child = spawnChild('npm', ['start', '--silent'], {
    cwd: process.cwd(),
    env: {
      // NOTE: embedded defaults: the run's service endpoints (set by the global setup) are not passed on
      ...withoutServiceEndpoints(process.env),
      PORT: String(port),
      HOST: '127.0.0.1',
      TRACKLANE_DATA_DIR: dataDir,
      TRACKLANE_ADMIN_TOKEN: adminToken,
      TRACKLANE_MASTER_KEY: randomBytes(32).toString('base64').replace(/^/, 'base64:'),
      LOG_LEVEL: 'warn',
      ...env,
    },
    detached: true,
  });
  const url = `http://127.0.0.1:${port}`;
  await waitReady(child, url, { name: 'tracklane start', timeoutMs: 90_000, everyMs: 250 });

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
    adminToken,
    dataDir,
    output: () => child.output(),
    admin,
    async query<T>(sql: string) {
      const r = await admin<{ rows?: T[]; message?: string }>('POST', '/v1/admin/query', { sql });
      if (r.status !== 200 || !r.body.rows) throw new Error(`query failed (${r.status}): ${r.body.message}`);
      return r.body.rows;
    },
    async stop() {
      const { code } = await child.stop();
      await rm(dataDir, { recursive: true, force: true });
      return code;
    },
  };
}

function withoutServiceEndpoints(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { CLICKHOUSE_URL: _c, KAFKA_BROKERS: _k, SCHEMA_REGISTRY_URL: _s, REDIS_URL: _r, ...rest } = env;
  return rest;
}

