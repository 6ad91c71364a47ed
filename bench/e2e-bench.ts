// End-to-end benchmark of the embedded pipeline: `tracklane start` in its own process
// (chDB), a load generator in this one posting Segment batches over loopback HTTP. Rows
// are visible when a request's 2xx arrives (the group commit answers after the insert).
// The baseline, in the same run: the rows the server stored, read back once it has exited and
// inserted again by a raw @clickhouse/client insert as prebuilt JSONCompactEachRow tuples into a
// fresh copy of the events table, on the same chDB engine and data dir (see rawInsertBaseline).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { spawnTsx, waitReady } from '../test/support/child-process.js';
import { createClickHouse, toNumber } from '../libs/clickhouse/client.js';
import { EVENT_COLUMNS } from '../libs/clickhouse/tables/events.js';
import type { BenchReport } from './bench-types.js';
import type { SegmentMessage } from '../services/demo/segment-types.js';
import { generateTraffic } from '../services/demo/traffic.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** rows per raw baseline insert: the sink's default flush (SINK_MAX_ROWS) */
const RAW_BATCH = 5000;

export interface E2eBenchOptions {
  events?: number;
  batchSize?: number;
  concurrency?: number;
}

export async function benchEndToEnd(opts: E2eBenchOptions = {}): Promise<BenchReport> {
  const total = opts.events ?? 200_000;
  const batchSize = opts.batchSize ?? 500;
  const concurrency = opts.concurrency ?? 16;
  const dataDir = mkdtempSync(join(tmpdir(), 'tracklane-bench-e2e-'));
  const adminToken = randomBytes(24).toString('base64url');
  const port = 18_000 + Math.floor(Math.random() * 2000);
  const url = `http://127.0.0.1:${port}`;

  // BENCH_SERVER_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=.bench", profiles the server;
  // BENCH_SERVER_LOG_LEVEL=debug shows its flushes (sink flush: rows, ms).
  const nodeArgs = (process.env['BENCH_SERVER_NODE_ARGS'] ?? '').split(' ').filter(Boolean);
  const child = spawnTsx(join(ROOT, 'services/cli/main.ts'), ['start'], {
    cwd: ROOT,
    nodeArgs,
    inheritOutput: true,
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      TRACKLANE_DATA_DIR: dataDir,
      TRACKLANE_ADMIN_TOKEN: adminToken,
      TRACKLANE_MASTER_KEY: `base64:${randomBytes(32).toString('base64')}`,
      LOG_LEVEL: process.env['BENCH_SERVER_LOG_LEVEL'] ?? 'warn',
    },
  });
  const pid = child.pid;
  try {
    await waitReady(child, url, { name: 'server', timeoutMs: 120_000, everyMs: 200, showOutput: false });
    const admin = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${url}${path}`, {
        method,
        headers: { authorization: `Bearer ${adminToken}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        ...(body ? { body: JSON.stringify(body) } : {}),
      });
      if (!res.ok) throw new Error(`${method} ${path}: ${res.status}`);
      return (await res.json()) as Record<string, unknown>;
    };
    const tenants = ['bench-a', 'bench-b'];
    const keys: Record<string, string> = {};
    for (const t of tenants) keys[t] = String((await admin('PUT', `/v1/admin/tenants/${t}`))['writeKey']);
    await admin('PATCH', '/v1/admin/tenants/bench-b/flags', { anonymizeIdentity: true, ipPolicy: 'geo_then_mask' });

    // Realistic traffic from the demo generator, re-cut into large per-tenant batches and
    // serialised up front so the load generator spends its time on the wire.
    const traffic = generateTraffic({ seed: 7, events: total, tenants, startMs: Date.now() });
    const bodies: { auth: string; body: string; n: number }[] = [];
    for (const tenant of tenants) {
      const msgs: SegmentMessage[] = traffic.batches.filter((b) => b.tenant === tenant).flatMap((b) => b.messages);
      const auth = `Basic ${Buffer.from(`${keys[tenant]}:`).toString('base64')}`;
      for (let i = 0; i < msgs.length; i += batchSize) {
        const batch = msgs.slice(i, i + batchSize);
        bodies.push({ auth, body: JSON.stringify({ batch, sentAt: new Date().toISOString() }), n: batch.length });
      }
    }
    // warm-up: a few batches outside the timed window (JIT, first parts, caches)
    const warm = bodies.splice(0, 4);
    await Promise.all(warm.map((b) => post(url, b)));
    const warmEvents = warm.reduce((a, b) => a + b.n, 0);

    const rssBefore = readRssKb(pid);
    const serverCpu0 = readCpuSeconds(pid);
    const loadCpu0 = process.cpuUsage();
    const started = process.hrtime.bigint();
    let next = 0;
    let sent = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < bodies.length) {
          const b = bodies[next++];
          if (!b) break;
          await post(url, b);
          sent += b.n;
        }
      }),
    );
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const peakRssMb = readPeakRssKb(pid) / 1024;
    const serverCores = (readCpuSeconds(pid) - serverCpu0) / seconds;
    const loadCpu = process.cpuUsage(loadCpu0);
    const loadCores = (loadCpu.user + loadCpu.system) / 1e6 / seconds;

    const rows = await admin('POST', '/v1/admin/query', { sql: 'SELECT count() AS n FROM events FINAL' });
    const stored = Number((rows['rows'] as { n: number | string }[])[0]?.n);
    if (stored !== sent + warmEvents) throw new Error(`stored ${stored} rows, expected ${sent + warmEvents}`);

    const eventsPerSec = sent / seconds;
    // NOTE: chDB allows one process per data dir: the server is stopped before this process opens it
    await child.stop();
    const raw = await rawInsertBaseline(join(dataDir, 'clickhouse'), RAW_BATCH);
    if (raw.rows !== stored) throw new Error(`raw baseline inserted ${raw.rows} rows, expected ${stored}`);
    const ratio = eventsPerSec / raw.rowsPerSec;
    return {
      name: 'embedded end-to-end (HTTP → ClickHouse)',
      method:
        `tracklane start (chDB) in its own process; this process posts ${bodies.length} pre-serialised Segment batches of ` +
        `${batchSize} realistic events (2 tenants, one anonymizing + geo_then_mask) over loopback with ${concurrency} requests in flight; ` +
        `timed from the first request to the last 2xx (each 2xx waits for the ClickHouse insert); then SELECT count() FROM events FINAL ` +
        `= ${stored} checks nothing was lost; peak RSS = VmHWM of the server process (RSS before load ${Math.round((rssBefore ?? 0) / 1024)} MB). ` +
        `Baseline, same run, same engine: once the server has exited, this process opens chDB (the same chdb build) on the server's own data dir, ` +
        `reads back the ${raw.rows} stored events rows (FINAL, times as ms numbers like the sink sends them) as JSONCompactEachRow tuples, ` +
        `and inserts them with @clickhouse/client insert(format JSONCompactEachRow) into a fresh copy of the events table (CREATE TABLE … AS events, its merges on; merges of the tables the server wrote stopped), ` +
        `sequential batches of ${raw.batch}, timed from the first insert to the last; ratio = end-to-end events/s ÷ raw rows/s. ` +
        `The raw side stores the events rows only; the end-to-end side also parses, validates, enriches, anonymizes and writes trait snapshots and users/accounts.`,
      metrics: {
        events: sent,
        seconds: round(seconds, 2),
        eventsPerSec: Math.round(eventsPerSec),
        peakRssMb: Math.round(peakRssMb),
        serverCpuCores: round(serverCores, 2),
        loadGeneratorCpuCores: round(loadCores, 2),
        rawInsertRowsPerSec: Math.round(raw.rowsPerSec),
        rawInsertCpuCores: round(raw.cores, 2),
        ratio: round(ratio, 2),
      },
      target: '≥ 50,000 events/s and ≥ 0.6 × the raw insert of the same rows (goal 0.8 ×), peak RSS reported',
      passed: eventsPerSec >= 50_000 && ratio >= 0.6,
    };
  } finally {
    await child.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/**
 * The raw @clickhouse/client insert of the rows the server stored, on its (now closed) data dir:
 * rows read back first, then timed inserts into a fresh table.
 */
async function rawInsertBaseline(chdbDir: string, batch: number): Promise<{ rows: number; rowsPerSec: number; cores: number; batch: number }> {
  const client = createClickHouse({ dataDir: chdbDir });
  try {
    const ms = new Set(['timestamp', 'client_ts', 'sent_at', 'received_at']);
    const select = EVENT_COLUMNS.map((c) => (ms.has(c) ? `toUnixTimestamp64Milli(${c}) AS ${c}` : c)).join(', ');
    const rs = await client.query({
      query: `SELECT ${select} FROM events FINAL`,
      format: 'JSONCompactEachRow',
      clickhouse_settings: { output_format_json_quote_64bit_integers: 0 },
    });
    const tuples = await rs.json<unknown[]>();
    // NOTE: merges of what the server wrote would otherwise run during the timed inserts
    for (const t of ['events', 'identify_snapshots', 'users', 'accounts']) await client.command({ query: `SYSTEM STOP MERGES ${t}` });
    await client.command({ query: 'DROP TABLE IF EXISTS events_raw_baseline' });
    await client.command({ query: 'CREATE TABLE events_raw_baseline AS events' });
    // warm-up outside the timed window, on a table of its own
    await client.command({ query: 'CREATE TABLE events_raw_warm AS events' });
    await client.insert({ table: 'events_raw_warm', values: tuples.slice(0, batch), format: 'JSONCompactEachRow', columns: [...EVENT_COLUMNS] });
    await client.command({ query: 'DROP TABLE events_raw_warm' });
    const cpu0 = process.cpuUsage();
    const started = process.hrtime.bigint();
    for (let i = 0; i < tuples.length; i += batch) {
      await client.insert({ table: 'events_raw_baseline', values: tuples.slice(i, i + batch), format: 'JSONCompactEachRow', columns: [...EVENT_COLUMNS] });
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const cpu = process.cpuUsage(cpu0);
    const count = await client.query({ query: 'SELECT count() AS n FROM events_raw_baseline', format: 'JSONEachRow' });
    const [row] = await count.json<{ n: unknown }>();
    return { rows: toNumber(row?.n), rowsPerSec: tuples.length / seconds, cores: (cpu.user + cpu.system) / 1e6 / seconds, batch };
  } finally {
    await client.close();
  }
}

async function post(url: string, b: { auth: string; body: string }): Promise<void> {
  const res = await fetch(`${url}/v1/batch`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: b.auth },
    body: b.body,
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`batch failed with ${res.status}: ${text.slice(0, 300)}`);
}

function readStatusKb(pid: number, field: string): number | undefined {
  try {
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}
const readRssKb = (pid: number) => readStatusKb(pid, 'VmRSS');
/** user + system CPU seconds of a process, all threads (/proc/<pid>/stat fields 14 and 15) */
function readCpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) / 100;
}
const readPeakRssKb = (pid: number) => readStatusKb(pid, 'VmHWM') ?? 0;
const round = (n: number, d: number) => Math.round(n * 10 ** d) / 10 ** d;

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const report = await benchEndToEnd();
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
}
