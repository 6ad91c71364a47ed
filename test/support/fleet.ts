// Runs Tracklane fleet services as separate processes (as production does) against the real
// services of the test run, isolated by a topic prefix and a Redis key prefix per fleet.
import { randomBytes } from 'node:crypto';
import { describeExit, freePort, spawnTsx, waitReady, type Exit } from './child-process.js';
import { eventually } from './poll.js';
import { clickhouseLogin, serviceEndpoints } from './services.js';

export type FleetServiceName = 'collector' | 'enricher' | 'anonymizer' | 'sink' | 'compactor';

export interface FleetProcess {
  name: FleetServiceName;
  port: number;
  /** a collector's ADMIN_PORT */
  adminPort?: number;
  pid: number;
  output(): string;
  /** resolves when the process has exited */
  exited: Promise<Exit>;
  /** null while it runs, else how it ended ("code 1", "signal SIGKILL") */
  exitStatus(): string | null;
  kill(signal: NodeJS.Signals): void;
}

export interface Fleet {
  prefix: string;
  adminToken: string;
  /** environment every process of this fleet gets */
  env: Record<string, string>;
  processes: Map<string, FleetProcess>;
  collectorUrl(): string;
  /** the operator listener (ADMIN_PORT) of the collector started under `key` (default "collector") */
  collectorAdminUrl(key?: string): string;
  /**
   * starts one more process of a service (a replica, or a restart after a kill) and waits until
   * it is ready, unless `awaitReady` is false (a test of a service that must not become ready)
   */
  start(name: FleetServiceName, key?: string, extraEnv?: Record<string, string>, opts?: { awaitReady?: boolean }): Promise<FleetProcess>;
  admin<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }>;
  /** SIGTERM to everything still running, then SIGKILL after a grace period */
  stopAll(): Promise<void>;
  /** for a failed test: each process's state, its counters (events in/out, retries, lag) and its last output */
  diagnostics(): Promise<string>;
}

export async function startFleet(opts: { services?: FleetServiceName[]; partitions?: number; env?: Record<string, string> } = {}): Promise<Fleet> {
  const ep = serviceEndpoints();
  const prefix = `t${randomBytes(4).toString('hex')}.`;
  const adminToken = randomBytes(18).toString('base64url');
  const env: Record<string, string> = {
    KAFKA_BROKERS: ep.kafkaBrokers,
    SCHEMA_REGISTRY_URL: ep.schemaRegistryUrl,
    REDIS_URL: ep.redisUrl,
    CLICKHOUSE_URL: ep.clickhouseUrl,
    CLICKHOUSE_USER: clickhouseLogin().username,
    CLICKHOUSE_PASSWORD: clickhouseLogin().password,
    TOPIC_PREFIX: prefix,
    TRACKLANE_REDIS_PREFIX: `tl-fleet-${prefix}`,
    KAFKA_PARTITIONS: String(opts.partitions ?? 3),
    TRACKLANE_MASTER_KEY: `base64:${randomBytes(32).toString('base64')}`,
    TRACKLANE_ID_HASH_KEY: `base64:${randomBytes(32).toString('base64')}`,
    TRACKLANE_ADMIN_TOKEN: adminToken,
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    ...opts.env,
  };
  const processes = new Map<string, FleetProcess>();

  async function start(name: FleetServiceName, key: string = name, extraEnv: Record<string, string> = {}, startOpts: { awaitReady?: boolean } = {}): Promise<FleetProcess> {
    const port = await freePort();
    // NOTE: the collector's operator routes listen apart (ADMIN_PORT); other services ignore it.
    const adminPort = name === 'collector' ? await freePort() : undefined;
    const child = spawnTsx(`services/${name}/main.ts`, [], {
      env: { ...process.env, ...env, ...extraEnv, PORT: String(port), ...(adminPort !== undefined ? { ADMIN_PORT: String(adminPort) } : {}) },
    });
    const proc: FleetProcess = {
      name,
      port,
      ...(adminPort !== undefined ? { adminPort } : {}),
      pid: child.pid,
      output: () => child.output(),
      exited: child.exited,
      exitStatus: () => {
        const e = child.exit();
        return e ? describeExit(e) : null;
      },
      kill: (signal) => child.signal(signal),
    };
    processes.set(key, proc);
    if (startOpts.awaitReady !== false) await waitReady(child, `http://127.0.0.1:${port}`, { name, timeoutMs: 60_000, everyMs: 200 });
    return proc;
  }

  const fleet: Fleet = {
    prefix,
    adminToken,
    env,
    processes,
    collectorUrl() {
      const c = processes.get('collector');
      if (!c) throw new Error('no collector in this fleet');
      return `http://127.0.0.1:${c.port}`;
    },
    collectorAdminUrl(key = 'collector') {
      const c = processes.get(key);
      if (!c?.adminPort) throw new Error(`no collector "${key}" in this fleet`);
      return `http://127.0.0.1:${c.adminPort}`;
    },
    start,
    async admin<T>(method: string, path: string, body?: unknown) {
      const res = await fetch(`${fleet.collectorAdminUrl()}${path}`, {
        method,
        headers: { authorization: `Bearer ${adminToken}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        ...(body ? { body: JSON.stringify(body) } : {}),
      });
      return { status: res.status, body: (res.status === 204 ? null : await res.json()) as T };
    },
    async diagnostics() {
      const parts: string[] = [];
      for (const [key, p] of processes) {
        const status = p.exitStatus();
        let counters = '';
        if (status === null) {
          try {
            const text = await (await fetch(`http://127.0.0.1:${p.port}/metrics`, { signal: AbortSignal.timeout(2_000) })).text();
            counters = text
              .split('\n')
              .filter((l) => /^tracklane_(events_in_total|events_out_total|retries_total|consumer_lag|collector_events_total)\{/.test(l))
              .join('\n');
          } catch (err) {
            counters = `metrics unreadable: ${(err as Error).name}`;
          }
        }
        parts.push(`--- ${key} (${status ?? 'running'})\n${counters}\n${p.output().slice(-1500)}`);
      }
      return parts.join('\n');
    },
    async stopAll() {
      const running = [...processes.values()];
      for (const p of running) p.kill('SIGTERM');
      await Promise.all(
        running.map((p) =>
          Promise.race([p.exited, new Promise((r) => setTimeout(r, 12_000)).then(() => p.kill('SIGKILL'))]),
        ),
      );
    },
  };
  for (const name of opts.services ?? ['collector', 'enricher', 'anonymizer', 'sink']) await start(name);
  return fleet;
}

/** The /readyz status codes of a process (0: no answer), sampled every 250 ms until it exits. */
export async function readyzCodesUntilExit(p: FleetProcess): Promise<number[]> {
  const codes: number[] = [];
  const sampleUnlessExited = async () => {
    if (p.exitStatus() !== null) return true;
    codes.push(await fetch(`http://127.0.0.1:${p.port}/readyz`).then((r) => r.status, () => 0));
    return false;
  };
  await eventually(sampleUnlessExited, Infinity, `${p.name} to exit`, 250);
  return codes;
}

/** Posts a Segment batch to the collector; returns the status. */
export async function sendBatch(url: string, writeKey: string, batch: unknown[]): Promise<number> {
  const res = await fetch(`${url}/v1/batch`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${writeKey}:`).toString('base64')}` },
    body: JSON.stringify({ batch, sentAt: new Date().toISOString() }),
  });
  await res.arrayBuffer();
  return res.status;
}
