// Benchmark of the Kafka fleet, in one run against the real services
// (Kafka, Apicurio, Redis, the ClickHouse gateway), every worker in its own process:
//   1. each consuming stage (enricher, anonymizer, sink) draining a pre-filled backlog of records
//      of many events, against a no-op one-event-per-record consume-and-produce passthrough
//      (bench/passthrough-worker.ts) over the same events, one per record, with the same runner,
//      consumer and producer settings — target ≥ 3× each (events/s);
//   2. end-to-end fleet throughput: HTTP batches into the collector until the rows are visible;
//   3. latency from the collector's 2xx to the row being visible, at half of (2);
//   4. peak RSS (VmHWM) of every worker process.
// `npx tsx bench/fleet-bench.ts` or `npm run bench -- fleet`. FLEET_BENCH_CPU_PROF=enricher,passthrough
// (any of enricher, anonymizer, sink, passthrough) writes .bench/profiles/<run>/*.cpuprofile of the drain runs
// (the largest file of a run is the main thread; the other is tsx's loader thread).
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import type { Admin, Kafka, Message } from 'kafkajs';
import { createAnonymizeStage } from '../libs/anonymize/anonymize-stage.js';
import { createKeyRing } from '../libs/anonymize/key-ring.js';
import { parseMasterKey } from '../libs/anonymize/master-key.js';
import { createClickHouse, type ClickHouseClient } from '../libs/clickhouse/client.js';
import { createLogger } from '../libs/core/logger.js';
import { makeStoredKeys } from '../test/support/stored-key-ring.js';
import type { Result } from '../libs/core/result.js';
import { createEnricher } from '../libs/enrich/enrich-stage.js';
import { partitionKey, type CleanEvent, type EnrichedEvent, type RawEvent } from '../libs/events/envelope.js';
import { createKafka } from '../libs/kafka/kafka-client.js';
import { connectProducer, DEFAULT_EVENTS_PER_RECORD, groupByPartition, messagesOf, sendInChunks } from '../libs/kafka/outputs.js';
import { createRecordCodec } from '../libs/kafka/record-codec.js';
import { ensureTopics, topicNames, type TopicNames } from '../libs/kafka/topics.js';
import { freePort, spawnTsx, waitReady } from '../test/support/child-process.js';
import { eventually } from '../test/support/poll.js';
import { openRedisTenantStore, type RedisTenantStore } from '../libs/tenants/redis-tenant-store.js';
import { ensureServices, stopServices, type ServiceEndpoints, type ServiceName } from '../scripts/services/services.js';
import { clickhouseLogin } from '../test/support/services.js';
import { normalizeAll } from '../services/collector/ingest-routes.js';
import type { SegmentMessage } from '../services/demo/segment-types.js';
import { generateTraffic } from '../services/demo/traffic.js';
import type { BenchReport } from './bench-types.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const RATIO_TARGET = 3.0;
const E2E_GOAL = 20_000;
/** events per collector request in the e2e phase, and per group of the stage inputs */
const REQUEST_EVENTS = 500;
const P99_GOAL_MS = 2_000;
const RSS_GOAL_MB = 300;
/** the collector's default MAX_REQUEST_BYTES: a batch of 500 that does not fit is split in two */
const MAX_REQUEST_BYTES = 500 * 1024;
const POLL_MS = 100;

export interface FleetBenchOptions {
  /** records pre-filled into each stage's input topic (default 100,000) */
  stageEvents?: number;
  /** alternations of stage run and passthrough run; the best of each counts (default 2) */
  rounds?: number;
  /** events sent through the collector for the throughput run (default 100,000) */
  e2eEvents?: number;
  /** HTTP batch size and requests in flight for the throughput run (default 500 and 8) */
  batchSize?: number;
  concurrency?: number;
  /** fixed-rate phase of the latency run, and its batch size (default 30 s, 50) */
  latencySeconds?: number;
  latencyBatch?: number;
  /** partitions of every topic (default 6, the services' default) */
  partitions?: number;
}

export type StageName = 'enrich' | 'anonymize' | 'sink';
export type ServiceEntry = 'collector' | 'enricher' | 'anonymizer' | 'sink' | 'passthrough';

export interface StageSpec {
  name: StageName;
  service: 'enricher' | 'anonymizer' | 'sink';
  input: keyof Pick<TopicNames, 'raw' | 'enriched' | 'clean'>;
}
export const STAGES: readonly StageSpec[] = [
  { name: 'enrich', service: 'enricher', input: 'raw' },
  { name: 'anonymize', service: 'anonymizer', input: 'enriched' },
  { name: 'sink', service: 'sink', input: 'clean' },
];

export interface Drain {
  /** events (= records × events per record) committed per second */
  eventsPerSec: number;
  /** records counted (from the first observed commit to the end) and the time they took */
  records: number;
  seconds: number;
  cpuCores: number;
  /** CPU over the same window of each watched process (drainOnce's watchPids), in order */
  watchedCores: number[];
  peakRssMb: number;
}

interface StageResult {
  spec: StageSpec;
  stage: Drain[];
  passthrough: Drain[];
  /** events per record of the stage's input (the passthrough's hold one each) */
  eventsPerRecord: number;
}

const log = (s: string) => process.stderr.write(`[fleet-bench] ${s}\n`);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const round = (n: number, d: number) => Math.round(n * 10 ** d) / 10 ** d;

export async function benchFleet(opts: FleetBenchOptions = {}): Promise<BenchReport> {
  const o = {
    stageEvents: opts.stageEvents ?? envNumber('FLEET_BENCH_STAGE_EVENTS') ?? 100_000,
    rounds: opts.rounds ?? envNumber('FLEET_BENCH_ROUNDS') ?? 2,
    e2eEvents: opts.e2eEvents ?? envNumber('FLEET_BENCH_E2E_EVENTS') ?? 100_000,
    batchSize: opts.batchSize ?? REQUEST_EVENTS,
    concurrency: opts.concurrency ?? 8,
    latencySeconds: opts.latencySeconds ?? envNumber('FLEET_BENCH_LATENCY_SECONDS') ?? 30,
    latencyBatch: opts.latencyBatch ?? 50,
    partitions: opts.partitions ?? 6,
  };
  const { endpoints, started } = await resolveEndpoints();
  try {
    return await runBench(endpoints, o);
  } finally {
    if (started.length > 0) {
      log(`stopping the services this run started: ${started.join(', ')}`);
      await stopServices({ only: started });
    }
  }
}

/** The env's endpoints when all four are set, else whatever ensureServices() finds or starts. */
export async function resolveEndpoints(): Promise<{ endpoints: ServiceEndpoints; started: ServiceName[] }> {
  const e = process.env;
  let endpoints: ServiceEndpoints;
  let started: ServiceName[] = [];
  if (e['KAFKA_BROKERS'] && e['SCHEMA_REGISTRY_URL'] && e['REDIS_URL'] && e['CLICKHOUSE_URL']) {
    endpoints = { kafkaBrokers: e['KAFKA_BROKERS'], schemaRegistryUrl: e['SCHEMA_REGISTRY_URL'], redisUrl: e['REDIS_URL'], clickhouseUrl: e['CLICKHOUSE_URL'] };
  } else {
    log('KAFKA_BROKERS / SCHEMA_REGISTRY_URL / REDIS_URL / CLICKHOUSE_URL not all set: ensureServices()');
    const ensured = await ensureServices();
    started = ensured.started;
    endpoints = ensured;
  }
  // NOTE: this benchmark floods what it talks to; it only ever targets this machine.
  const hosts = [...endpoints.kafkaBrokers.split(',').map((b) => `tcp://${b.trim()}`), endpoints.schemaRegistryUrl, endpoints.redisUrl, endpoints.clickhouseUrl];
  for (const h of hosts) {
    const host = new URL(h).hostname;
    if (host !== '127.0.0.1' && host !== 'localhost') {
      if (started.length > 0) await stopServices({ only: started });
      throw new Error(`fleet bench targets 127.0.0.1 only; ${h} is not local`);
    }
  }
  return { endpoints, started };
}

export type Opts = Required<FleetBenchOptions>;

/** The environment every worker process of a bench run gets (the fleet's configuration). */
export function fleetBaseEnv(ep: ServiceEndpoints, a: { redisPrefix: string; masterKey: string; partitions: number }): Record<string, string> {
  return {
    KAFKA_BROKERS: ep.kafkaBrokers,
    SCHEMA_REGISTRY_URL: ep.schemaRegistryUrl,
    REDIS_URL: ep.redisUrl,
    CLICKHOUSE_URL: ep.clickhouseUrl,
    CLICKHOUSE_USER: clickhouseLogin().username,
    CLICKHOUSE_PASSWORD: clickhouseLogin().password,
    TRACKLANE_REDIS_PREFIX: a.redisPrefix,
    KAFKA_PARTITIONS: String(a.partitions),
    TRACKLANE_MASTER_KEY: a.masterKey,
    TRACKLANE_ID_HASH_KEY: `base64:${randomBytes(32).toString('base64')}`,
    TRACKLANE_ADMIN_TOKEN: randomBytes(18).toString('base64url'),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
  };
}

/**
 * Creates each pair of tenants — the first in clear (ipPolicy full), the second anonymizing with
 * geo_then_mask, the mix the embedded benchmark uses — makes their stored pseudonym keys (one
 * keeper pass: no compactor runs in a bench) and waits out the ~2 s propagation window that
 * anonymizeSince is stamped ahead, so no event of theirs is stamped before it. Returns the write keys.
 */
export async function prepareBenchTenants(a: {
  tenants: RedisTenantStore;
  tenantPairs: readonly (readonly string[])[];
  redisUrl: string;
  redisPrefix: string;
  masterKey: string;
  logger: ReturnType<typeof createLogger>;
}): Promise<Record<string, string>> {
  const writeKeys: Record<string, string> = {};
  for (const pair of a.tenantPairs) {
    for (const id of pair) writeKeys[id] = (await a.tenants.createTenant(id)).writeKey ?? '';
    await a.tenants.patchFlags(pair[1] as string, { anonymizeIdentity: true, ipPolicy: 'geo_then_mask' }, Date.now());
  }
  await makeStoredKeys({ redisUrl: a.redisUrl, redisPrefix: a.redisPrefix, masterKey: a.masterKey, tenants: () => a.tenants.list(), logger: a.logger });
  await sleep(2_500);
  return writeKeys;
}

async function runBench(ep: ServiceEndpoints, o: Opts): Promise<BenchReport> {
  const runId = randomBytes(3).toString('hex');
  const logger = createLogger({ level: 'warn', name: 'fleet-bench' });
  const masterKey = `base64:${randomBytes(32).toString('base64')}`;
  const redisPrefix = `tl-bench-${runId}:`;
  const baseEnv = fleetBaseEnv(ep, { redisPrefix, masterKey, partitions: o.partitions });
  const kafka = createKafka({ brokers: ep.kafkaBrokers.split(',').map((b) => b.trim()), clientId: 'tracklane-fleet-bench', logger });
  const admin = kafka.admin();
  await admin.connect();
  const tenants = await openRedisTenantStore({ redis: ep.redisUrl, keyPrefix: redisPrefix, logger });
  const clickhouse = createClickHouse({ url: ep.clickhouseUrl, ...clickhouseLogin(), logger });
  try {
    // per phase a pair of tenants: one in clear, one anonymizing (prepareBenchTenants)
    const t = {
      stage: [`fb${runId}-sa`, `fb${runId}-sb`],
      e2e: [`fb${runId}-ea`, `fb${runId}-eb`],
      lat: [`fb${runId}-la`, `fb${runId}-lb`],
    };
    const writeKeys = await prepareBenchTenants({ tenants, tenantPairs: Object.values(t), redisUrl: ep.redisUrl, redisPrefix, masterKey, logger });

    const stageResults = await benchStages({ kafka, admin, tenants, baseEnv, masterKey, tenantIds: t.stage, runId, o, ep });
    // NOTE: FLEET_BENCH_PHASES=stages stops after (1), for profiling a stage (FLEET_BENCH_CPU_PROF)
    if (process.env['FLEET_BENCH_PHASES'] === 'stages') return stagesOnlyReport(stageResults);
    const fleet = await benchEndToEnd({ kafka, admin, clickhouse, baseEnv, writeKeys, tenantIds: t, runId, o });
    return report(o, stageResults, fleet);
  } finally {
    await tenants.close().catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
    await clickhouse.close().catch(() => undefined);
  }
}

// ───────────────────────────── 1. stages vs passthrough ─────────────────────────────

async function benchStages(a: {
  kafka: Kafka;
  admin: Admin;
  tenants: RedisTenantStore;
  baseEnv: Record<string, string>;
  masterKey: string;
  tenantIds: string[];
  runId: string;
  o: Opts;
  ep: ServiceEndpoints;
}): Promise<StageResult[]> {
  const { kafka, admin, o } = a;
  const prefixes = Object.fromEntries(STAGES.map((s) => [s.name, `fb${a.runId}${s.name}.`])) as Record<StageName, string>;
  const inputs = await buildStageInputs(a, prefixes, { partitions: o.partitions, eventsPerRecord: DEFAULT_EVENTS_PER_RECORD });

  const producer = await connectProducer(kafka);
  const results: StageResult[] = [];
  try {
    for (const spec of STAGES) {
      const prefix = prefixes[spec.name];
      const topics = topicNames(prefix);
      // NOTE: the passthrough reads the same events one per record (the v1 shape) from a topic of its own
      const onePerRecord = `${prefix}bench.one-per-record.v1`;
      const scratch = `${prefix}bench.passthrough.v1`;
      await ensureTopics(kafka, topics, { partitions: o.partitions });
      await ensureTopics(kafka, [onePerRecord, scratch], { partitions: o.partitions });
      const t0 = performance.now();
      const fill = async (topic: string, messages: Message[]) => {
        for (let i = 0; i < messages.length; i += 20_000) await sendInChunks(producer, topic, messages.slice(i, i + 20_000));
        const total = (await admin.fetchTopicOffsets(topic)).reduce((s, p) => s + Number(p.high) - Number(p.low), 0);
        if (total !== messages.length) throw new Error(`${topic} holds ${total} records, expected ${messages.length}`);
        return total;
      };
      const manyRecords = await fill(topics[spec.input], inputs.many[spec.input]);
      const oneRecords = await fill(onePerRecord, inputs.one[spec.input]);
      const eventsPerRecord = inputs.events / manyRecords;
      log(
        `${spec.name}: pre-filled ${topics[spec.input]} with ${manyRecords} records of many (${eventsPerRecord.toFixed(1)} events each) and ` +
          `${onePerRecord} with ${oneRecords} of one in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
      );

      const result: StageResult = { spec, stage: [], passthrough: [], eventsPerRecord };
      for (let r = 1; r <= o.rounds; r++) {
        // NOTE: the order alternates so that a drift (broker page cache, a busy neighbour) does not
        // favour one side; each run starts on a consumer group with no committed offsets.
        const order: ('stage' | 'passthrough')[] = r % 2 === 1 ? ['stage', 'passthrough'] : ['passthrough', 'stage'];
        for (const side of order) {
          if (side === 'stage') {
            const groupId = `${prefix}tracklane-${spec.service}`;
            await deleteGroup(admin, groupId);
            const d = await drainOnce(admin, spec.service, `${spec.service}-r${r}`, { ...a.baseEnv, TOPIC_PREFIX: prefix }, groupId, topics[spec.input], manyRecords, { eventsPerRecord });
            result.stage.push(d);
            log(`${spec.name} r${r}: stage       ${Math.round(d.eventsPerSec).toLocaleString('en')} events/s (${d.cpuCores.toFixed(2)} cores, VmHWM ${Math.round(d.peakRssMb)} MB)`);
          } else {
            const groupId = `${prefix}bench-passthrough-r${r}`;
            const env = { ...a.baseEnv, TOPIC_PREFIX: prefix, PASSTHROUGH_KIND: spec.input, PASSTHROUGH_GROUP: groupId, PASSTHROUGH_INPUT_TOPIC: onePerRecord, PASSTHROUGH_OUTPUT_TOPIC: scratch };
            const d = await drainOnce(admin, 'passthrough', `passthrough-${spec.name}-r${r}`, env, groupId, onePerRecord, oneRecords);
            result.passthrough.push(d);
            log(`${spec.name} r${r}: passthrough ${Math.round(d.eventsPerSec).toLocaleString('en')} events/s (${d.cpuCores.toFixed(2)} cores, VmHWM ${Math.round(d.peakRssMb)} MB)`);
          }
        }
      }
      results.push(result);
    }
  } finally {
    await producer.disconnect().catch(() => undefined);
  }
  return results;
}

/**
 * Realistic records for the three input topics: demo traffic normalized by the collector's own
 * code (normalizeAll) and encoded as raw records; those run through the real enrich stage for the
 * enriched topic and through the real anonymize stage for the clean topic, all in this process.
 * So each stage's input is exactly what the stage before it would have written, without making
 * one stage's measurement wait on another's.
 */
export async function buildStageInputs(
  a: { tenants: RedisTenantStore; masterKey: string; tenantIds: string[]; o: Pick<Opts, 'stageEvents'>; ep: ServiceEndpoints },
  prefixes: Record<StageName, string>,
  many?: { partitions: number; eventsPerRecord: number },
): Promise<StageInputs> {
  const registry = new SchemaRegistry({ host: a.ep.schemaRegistryUrl });
  const codecs = Object.fromEntries(
    STAGES.map((s) => [s.name, createRecordCodec({ registry, topics: topicNames(prefixes[s.name]), registryUrl: a.ep.schemaRegistryUrl })]),
  ) as Record<StageName, ReturnType<typeof createRecordCodec>>;
  for (const c of Object.values(codecs)) await c.init();
  const enricher = await createEnricher({ flags: a.tenants });
  const keys = createKeyRing(parseMasterKey(a.masterKey));
  const anonymize = createAnonymizeStage({ flags: a.tenants, keys });

  const t0 = performance.now();
  const traffic = generateTraffic({ seed: 11, events: a.o.stageEvents, tenants: a.tenantIds, startMs: Date.now() });
  const out: Record<StageSpec['input'], Message[]> = { raw: [], enriched: [], clean: [] };
  const values = { raw: [] as RawEvent[], enriched: [] as EnrichedEvent[], clean: [] as CleanEvent[], tenant: [] as string[] };
  let notOk = 0;
  for (const batch of traffic.batches) {
    const receivedAt = Date.now();
    const facts = { tenantId: batch.tenant, receivedAt, requestIp: '127.0.0.1', requestUserAgent: null, batchSentAt: receivedAt };
    const { events } = normalizeAll(batch.messages, facts, { maxEventBytes: 32 * 1024, maxBatchEvents: 500, maxFutureMs: 60_000 });
    for (const raw of events) {
      const key = partitionKey(raw);
      const e = await untilSettled(() => enricher.stage(raw));
      if (e.kind !== 'ok') {
        notOk++;
        continue;
      }
      const value = e.value;
      const c = await untilSettled(() => anonymize(value));
      if (c.kind !== 'ok') {
        notOk++;
        continue;
      }
      out.raw.push({ key, value: codecs.enrich.encodeRaw(raw) });
      out.enriched.push({ key, value: codecs.anonymize.encodeEnriched(e.value) });
      out.clean.push({ key, value: codecs.sink.encodeClean(c.value) });
      values.raw.push(raw);
      values.enriched.push(e.value);
      values.clean.push(c.value);
      values.tenant.push(batch.tenant);
    }
  }
  await enricher.close();
  // Records of many, as the stage before writes them: every REQUEST_EVENTS consecutive events of a
  // tenant (one collector request of the e2e phase) grouped by partition. NOTE: conservative for the
  // enriched and clean topics, whose writers group a whole consumed batch (up to 1 MB a partition).
  const manyOut: Record<StageSpec['input'], Message[]> = { raw: [], enriched: [], clean: [] };
  if (many) {
    const chunks = new Map<string, number[]>();
    const flush = (idx: number[]) => {
      const group = <T>(vs: T[], encode: (xs: readonly T[]) => Buffer) =>
        messagesOf(groupByPartition(idx.map((i) => ({ value: vs[i] as T, overflowed: false })), { ...many, key: (v: T) => partitionKey(v as RawEvent) }), encode);
      manyOut.raw.push(...group(values.raw, (xs) => codecs.enrich.encodeRawBatch(xs)));
      manyOut.enriched.push(...group(values.enriched, (xs) => codecs.anonymize.encodeEnrichedBatch(xs)));
      manyOut.clean.push(...group(values.clean, (xs) => codecs.sink.encodeCleanBatch(xs)));
    };
    values.tenant.forEach((tenant, i) => {
      const idx = chunks.get(tenant) ?? [];
      idx.push(i);
      chunks.set(tenant, idx);
      if (idx.length >= REQUEST_EVENTS) {
        flush(idx);
        chunks.set(tenant, []);
      }
    });
    for (const idx of chunks.values()) if (idx.length > 0) flush(idx);
  }
  if (notOk > 0) throw new Error(`${notOk} generated events did not pass enrich/anonymize in process; the inputs would not be realistic`);
  const avg = (ms: Message[]) => Math.round(ms.reduce((s, m) => s + (m.value as Buffer).length, 0) / Math.max(1, ms.length));
  log(
    `built ${out.raw.length} records per topic in ${((performance.now() - t0) / 1000).toFixed(1)} s ` +
      `(avg Avro bytes: raw ${avg(out.raw)}, enriched ${avg(out.enriched)}, clean ${avg(out.clean)})` +
      (many ? `; records of many: raw ${manyOut.raw.length}, enriched ${manyOut.enriched.length}, clean ${manyOut.clean.length}` : ''),
  );
  return { one: out, many: manyOut, events: out.raw.length };
}

/** A stage input topic's records: one event each (the passthrough's) and many each (the stage's). */
export interface StageInputs {
  one: Record<StageSpec['input'], Message[]>;
  many: Record<StageSpec['input'], Message[]>;
  events: number;
}

/**
 * TRICKY: the tenant store answers "unknown" (the stages say retry) once its last sync is over a
 * second old, and this loop is synchronous: on a retry, let the event loop run and try again.
 */
async function untilSettled<T>(run: () => Result<T>): Promise<Result<T>> {
  for (let i = 0; ; i++) {
    const r = run();
    if (r.kind !== 'retry' || i >= 100) return r;
    await sleep(20);
  }
}

export async function deleteGroup(admin: Admin, groupId: string): Promise<void> {
  // NOTE: a member that did not leave cleanly keeps the group non-empty until its session times out.
  await eventually(
    async () => {
      const { groups } = await admin.listGroups();
      if (groups.some((g) => g.groupId === groupId)) await admin.deleteGroups([groupId]);
      return true;
    },
    20_000,
    `consumer group ${groupId} deleted`,
    500,
  );
}

/**
 * Starts one worker process on a group with no committed offsets and times it draining `total`
 * records (timeDrain, from `start`). `watchPids` (e.g. the ClickHouse gateway, the broker) get their
 * CPU over the same window in `watchedCores`.
 */
export async function drainOnce(
  admin: Admin,
  entry: ServiceEntry,
  label: string,
  env: Record<string, string>,
  groupId: string,
  topic: string,
  total: number,
  more: { watchPids?: readonly number[]; start?: 'commit' | 'stable'; eventsPerRecord?: number } = {},
): Promise<Drain> {
  const proc = await startProcess(entry, label, env, { waitReady: false, profile: profiled(entry) });
  try {
    return await timeDrain(admin, {
      label,
      groupId,
      topic,
      total,
      pids: [proc.pid, ...(more.watchPids ?? [])],
      start: more.start ?? 'commit',
      eventsPerRecord: more.eventsPerRecord ?? 1,
      check: () => {
        if (proc.exitCode() !== null) throw new Error(`${label} exited with ${proc.exitCode()} while draining:\n${proc.output()}`);
      },
      context: () => proc.output(),
    });
  } finally {
    await proc.stop();
  }
}

/**
 * Times a consumer group draining `total` records of `topic`, to the first poll (every 100 ms) that
 * sees every partition committed up to its end offset. From (`start`): 'commit' (default) the first
 * poll that sees a committed offset — start-up, group join and the first batch are outside the
 * window; 'stable' the first poll that sees the group Stable with a member (nothing committed yet) —
 * for a consumer that commits in few large blocks (ClickHouse's Kafka engine). CPU and peak RSS are
 * of `pids[0]`; the other pids' CPU is in `watchedCores`.
 */
export async function timeDrain(
  admin: Admin,
  a: {
    label: string;
    groupId: string;
    topic: string;
    total: number;
    pids: readonly number[];
    start?: 'commit' | 'stable';
    /** the topic's events per record (records of many): events/s = records/s × this; default 1 */
    eventsPerRecord?: number;
    check?: () => void;
    context?: () => string;
  },
): Promise<Drain> {
  const deadline = Date.now() + 300_000;
  const cpuOf = () => a.pids.map(readCpuSeconds);
  let first: { t: number; committed: number; cpu: number[] } | undefined;
  while (a.start === 'stable' && !first) {
    a.check?.();
    const [group] = (await admin.describeGroups([a.groupId])).groups;
    if (group?.state === 'Stable' && group.members.length > 0) first = { t: performance.now(), committed: 0, cpu: cpuOf() };
    else if (Date.now() > deadline) throw new Error(`${a.label}: group ${a.groupId} not stable after 300 s:\n${a.context?.() ?? ''}`);
    else await sleep(POLL_MS / 2);
  }
  for (;;) {
    a.check?.();
    const offsets = await admin.fetchOffsets({ groupId: a.groupId, topics: [a.topic] });
    const now = performance.now();
    const committed = (offsets[0]?.partitions ?? []).reduce((s, p) => s + Math.max(0, Number(p.offset)), 0);
    if (!first && committed > 0) first = { t: now, committed, cpu: cpuOf() };
    if (committed >= a.total) {
      if (!first || first.committed >= a.total) throw new Error(`${a.label}: drained within one poll; use more records`);
      const seconds = (now - first.t) / 1000;
      const records = a.total - first.committed;
      const cores = cpuOf().map((c, i) => (c - (first?.cpu[i] ?? NaN)) / seconds);
      return {
        eventsPerSec: (records * (a.eventsPerRecord ?? 1)) / seconds,
        records,
        seconds,
        cpuCores: cores[0] ?? NaN,
        watchedCores: cores.slice(1),
        peakRssMb: readStatusKb(a.pids[0] ?? -1, 'VmHWM') / 1024,
      };
    }
    if (Date.now() > deadline) throw new Error(`${a.label}: ${committed}/${a.total} committed after 300 s:\n${a.context?.() ?? ''}`);
    await sleep(POLL_MS);
  }
}

function profiled(entry: ServiceEntry): boolean {
  const wanted = (process.env['FLEET_BENCH_CPU_PROF'] ?? '').split(',').map((s) => s.trim());
  return wanted.includes(entry);
}

// ───────────────────────────── 2.–4. the whole fleet ─────────────────────────────

interface FleetResult {
  events: number;
  httpBatches: number;
  eventsPerSec: number;
  ackedEventsPerSec: number;
  seconds: number;
  rowsFinal: number;
  latency: {
    targetRate: number;
    sentRate: number;
    events: number;
    seen: number;
    p50: number;
    p99: number;
    max: number;
    pollPeriodMs: number;
    failedRequests: number;
  };
  peakRssMb: Record<string, number>;
}

async function benchEndToEnd(a: {
  kafka: Kafka;
  admin: Admin;
  clickhouse: ClickHouseClient;
  baseEnv: Record<string, string>;
  writeKeys: Record<string, string>;
  tenantIds: { e2e: string[]; lat: string[] };
  runId: string;
  o: Opts;
}): Promise<FleetResult> {
  const { o } = a;
  const prefix = `fb${a.runId}e2e.`;
  const env = { ...a.baseEnv, TOPIC_PREFIX: prefix };
  await ensureTopics(a.kafka, topicNames(prefix), { partitions: o.partitions });
  const names = ['collector', 'enricher', 'anonymizer', 'sink'] as const;
  const procs: Proc[] = [];
  try {
    for (const n of names) procs.push(await startProcess(n, `fleet-${n}`, env, { waitReady: true, profile: false }));
    const collector = procs[0] as Proc;
    const url = `http://127.0.0.1:${collector.port}`;
    const auth = (tenant: string) => `Basic ${Buffer.from(`${a.writeKeys[tenant] ?? ''}:`).toString('base64')}`;
    const count = (tenantIds: readonly string[], final = false) => countRows(a.clickhouse, tenantIds, final);

    // ── 2. throughput: pre-serialised batches, bounded concurrency, until visible ──
    const traffic = generateTraffic({ seed: 23, events: o.e2eEvents, tenants: a.tenantIds.e2e, startMs: Date.now() });
    const perTenant = a.tenantIds.e2e.map((tenant) => {
      const msgs = traffic.batches.filter((b) => b.tenant === tenant).flatMap((b) => b.messages);
      const out: { auth: string; body: string; n: number }[] = [];
      for (let i = 0; i < msgs.length; i += o.batchSize) out.push(...serialise(auth(tenant), msgs.slice(i, i + o.batchSize)));
      return out;
    });
    // the tenants' batches interleaved, as concurrent clients would send them
    const bodies: { auth: string; body: string; n: number }[] = [];
    for (let i = 0; i < Math.max(...perTenant.map((p) => p.length)); i++) for (const p of perTenant) if (p[i]) bodies.push(p[i] as (typeof bodies)[number]);
    const warm = bodies.splice(0, 4);
    const warmEvents = warm.reduce((s, b) => s + b.n, 0);
    await Promise.all(warm.map((b) => post(url, b)));
    await eventually(async () => (await count(a.tenantIds.e2e)) >= warmEvents, 120_000, 'warm-up rows visible', 250);
    const sent = bodies.reduce((s, b) => s + b.n, 0);
    log(`e2e: warmed up with ${warmEvents} events; sending ${sent} in ${bodies.length} batches, ${o.concurrency} in flight`);

    const t0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: o.concurrency }, async () => {
        for (let b = bodies[next++]; b; b = bodies[next++]) await post(url, b);
      }),
    );
    const tAcked = performance.now();
    await eventually(async () => (await count(a.tenantIds.e2e)) >= warmEvents + sent, 600_000, 'all rows visible', POLL_MS);
    const tVisible = performance.now();
    const rowsFinal = (await count(a.tenantIds.e2e, true)) - warmEvents;
    const seconds = (tVisible - t0) / 1000;
    const eventsPerSec = sent / seconds;
    log(`e2e: ${Math.round(eventsPerSec).toLocaleString('en')} events/s to visible (2xx at ${Math.round(sent / ((tAcked - t0) / 1000)).toLocaleString('en')}/s), FINAL rows ${rowsFinal}/${sent}`);

    // ── 3. latency at half of that rate ──
    const latency = await measureLatency({ url, auth, clickhouse: a.clickhouse, tenantIds: a.tenantIds.lat, rate: eventsPerSec / 2, o, runId: a.runId });
    log(`latency: p50 ${latency.p50} ms, p99 ${latency.p99} ms at ${Math.round(latency.sentRate)} events/s (poll period ${latency.pollPeriodMs} ms)`);

    // ── 4. peak RSS of each worker over both phases ──
    const peakRssMb = Object.fromEntries(procs.map((p) => [p.entry, readStatusKb(p.pid, 'VmHWM') / 1024]));
    return { events: sent, httpBatches: bodies.length, eventsPerSec, ackedEventsPerSec: sent / ((tAcked - t0) / 1000), seconds, rowsFinal, latency, peakRssMb };
  } finally {
    // stop intake first, then the stages downstream
    for (const p of procs) await p.stop();
  }
}

export function serialise(auth: string, batch: SegmentMessage[]): { auth: string; body: string; n: number }[] {
  const body = JSON.stringify({ batch, sentAt: new Date().toISOString() });
  if (body.length <= MAX_REQUEST_BYTES || batch.length < 2) return [{ auth, body, n: batch.length }];
  const half = Math.ceil(batch.length / 2);
  return [...serialise(auth, batch.slice(0, half)), ...serialise(auth, batch.slice(half))];
}

export async function post(url: string, b: { auth: string; body: string }): Promise<void> {
  const res = await fetch(`${url}/v1/batch`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: b.auth }, body: b.body });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`batch failed with ${res.status}: ${text.slice(0, 300)}`);
  if (text.includes('"rejected"')) throw new Error(`collector rejected events: ${text.slice(0, 300)}`);
}

/**
 * Sends batches of `latencyBatch` events on a timer at `rate` events/s for `latencySeconds`,
 * stamping each batch's 2xx time, while polling ClickHouse every 100 ms for how many events of
 * each batch are visible (event ids are `<tag>.<batch>.<i>`, so one GROUP BY row per batch).
 * An event first counted by the poll issued at t has latency t − its batch's 2xx; it became
 * visible after the previous poll, so the figure is high by at most one poll period.
 */
async function measureLatency(a: {
  url: string;
  auth: (tenant: string) => string;
  clickhouse: ClickHouseClient;
  tenantIds: string[];
  rate: number;
  o: Opts;
  runId: string;
}): Promise<FleetResult['latency']> {
  const { o } = a;
  const tag = `lat${a.runId}`;
  const pool = generateTraffic({ seed: 31, events: 20_000, tenants: a.tenantIds, startMs: Date.now() });
  const byTenant = a.tenantIds.map((t) => ({ t, msgs: pool.batches.filter((b) => b.tenant === t).flatMap((b) => b.messages) }));
  const totalBatches = Math.max(1, Math.round((a.rate * o.latencySeconds) / o.latencyBatch));
  const intervalMs = (1000 * o.latencyBatch) / a.rate;
  const batches: SentBatch[] = [];
  let failed = 0;
  let inFlight = 0;

  const poller = pollVisibility({ clickhouse: a.clickhouse, tenantIds: a.tenantIds, tag, batches });

  const tStart = performance.now();
  const sends: Promise<void>[] = [];
  for (let k = 0; k < totalBatches; k++) {
    const wait = tStart + k * intervalMs - performance.now();
    if (wait > 1) await sleep(wait);
    const src = byTenant[k % byTenant.length] as { t: string; msgs: SegmentMessage[] };
    const from = (Math.floor(k / byTenant.length) * o.latencyBatch) % Math.max(1, src.msgs.length - o.latencyBatch);
    const batch = src.msgs.slice(from, from + o.latencyBatch).map((m, i) => ({ ...m, messageId: `${tag}.${k}.${i}` }));
    const s: SentBatch = { n: batch.length, sentAt: Date.now(), seen: 0, sightings: [] };
    batches.push(s);
    inFlight++;
    sends.push(
      post(a.url, { auth: a.auth(src.t), body: JSON.stringify({ batch, sentAt: new Date().toISOString() }) }).then(
        () => {
          s.okAt = Date.now();
          inFlight--;
        },
        () => {
          failed++;
          s.n = 0;
          inFlight--;
        },
      ),
    );
  }
  await Promise.all(sends);
  const sendSeconds = (performance.now() - tStart) / 1000;
  try {
    await eventually(async () => batches.every((b) => b.seen >= b.n), 60_000, 'latency rows visible', 250);
  } catch {
    // reported below as events not seen
  }
  await poller.stop();

  const lat: number[] = [];
  for (const b of batches) {
    if (b.okAt === undefined) continue;
    for (const [t, n] of b.sightings) for (let i = 0; i < n; i++) lat.push(t - b.okAt);
  }
  lat.sort((x, y) => x - y);
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.max(0, Math.ceil(p * lat.length) - 1))] ?? NaN;
  const periods = poller.pollTimes.slice(1).map((t, i) => t - (poller.pollTimes[i] as number));
  const events = batches.reduce((s, b) => s + b.n, 0);
  return {
    targetRate: a.rate,
    sentRate: events / sendSeconds,
    events,
    seen: lat.length,
    p50: q(0.5),
    p99: q(0.99),
    max: lat[lat.length - 1] ?? NaN,
    pollPeriodMs: periods.length > 0 ? periods.reduce((s, p) => s + p, 0) / periods.length : NaN,
    failedRequests: failed + (inFlight > 0 ? inFlight : 0),
  };
}

export async function countRows(ch: ClickHouseClient, tenantIds: readonly string[], final: boolean): Promise<number> {
  const rs = await ch.query({
    query: `SELECT count() AS n FROM events${final ? ' FINAL' : ''} WHERE tenant_id IN (${tenantIds.map((t) => `'${t}'`).join(',')})`,
    format: 'JSONEachRow',
  });
  const rows = await rs.json<{ n: number | string }>();
  return Number(rows[0]?.n ?? 0);
}

// ───────────────────────────── processes ─────────────────────────────

export interface Proc {
  entry: ServiceEntry;
  pid: number;
  port: number;
  output(): string;
  exitCode(): number | null;
  /** SIGTERM, then SIGKILL after 15 s; resolves once exited */
  stop(): Promise<void>;
}

/** The Dockerfile's `ENV NODE_OPTIONS`, as flags: workers run with what the image runs them with. */
function imageNodeFlags(): string[] {
  const m = /NODE_OPTIONS="([^"]*)"/.exec(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
  if (!m) throw new Error('the Dockerfile sets no NODE_OPTIONS');
  return (m[1] as string).split(/\s+/).filter((f) => f !== '');
}

export async function startProcess(entry: ServiceEntry, label: string, env: Record<string, string>, opts: { waitReady: boolean; profile: boolean }): Promise<Proc> {
  const port = await freePort();
  const script = entry === 'passthrough' ? 'bench/passthrough-worker.ts' : `services/${entry}/main.ts`;
  const nodeArgs: string[] = imageNodeFlags();
  if (opts.profile) {
    // NOTE: one directory per run and node's default file names (pid.tid): tsx's loader runs on a
    // worker thread that writes a profile of its own, which a fixed --cpu-prof-name would overwrite.
    const dir = join(ROOT, '.bench', 'profiles', label);
    mkdirSync(dir, { recursive: true });
    nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${dir}`);
  }
  const child = spawnTsx(join(ROOT, script), [], { cwd: ROOT, env: { ...process.env, ...env, PORT: String(port) }, nodeArgs, outputTail: 20_000 });
  const proc: Proc = {
    entry,
    pid: child.pid,
    port,
    output: () => child.output(),
    exitCode: () => {
      const e = child.exit();
      return e === null ? null : (e.code ?? -1);
    },
    async stop() {
      await child.stop(15_000);
    },
  };
  if (opts.waitReady) {
    try {
      await waitReady(child, `http://127.0.0.1:${port}`, { name: label, timeoutMs: 90_000, everyMs: 200 });
    } catch (err) {
      await proc.stop();
      throw err;
    }
  }
  return proc;
}

export function readStatusKb(pid: number, field: string): number {
  try {
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

/** user + system CPU seconds of a process, all threads (/proc/<pid>/stat fields 14 and 15) */
export function readCpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

export function envNumber(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got ${v}`);
  return n;
}

// ───────────────────────────── report ─────────────────────────────

/** Per stage: events/s, the passthrough's, their ratio, cores, per-core figures, drain peak RSS. */
function stageMetrics(stages: StageResult[]): { metrics: Record<string, number>; ratios: Record<string, number> } {
  const best = (ds: Drain[]) => Math.max(...ds.map((d) => d.eventsPerSec));
  const metrics: Record<string, number> = {};
  const ratios: Record<string, number> = {};
  for (const s of stages) {
    const stage = best(s.stage);
    const base = best(s.passthrough);
    ratios[s.spec.name] = stage / base;
    metrics[`${s.spec.name}.eventsPerSec`] = Math.round(stage);
    metrics[`${s.spec.name}.passthroughPerSec`] = Math.round(base);
    metrics[`${s.spec.name}.ratio`] = round(stage / base, 2);
    metrics[`${s.spec.name}.cpuCores`] = round(Math.max(...s.stage.map((d) => d.cpuCores)), 2);
    metrics[`${s.spec.name}.passthroughCores`] = round(Math.max(...s.passthrough.map((d) => d.cpuCores)), 2);
    metrics[`${s.spec.name}.drainPeakRssMb`] = Math.round(Math.max(...s.stage.map((d) => d.peakRssMb)));
    // per core: the best run's events per CPU-second of its process, against the passthrough's
    const perCore = (ds: Drain[]) => Math.max(...ds.map((d) => d.eventsPerSec / d.cpuCores));
    metrics[`${s.spec.name}.eventsPerCoreSec`] = Math.round(perCore(s.stage));
    metrics[`${s.spec.name}.passthroughPerCoreSec`] = Math.round(perCore(s.passthrough));
    metrics[`${s.spec.name}.perCoreRatio`] = round(perCore(s.stage) / perCore(s.passthrough), 2);
    metrics[`${s.spec.name}.eventsPerRecord`] = round(s.eventsPerRecord, 1);
  }
  return { metrics, ratios };
}

function stagesOnlyReport(stages: StageResult[]): BenchReport {
  const { metrics, ratios } = stageMetrics(stages);
  return {
    name: 'Kafka fleet: stages vs passthrough only (FLEET_BENCH_PHASES=stages)',
    method: 'phase (1) of the fleet bench only; see a full run for the method',
    metrics,
    target: `each stage ≥ ${RATIO_TARGET} × the one-event-per-record passthrough (${Object.entries(ratios).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')})`,
    passed: Object.values(ratios).every((r) => r >= RATIO_TARGET),
  };
}

function report(o: Opts, stages: StageResult[], fleet: FleetResult): BenchReport {
  const { metrics, ratios } = stageMetrics(stages);
  metrics['e2e.events'] = fleet.events;
  metrics['e2e.eventsPerSec'] = Math.round(fleet.eventsPerSec);
  metrics['e2e.ackedEventsPerSec'] = Math.round(fleet.ackedEventsPerSec);
  metrics['e2e.rowsFinal'] = fleet.rowsFinal;
  metrics['latency.eventsPerSec'] = Math.round(fleet.latency.sentRate);
  metrics['latency.p50Ms'] = Math.round(fleet.latency.p50);
  metrics['latency.p99Ms'] = Math.round(fleet.latency.p99);
  metrics['latency.maxMs'] = Math.round(fleet.latency.max);
  metrics['latency.pollPeriodMs'] = Math.round(fleet.latency.pollPeriodMs);
  metrics['latency.notSeen'] = fleet.latency.events - fleet.latency.seen;
  metrics['latency.failedRequests'] = fleet.latency.failedRequests;
  for (const [name, mb] of Object.entries(fleet.peakRssMb)) metrics[`peakRssMb.${name}`] = Math.round(mb);

  const ratioOk = Object.values(ratios).every((r) => r >= RATIO_TARGET);
  const maxRss = Math.max(...Object.values(fleet.peakRssMb), ...stages.flatMap((s) => s.stage.map((d) => d.peakRssMb)));
  const ratioText = Object.entries(ratios).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ');
  const p99Ok = fleet.latency.p99 <= P99_GOAL_MS && fleet.latency.seen === fleet.latency.events;
  const exact = fleet.rowsFinal === fleet.events;
  const e2eOk = fleet.eventsPerSec >= E2E_GOAL;
  const rssOk = maxRss <= RSS_GOAL_MB;
  return {
    name: 'Kafka fleet: stages vs passthrough, end to end, latency, peak RSS',
    method:
      `One run against the real Kafka, Apicurio registry, Redis and chDB ClickHouse gateway, every worker a separate ` +
      `node process (--import tsx), topics with ${o.partitions} partitions, fresh TOPIC_PREFIX per phase. ` +
      `(1) Per consuming stage: ${o.stageEvents.toLocaleString('en')} realistic events (demo traffic, 2 tenants, one anonymizing + geo_then_mask, ` +
      `normalized by the collector's normalizeAll, then run through the real enrich and anonymize stages in the bench process ` +
      `and encoded with the record codec) pre-filled twice: into the stage's input topic as records of many (every ${REQUEST_EVENTS} ` +
      `consecutive events of a tenant grouped by partition, as the collector writes one request), and into a second topic one event per record (v1). ` +
      `Then, alternating ${o.rounds}×, the real service drains the first and a passthrough worker (bench/passthrough-worker.ts: the same ` +
      `createStageWorker defaults, the one-event decode, identity stage, each record re-encoded unchanged and produced one per event to a scratch ` +
      `topic with the same acks=all producer) the second, each on a consumer group with no commits; events/s = records committed × events per ` +
      `record between the first poll (every ${POLL_MS} ms, admin.fetchOffsets) that sees a commit and the one that sees every end offset; ` +
      `best of ${o.rounds} each; ratio = stage ÷ passthrough; per core = events per CPU-second of the worker process (all its threads). ` +
      `(2) All four services; this process posts ${fleet.httpBatches} pre-serialised Segment batches of ≤ ${o.batchSize} ` +
      `(${fleet.events.toLocaleString('en')} events, 2 tenants as above) with ${o.concurrency} requests in flight, after a warm-up; ` +
      `events/s = events ÷ (first request → SELECT count() of the tenants reaches the total, polled every ${POLL_MS} ms); ` +
      `count() FINAL then = ${fleet.rowsFinal.toLocaleString('en')} (${exact ? 'exactly once' : 'MISMATCH'}). ` +
      `(3) Batches of ${o.latencyBatch} on a timer at half of (2) for ${o.latencySeconds} s (ids <tag>.<batch>.<i>); each batch's 2xx time ` +
      `recorded; ClickHouse polled every ${POLL_MS} ms for visible events per batch; latency = poll time that first counts an event − ` +
      `its 2xx, so high by at most one poll period (mean ${Math.round(fleet.latency.pollPeriodMs)} ms: the error bar). ` +
      `(4) Peak RSS = VmHWM of each service process after (2) and (3); drain peaks are from (1).`,
    metrics,
    target:
      `each stage ≥ ${RATIO_TARGET} × the one-event-per-record passthrough (${ratioText}) → ${ratioOk ? 'met' : 'missed'}; ` +
      `end to end ≥ ${E2E_GOAL.toLocaleString('en')} events/s (${Math.round(fleet.eventsPerSec).toLocaleString('en')} → ${e2eOk ? 'met' : 'missed'}); ` +
      `p99 2xx→visible ≤ 2 s at half load (${Math.round(fleet.latency.p99)} ms → ${p99Ok ? 'met' : 'missed'}); ` +
      `peak RSS ≤ ${RSS_GOAL_MB} MB per worker (max ${Math.round(maxRss)} MB → ${rssOk ? 'met' : 'missed'}); exactly once (${exact ? 'met' : 'missed'})`,
    passed: ratioOk && e2eOk && p99Ok && rssOk && exact,
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const r = await benchFleet();
  process.stdout.write(`${r.name}\nmethod: ${r.method}\n`);
  for (const [k, v] of Object.entries(r.metrics)) process.stdout.write(`  ${k.padEnd(28)} ${v.toLocaleString('en')}\n`);
  process.stdout.write(`target: ${r.target} → ${r.passed ? 'MET' : 'MISSED'}\n`);
}

/** A batch a latency phase sent, and when its events were first seen in ClickHouse. */
export interface SentBatch {
  n: number;
  sentAt: number;
  okAt?: number;
  seen: number;
  /** [poll time, events first seen then] */
  sightings: [number, number][];
}

/**
 * Polls ClickHouse every POLL_MS for the rows of `batches` (event ids `<tag>.<batch index>.…`),
 * noting when each batch's events first became visible, until stopped.
 */
export function pollVisibility(a: { clickhouse: ClickHouseClient; tenantIds: readonly string[]; tag: string; batches: readonly SentBatch[] }): { pollTimes: number[]; stop(): Promise<void> } {
  let stopped = false;
  const pollTimes: number[] = [];
  const names = a.tenantIds.map((t) => `'${t}'`).join(',');
  const { batches, tag } = a;
  const running = (async () => {
    while (!stopped) {
      const started = Date.now();
      const open = batches.filter((b) => b.seen < b.n);
      if (open.length > 0) {
        // NOTE: the window starts a second before the oldest incomplete batch was sent (received_at
        // is stamped by the collector on this machine's clock), so each poll reads only recent rows.
        const since = Math.min(...open.map((b) => b.sentAt)) - 1_000;
        const rs = await a.clickhouse.query({
          query:
            `SELECT toUInt32(splitByChar('.', event_id)[2]) AS b, uniqExact(event_id) AS n FROM events ` +
            `WHERE tenant_id IN (${names}) AND received_at >= fromUnixTimestamp64Milli(toInt64(${since})) AND startsWith(event_id, '${tag}.') GROUP BY b`,
          format: 'JSONEachRow',
        });
        for (const row of await rs.json<{ b: number | string; n: number | string }>()) {
          const s = batches[Number(row.b)];
          const n = Number(row.n);
          if (s && n > s.seen) {
            s.sightings.push([started, n - s.seen]);
            s.seen = n;
          }
        }
        pollTimes.push(started);
      }
      await sleep(Math.max(0, POLL_MS - (Date.now() - started)));
    }
  })();
  return {
    pollTimes,
    stop: async () => {
      stopped = true;
      await running;
    },
  };
}
