// One run of `npm run faults`: the fleet as separate processes on the real Kafka, registry and
// ClickHouse gateway, with a Redis of its own (append-only file, so an outage loses nothing, as
// a production Redis with persistence), the fleet's ClickHouse traffic through a proxy that can
// make it slow, the maximum load measured once at the start, and per scenario: fresh tenants (one
// with anonymization on from the start), a ledger of every acknowledged event, fault windows,
// recovery times, 2xx → visible latency, the sink's committed offsets, and the checks at the end.
import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { createLogger } from '../../libs/core/logger.js';
import { topicNames } from '../../libs/kafka/topics.js';
import { tenantFlagsSchema } from '../../libs/tenants/flags.js';
import { startFleet, type Fleet } from '../../test/support/fleet.js';
import { makeStoredKeys } from '../../test/support/stored-key-ring.js';
import { eventually } from '../../test/support/poll.js';
import { startPrivateRedis, type PrivateRedis } from '../../test/support/private-redis.js';
import { CLICKHOUSE_HOST, CLICKHOUSE_PORT, clickhousePassword, clickhouseUser } from '../services/clickhouse-gateway.js';
import { endpointsToEnv, ensureServices, type EnsuredServices } from '../services/services.js';
import { batchKey, checkLedger, startLoad, storedCount, type Ledger } from './ledger.js';
import { checkCleanTopic, startOffsetSampler, type OffsetSampler, type OptedIn } from './offsets.js';
import { startDelayProxy, type DelayProxy } from './tcp-proxy.js';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** the fleet's per-request ClickHouse timeout in the harness (the "slow" fault delays past it) */
export const CLICKHOUSE_TIMEOUT_MS = 5_000;

export interface Tenant {
  id: string;
  writeKey: string;
}

export interface FaultRun {
  services: EnsuredServices;
  fleet: Fleet;
  redis: PrivateRedis;
  clickhouseProxy: DelayProxy;
  /** the harness's own client, straight to the gateway */
  ch: ClickHouseClient;
  kafka: Kafka;
  admin: Admin;
  /** events/s the fleet stored end to end in the calibration at the start */
  maxEventsPerSec: number;
  calibration: Record<string, unknown>;
  /** pids of processes the harness stopped or killed itself (not findings) */
  expectedExits: Set<number>;
  /** stops the load and samplers of a scenario that threw before its finish() */
  abandonScenarios(): Promise<void>;
  newTenant(name: string): Promise<Tenant>;
  /** switches anonymization on; resolves anonymizeSince */
  anonymize(tenantId: string): Promise<number>;
  close(): Promise<void>;
}

const DEFAULT_USERS = 24;
export const isClearUserId = (u: string): boolean => /^user-\d+$/.test(u);
/** stop functions of the scenarios started and not finished (one at a time in practice) */
const unfinished = new Set<() => Promise<void>>();

export async function openFaultRun(opts: { short: boolean; log: (line: string) => void; env?: Record<string, string> }): Promise<FaultRun> {
  const services = await ensureServices({ fresh: false });
  Object.assign(process.env, endpointsToEnv(services), { CLICKHOUSE_USER: clickhouseUser, CLICKHOUSE_PASSWORD: clickhousePassword });
  const redis = await startPrivateRedis();
  const clickhouseProxy = await startDelayProxy({ host: CLICKHOUSE_HOST, port: CLICKHOUSE_PORT });
  const fleet = await startFleet({
    partitions: 3,
    env: { REDIS_URL: redis.url, CLICKHOUSE_URL: clickhouseProxy.url, CLICKHOUSE_REQUEST_TIMEOUT_MS: String(CLICKHOUSE_TIMEOUT_MS), ...opts.env },
  });
  // NOTE: quiet: the harness's own queries fail on purpose while the gateway is down, and retry
  const ch = createClient({ url: services.clickhouseUrl, username: clickhouseUser, password: clickhousePassword, log: { level: ClickHouseLogLevel.OFF } });
  const kafka = new Kafka({ clientId: 'tracklane-faults', brokers: services.kafkaBrokers.split(','), logLevel: logLevel.NOTHING, retry: { retries: 3 } });
  const admin = kafka.admin();
  await admin.connect();
  let n = 0;
  const run: FaultRun = {
    async abandonScenarios() {
      for (const stop of [...unfinished]) await stop().catch(() => undefined);
    },
    services,
    fleet,
    redis,
    clickhouseProxy,
    ch,
    kafka,
    admin,
    maxEventsPerSec: 0,
    calibration: {},
    expectedExits: new Set(),
    async newTenant(name) {
      const id = `f${fleet.prefix.slice(1, 9)}-${name}-${n++}`;
      const created = await fleet.admin<{ writeKey: string }>('PUT', `/v1/admin/tenants/${id}`);
      if (created.status !== 201) throw new Error(`tenant ${id} not created (${created.status})`);
      return { id, writeKey: created.body.writeKey };
    },
    async anonymize(tenantId) {
      const flipped = await fleet.admin<{ anonymizeSince: number }>('PATCH', `/v1/admin/tenants/${tenantId}/flags`, { anonymizeIdentity: true });
      if (flipped.status !== 200) throw new Error(`anonymization of ${tenantId} not switched on (${flipped.status})`);
      // NOTE: what the compactor's key keeper does (only compactor-crash runs one): the tenant's stored key, before anonymizeSince
      const flags = tenantFlagsSchema.parse(flipped.body);
      await makeStoredKeys({ redisUrl: redis.url, redisPrefix: fleet.env['TRACKLANE_REDIS_PREFIX'] ?? '', masterKey: fleet.env['TRACKLANE_MASTER_KEY'] ?? '', tenants: () => [{ tenantId, flags }], logger: createLogger({ level: 'warn', name: 'fault-harness' }) });
      return Number(flipped.body.anonymizeSince);
    },
    async close() {
      for (const p of fleet.processes.values()) run.expectedExits.add(p.pid);
      await fleet.stopAll();
      await admin.disconnect().catch(() => undefined);
      await ch.close();
      await clickhouseProxy.close();
      await redis.destroy();
    },
  };
  await calibrate(run, opts);
  return run;
}

/**
 * The maximum the fleet sustains end to end here and now: unthrottled batches from four
 * concurrent senders for a while, then the time until the last of them is stored.
 */
async function calibrate(run: FaultRun, opts: { short: boolean; log: (line: string) => void }): Promise<void> {
  const t = await run.newTenant('calibration');
  const seconds = opts.short ? 6 : 15;
  const started = Date.now();
  const load = startLoad({ url: () => run.fleet.collectorUrl(), writeKey: t.writeKey, tenantId: t.id, idPrefix: 'cal-', eventsPerSec: 1e9, batch: 100, concurrency: 4 });
  await sleep(seconds * 1000);
  await load.stop();
  const acked = load.acknowledgedEvents();
  await eventually(async () => (await storedCount(run.ch, [t.id])) >= acked, 180_000, 'the calibration load stored', 250).catch(async () => {
    throw new Error(`calibration: ${acked} events acknowledged, not all stored within 180 s:\n${await run.fleet.diagnostics()}`);
  });
  const drainedMs = Date.now() - started;
  run.maxEventsPerSec = Math.round(acked / (drainedMs / 1000));
  const check = await checkLedger(run.ch, load);
  run.calibration = { seconds, acknowledged: acked, drainedMs, maxEventsPerSec: run.maxEventsPerSec, lost: check.lost.length, duplicatedThroughFinal: check.duplicatedCount };
  opts.log(`calibration: ${acked} events in ${seconds} s from 4 senders, all stored after ${(drainedMs / 1000).toFixed(1)} s → maximum ${run.maxEventsPerSec} events/s end to end`);
  if (check.lost.length > 0 || check.duplicatedCount > 0) throw new Error(`calibration lost ${check.lost.length} and duplicated ${check.duplicatedCount} events without any fault (first lost: ${check.lost.slice(0, 10).join(', ')})`);
}

export interface FaultWindow {
  fault: string;
  start: number;
  end: number;
  /** fault end → the lag below one second of load, and staying there for 3 s; null: not within the limit */
  recoveryMs: number | null;
}

export interface LatencySample {
  /** when the batch was acknowledged */
  at: number;
  ms: number;
}

/** The load, windows and checks of one scenario on a fault run. */
export interface ScenarioRun {
  rate: number;
  plain: Ledger;
  optedIn: Ledger;
  windows: FaultWindow[];
  latency: LatencySample[];
  /** switches the opted-in tenant's anonymization on now (a scenario that started without it) */
  anonymizeNow(): Promise<number>;
  /** runs a fault (from its start to its end), then waits until the fleet caught up */
  fault(name: string, act: () => Promise<void>, recoveryLimitMs?: number): Promise<FaultWindow>;
  /** processes that exited by themselves since the scenario began (findings) */
  unexpectedExits(): string[];
  /** stops the load, waits for the pipeline to drain and checks everything */
  finish(): Promise<{ figures: Record<string, unknown>; failures: string[] }>;
}

export async function startScenario(
  run: FaultRun,
  opts: { name: string; loadFraction: number; rate?: number; /** default true; false: the scenario calls anonymizeNow() */ anonymizeFromStart?: boolean },
): Promise<ScenarioRun> {
  const rate = opts.rate ?? Math.max(50, Math.round(run.maxEventsPerSec * opts.loadFraction));
  const plainTenant = await run.newTenant(opts.name);
  const optedInTenant = await run.newTenant(`${opts.name}-anon`);
  const fromStart = opts.anonymizeFromStart ?? true;
  let since = fromStart ? await run.anonymize(optedInTenant.id) : Number.POSITIVE_INFINITY;
  // NOTE: the flag applies from anonymizeSince (stamped ahead): wait it out so every event of the opted-in tenant must be pseudonymized
  if (fromStart) await sleep(Math.max(0, since - Date.now()) + 100);
  const startedAt = Date.now();
  const url = (): string => run.fleet.collectorUrl();
  const plain = startLoad({ url, writeKey: plainTenant.writeKey, tenantId: plainTenant.id, idPrefix: `${opts.name}-`, eventsPerSec: rate * 0.8, users: DEFAULT_USERS });
  const optedIn = startLoad({ url, writeKey: optedInTenant.writeKey, tenantId: optedInTenant.id, idPrefix: `${opts.name}-a-`, eventsPerSec: rate * 0.2, users: DEFAULT_USERS });
  const ledgers = [plain, optedIn];
  const tenantIds = ledgers.map((l) => l.tenantId);
  const sampler: OffsetSampler = startOffsetSampler(run.admin, `${run.fleet.prefix}tracklane-sink`, topicNames(run.fleet.prefix).clean);
  const windows: FaultWindow[] = [];
  const latency: LatencySample[] = [];
  const exitsBefore = new Set([...run.fleet.processes.values()].filter((p) => p.exitStatus() !== null).map((p) => p.pid));
  const stopLatency = startLatencyPoller(run.ch, ledgers, latency);
  const outputBefore = new Map([...run.fleet.processes.values()].map((p) => [p.pid, p.output().length]));
  const rebuildsBefore = await consumerRebuildsByPid(run.fleet);
  const acked = (): number => ledgers.reduce((n, l) => n + l.acknowledgedEvents(), 0);
  const abandon = async (): Promise<void> => {
    unfinished.delete(abandon);
    await Promise.all([...ledgers.map((l) => l.stop()), stopLatency(), sampler.stop()]);
  };
  unfinished.add(abandon);

  const scenario: ScenarioRun = {
    rate,
    plain,
    optedIn,
    windows,
    latency,
    async anonymizeNow() {
      since = await run.anonymize(optedInTenant.id);
      return since;
    },
    async fault(name, act, recoveryLimitMs = 180_000) {
      const start = Date.now();
      await act();
      const end = Date.now();
      // NOTE: caught up = the lag below one second of load and staying there for 3 s: right
      // after a broker restart nothing new was acknowledged yet, and the lag grows again while
      // the consumer groups rejoin
      let recoveryMs: number | null = null;
      let caughtUpAt: number | null = null;
      while (Date.now() - end < recoveryLimitMs) {
        const target = acked() - rate;
        const at = Date.now();
        if ((await storedCount(run.ch, tenantIds).catch(() => -1)) >= target) {
          caughtUpAt ??= at;
          if (Date.now() - caughtUpAt >= 3_000) {
            recoveryMs = Math.max(0, caughtUpAt - end);
            break;
          }
        } else caughtUpAt = null;
        await sleep(250);
      }
      const w = { fault: name, start, end, recoveryMs };
      windows.push(w);
      return w;
    },
    unexpectedExits() {
      return [...run.fleet.processes.entries()]
        .filter(([, p]) => p.exitStatus() !== null && !run.expectedExits.has(p.pid) && !exitsBefore.has(p.pid))
        .map(([k, p]) => `${k} (${p.exitStatus()})`);
    },
    async finish() {
      unfinished.delete(abandon);
      await Promise.all(ledgers.map((l) => l.stop()));
      const total = acked();
      await eventually(async () => (await storedCount(run.ch, tenantIds)) >= total, 240_000, 'every acknowledged event stored', 500).catch(() => undefined);
      await stopLatency();
      await sampler.stop();
      // one last sample once everything is stored: the final commits count too
      const finalSampler = startOffsetSampler(run.admin, `${run.fleet.prefix}tracklane-sink`, topicNames(run.fleet.prefix).clean, 10_000);
      await sleep(500);
      await finalSampler.stop();
      const upTo = sampler.highest();
      for (const [p, o] of finalSampler.highest()) if (o > (upTo.get(p) ?? -1n)) upTo.set(p, o);
      const checks = await Promise.all(ledgers.map((l) => checkLedger(run.ch, l)));
      const opted: OptedIn[] = Number.isFinite(since) ? [{ tenantId: optedInTenant.id, since, isClear: isClearUserId }] : [];
      const topic = await checkCleanTopic({ kafka: run.kafka, registryUrl: run.services.schemaRegistryUrl, prefix: run.fleet.prefix, upTo, ch: run.ch, optedIn: opted });
      const clearStored = Number.isFinite(since) ? await clearIdsStored(run.ch, optedInTenant.id, since, fromStart) : [];
      const lost = checks.flatMap((c) => c.lost);
      const duplicated = checks.flatMap((c) => c.duplicated);
      const duplicatedCount = checks.reduce((n, c) => n + c.duplicatedCount, 0);
      const exits = scenario.unexpectedExits();
      const outside = latency.filter((s) => !windows.some((w) => s.at >= w.start - 1_000 && s.at <= w.end + (w.recoveryMs ?? 0)));
      const sequenceErrors = producerSequenceErrors(run.fleet, outputBefore);
      const figures: Record<string, unknown> = {
        loadEventsPerSec: rate,
        loadFraction: opts.rate === undefined ? opts.loadFraction : null,
        durationS: Math.round((Date.now() - startedAt) / 1000),
        acknowledged: total,
        lost: lost.length,
        duplicatedThroughFinal: duplicatedCount,
        physicalCopies: checks.reduce((n, c) => n + c.physicalCopies, 0),
        clearIds: clearStored.length + topic.clearOnTopic.length,
        offsetsAhead: topic.aheadCount,
        offsetSamples: sampler.samples(),
        cleanRecordsChecked: topic.checked,
        refused: Object.fromEntries([...plain.refused].map(([s, c]) => [s, c + (optedIn.refused.get(s) ?? 0)])),
        faults: windows.map((w) => ({ fault: w.fault, seconds: Math.round((w.end - w.start) / 100) / 10, recoveryS: w.recoveryMs === null ? null : Math.round(w.recoveryMs / 100) / 10 })),
        recoveryMaxS: windows.length ? Math.max(...windows.map((w) => (w.recoveryMs ?? Number.POSITIVE_INFINITY) / 1000)) : null,
        latencyOutsideFaultsMs: quantiles(outside.map((s) => s.ms)),
        workerExits: exits,
        consumerRebuilds: await consumerRebuilds(run.fleet, rebuildsBefore),
        producerSequenceErrors: sequenceErrors,
      };
      const failures: string[] = [];
      if (lost.length) failures.push(`${lost.length} acknowledged events lost: ${lost.slice(0, 20).join(', ')}`);
      if (duplicatedCount) failures.push(`${duplicatedCount} events stored more than once through FINAL: ${duplicated.slice(0, 20).join(', ')}`);
      if (clearStored.length) failures.push(`clear ids of an opted-in tenant stored: ${clearStored.slice(0, 20).join(', ')}`);
      if (topic.clearOnTopic.length) failures.push(`clear ids of an opted-in tenant on the clean topic: ${topic.clearOnTopic.slice(0, 20).join(', ')}`);
      if (topic.aheadCount) failures.push(`${topic.aheadCount} clean-topic records below a committed sink offset are not stored: ${topic.ahead.slice(0, 20).join(', ')}`);
      if (exits.length) failures.push(`workers exited by themselves: ${exits.join(', ')}`);
      if (Object.keys(sequenceErrors).length) failures.push(`producer sequence errors (an idempotent producer in the fleet): ${JSON.stringify(sequenceErrors)}`);
      const stuck = windows.filter((w) => w.recoveryMs === null);
      if (stuck.length) failures.push(`no recovery after: ${stuck.map((w) => w.fault).join(', ')}`);
      if (total === 0) failures.push('nothing was acknowledged');
      return { figures, failures };
    },
  };
  return scenario;
}

/** Events and users of an opted-in tenant that carry a clear id (events from `since`; users too when it was opted in from the start). */
async function clearIdsStored(ch: ClickHouseClient, tenantId: string, since: number, fromStart: boolean): Promise<string[]> {
  const q = async (query: string): Promise<string[]> =>
    (await (await ch.query({ query, query_params: { t: tenantId, s: since }, format: 'JSONEachRow' })).json<{ id: string }>()).map((r) => r.id);
  const events = await q(
    "SELECT event_id AS id FROM events FINAL WHERE tenant_id = {t:String} AND toUnixTimestamp64Milli(received_at) >= {s:Int64} AND (identity_anonymized = 0 OR match(ifNull(user_id, ''), '^user-[0-9]+$')) LIMIT 1000",
  );
  const users = fromStart ? await q("SELECT user_id AS id FROM users FINAL WHERE tenant_id = {t:String} AND match(user_id, '^user-[0-9]+$') LIMIT 1000") : [];
  return [...events, ...users.map((u) => `users:${u}`)];
}

/**
 * Polls ClickHouse for the acknowledged batches not yet seen (a key range from the oldest one,
 * ids being in batch order) and records 2xx → visible per batch; a batch counts as visible at
 * the start of the first poll that finds all its events, so a figure is high by at most a poll.
 */
function startLatencyPoller(ch: ClickHouseClient, ledgers: Ledger[], out: LatencySample[], pollMs = 500): () => Promise<void> {
  const cursor = new Map<Ledger, number>(ledgers.map((l) => [l, 0]));
  let running = true;
  const loop = (async () => {
    while (running) {
      const pollAt = Date.now();
      for (const l of ledgers) {
        const from = cursor.get(l) ?? 0;
        const pending = l.acked.slice(from, from + 2_000);
        const first = pending[0];
        if (!first) continue;
        try {
          const rows = await (
            await ch.query({
              query: `SELECT substring(event_id, 1, {k:UInt32}) AS b, uniqExact(event_id) AS n FROM events
                      WHERE tenant_id = {t:String} AND event_id >= {lo:String} AND event_id < {hi:String} GROUP BY b`,
              query_params: { t: l.tenantId, k: batchKey(l.idPrefix, 0).length, lo: batchKey(l.idPrefix, first.batch), hi: batchKey(l.idPrefix, 999_999_999) },
              format: 'JSONEachRow',
            })
          ).json<{ b: string; n: string }>();
          const seen = new Map(rows.map((r) => [r.b, Number(r.n)]));
          let advanced = from;
          const done = new Set<number>();
          for (const a of pending) if ((seen.get(batchKey(l.idPrefix, a.batch)) ?? 0) >= l.batchSize) done.add(a.batch);
          // NOTE: batches complete out of order (concurrent partitions): record each once, advance over the completed prefix
          for (const a of pending) {
            if (!done.has(a.batch) || a.seen) continue;
            a.seen = true;
            out.push({ at: a.at, ms: pollAt - a.at });
          }
          while (l.acked[advanced]?.seen) advanced++;
          cursor.set(l, advanced);
        } catch {
          // ClickHouse away (a fault): the next poll counts
        }
      }
      await sleep(Math.max(0, pollMs - (Date.now() - pollAt)));
    }
  })();
  return async () => {
    running = false;
    await loop;
  };
}

export function quantiles(values: number[]): { n: number; p50: number | null; p99: number | null; max: number | null } {
  const s = [...values].sort((a, b) => a - b);
  const q = (p: number): number | null => (s.length ? (s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? null) : null);
  return { n: s.length, p50: q(0.5), p99: q(0.99), max: s.at(-1) ?? null };
}

/**
 * Sequence errors in each process's log since the scenario began: only an idempotent producer
 * gets them, and KafkaJS's one loses or stalls batches after a broker restart (libs/kafka/
 * outputs.ts); the fleet's producers are not idempotent, so any count here is a finding.
 */
function producerSequenceErrors(fleet: Fleet, outputBefore: Map<number, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, p] of fleet.processes) {
    const n = p.output().slice(outputBefore.get(p.pid) ?? 0).split('out of order sequence number').length - 1;
    if (n > 0) out[k] = n;
  }
  return out;
}

/** Consumers the workers rebuilt in process (KafkaJS gave up on them), per running process, since `before`. */
export async function consumerRebuilds(fleet: Fleet, before: Map<number, number> = new Map()): Promise<Record<string, number>> {
  const now = await consumerRebuildsByPid(fleet);
  const out: Record<string, number> = {};
  for (const [k, p] of fleet.processes) {
    const n = (now.get(p.pid) ?? 0) - (before.get(p.pid) ?? 0);
    if (n > 0) out[k] = n;
  }
  return out;
}

async function consumerRebuildsByPid(fleet: Fleet): Promise<Map<number, number>> {
  const counts = new Map<number, number>();
  for (const p of fleet.processes.values()) {
    if (p.exitStatus() !== null) continue;
    const text = await (await fetch(`http://127.0.0.1:${p.port}/metrics`, { signal: AbortSignal.timeout(3_000) })).text().catch(() => '');
    const n = text
      .split('\n')
      .filter((l) => l.startsWith('tracklane_consumer_rebuilds_total{'))
      .reduce((sum, l) => sum + Number(l.split(' ').at(-1)), 0);
    counts.set(p.pid, n);
  }
  return counts;
}
