// The sink against its peer, in one run on the same services: ClickHouse's own Kafka engine
// (what PostHog runs: a `Kafka` table + a materialized view into a MergeTree) reading the same
// Avro records of the clean topic as the Tracklane sink, into an identical copy of `events`.
//   (a) the Tracklane sink (services/sink, one process) drains the pre-filled clean topic;
//   (b) a `Kafka` engine table in the ClickHouse gateway (kafka_format AvroConfluent, the same
//       registry) + a materialized view mapping each record to the `events` row the sink writes,
//       into `CREATE TABLE … AS events`, drains the same topic on a consumer group of its own.
// Both are timed the same way (committed offsets of the group, fleet-bench.ts timeDrain), alternate
// for a few rounds, and the two copies are checked to hold the same rows.
// `npx tsx bench/peers-bench.ts` or `npm run bench -- peers` (PEERS_BENCH_EVENTS, PEERS_BENCH_ROUNDS).
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import type { Admin, Message } from 'kafkajs';
import { createClickHouse, type ClickHouseClient } from '../libs/clickhouse/client.js';
import { EVENT_COLUMNS } from '../libs/clickhouse/tables/events.js';
import { createLogger } from '../libs/core/logger.js';
import { createKafka } from '../libs/kafka/kafka-client.js';
import { connectProducer, DEFAULT_EVENTS_PER_RECORD, sendInChunks } from '../libs/kafka/outputs.js';
import { ensureTopics, topicNames } from '../libs/kafka/topics.js';
import { openRedisTenantStore } from '../libs/tenants/redis-tenant-store.js';
import { readState } from '../scripts/services/state.js';
import { stopServices, type ServiceEndpoints } from '../scripts/services/services.js';
import { clickhouseLogin } from '../test/support/services.js';
import { eventually } from '../test/support/poll.js';
import type { BenchReport } from './bench-types.js';
import {
  buildStageInputs,
  deleteGroup,
  drainOnce,
  envNumber,
  fleetBaseEnv,
  prepareBenchTenants,
  resolveEndpoints,
  timeDrain,
  type Drain,
} from './fleet-bench.js';

const TARGET_RATIO = 0.8;
const PARTITIONS = 6;

/**
 * The engine at its defaults (kafka_flush_interval_ms = stream_flush_interval_ms, 7.5 s: what PostHog
 * runs) and with blocks flushed every second, within the sink's latency goal (p99 ≤ 2 s). On a
 * backlog the 1 s variant drains faster here (measured 16.8k vs 10.8k rows/s; 200 ms: 15.9k), so the
 * ratio is taken against the faster of the two.
 */
type EngineVariant = 'defaults' | 'flush1s';
const ENGINE_VARIANTS: Record<EngineVariant, number | undefined> = { defaults: undefined, flush1s: 1_000 };

const log = (s: string) => process.stderr.write(`[peers-bench] ${s}\n`);
const round = (n: number, d: number) => Math.round(n * 10 ** d) / 10 ** d;

export interface PeersBenchOptions {
  /** clean records pre-filled into the topic (default 200,000) */
  events?: number;
  /** alternations of sink and Kafka engine; the best of each counts (default 2) */
  rounds?: number;
}

/**
 * The Kafka engine table's columns: the clean-event Avro schema as ClickHouse reads it
 * (what `DESCRIBE file(…, 'Avro')` infers for schemas/avro/clean-event.avsc: a nullable record is
 * a Tuple whose fields are default/NULL when the record is null).
 */
const QUEUE_COLUMNS = `
  event_id String, tenant_id String, type String, name Nullable(String), user_id Nullable(String),
  anonymous_id Nullable(String), previous_id Nullable(String), session_id Nullable(String), account_id Nullable(String),
  occurred_at Int64, sent_at Nullable(Int64), received_at Int64, timestamp_clamped Bool,
  ip Nullable(String), user_agent Nullable(String),
  context Tuple(url Nullable(String), path Nullable(String), referrer Nullable(String), title Nullable(String),
    search Nullable(String), locale Nullable(String), timezone Nullable(String), screen_width Nullable(Int32),
    screen_height Nullable(Int32), library_name Nullable(String), library_version Nullable(String)),
  element Tuple(tag Nullable(String), id Nullable(String), classes Array(String), label Nullable(String), href Nullable(String)),
  properties Map(String, String), traits Map(String, String), account_traits Map(String, String),
  geo Tuple(country Nullable(String), region Nullable(String), city Nullable(String), lat Nullable(Float64),
    lon Nullable(Float64), timezone Nullable(String)),
  ip_org Tuple(asn Nullable(Int64), org Nullable(String)),
  ua Tuple(browser Nullable(String), browser_version Nullable(String), os Nullable(String), os_version Nullable(String),
    device_type Nullable(String), device_vendor Nullable(String), device_model Nullable(String)),
  inferred_account Tuple(account_id String, domain Nullable(String), source String, confidence Float64),
  identity_anonymized Bool, key_version Int32`;

/**
 * The materialized view's SELECT: the same `events` row libs/sink/event-rows.ts toEventTuple makes
 * (attributedAccount, clientTimestamp, empty trait maps — traits go to identify_snapshots).
 * NOTE: every source column is qualified (q.…) so that an output alias never shadows it.
 */
const MV_SELECT = `
SELECT
  q.tenant_id AS tenant_id, q.event_id AS event_id, q.type AS type, q.name AS event, q.user_id AS user_id,
  q.anonymous_id AS anonymous_id, q.previous_id AS previous_id, q.session_id AS session_id,
  if(q.inferred_account.account_id != '', q.inferred_account.account_id, q.account_id) AS account_id,
  if(q.inferred_account.account_id != '', q.inferred_account.source, if(q.account_id IS NULL, NULL, 'explicit')) AS account_source,
  if(q.inferred_account.account_id != '', q.inferred_account.domain, NULL) AS account_domain,
  fromUnixTimestamp64Milli(q.occurred_at, 'UTC') AS timestamp,
  fromUnixTimestamp64Milli(if(q.sent_at IS NULL OR q.timestamp_clamped, q.occurred_at, q.occurred_at + assumeNotNull(q.sent_at) - q.received_at), 'UTC') AS client_ts,
  fromUnixTimestamp64Milli(q.sent_at, 'UTC') AS sent_at, fromUnixTimestamp64Milli(q.received_at, 'UTC') AS received_at,
  toUInt8(q.timestamp_clamped) AS timestamp_clamped, q.ip AS ip, q.user_agent AS user_agent,
  q.geo.country AS geo_country, q.geo.region AS geo_region, q.geo.city AS geo_city, q.geo.lat AS geo_lat,
  q.geo.lon AS geo_lon, q.geo.timezone AS geo_timezone,
  toUInt32OrNull(toString(q.ip_org.asn)) AS ip_asn, q.ip_org.org AS ip_org,
  q.ua.browser AS ua_browser, q.ua.browser_version AS ua_browser_version, q.ua.os AS ua_os,
  q.ua.os_version AS ua_os_version, q.ua.device_type AS ua_device_type,
  q.context.url AS url, q.context.path AS path, q.context.referrer AS referrer, q.context.title AS title,
  q.context.search AS search, q.context.locale AS locale,
  q.element.tag AS element_tag, q.element.id AS element_id, q.element.classes AS element_classes,
  q.element.label AS element_label, q.element.href AS element_href,
  q.properties AS properties, map() AS traits, map() AS account_traits,
  toUInt8(q.identity_anonymized) AS identity_anonymized, toUInt16(q.key_version) AS key_version
FROM {queue:Identifier} AS q`;

export async function benchPeers(opts: PeersBenchOptions = {}): Promise<BenchReport> {
  const o = {
    events: opts.events ?? envNumber('PEERS_BENCH_EVENTS') ?? 200_000,
    rounds: opts.rounds ?? envNumber('PEERS_BENCH_ROUNDS') ?? 2,
  };
  const { endpoints, started } = await resolveEndpoints();
  try {
    return await run(endpoints, o);
  } finally {
    if (started.length > 0) {
      log(`stopping the services this run started: ${started.join(', ')}`);
      await stopServices({ only: started });
    }
  }
}

async function run(ep: ServiceEndpoints, o: { events: number; rounds: number }): Promise<BenchReport> {
  const runId = randomBytes(3).toString('hex');
  const logger = createLogger({ level: 'warn', name: 'peers-bench' });
  const masterKey = `base64:${randomBytes(32).toString('base64')}`;
  const redisPrefix = `tl-peers-${runId}:`;
  const prefix = `pb${runId}.`;
  const topics = topicNames(prefix);
  const tenantIds = [`pb${runId}-a`, `pb${runId}-b`];
  const kafka = createKafka({ brokers: ep.kafkaBrokers.split(',').map((b) => b.trim()), clientId: 'tracklane-peers-bench', logger });
  const admin = kafka.admin();
  await admin.connect();
  const tenants = await openRedisTenantStore({ redis: ep.redisUrl, keyPrefix: redisPrefix, logger });
  const clickhouse = createClickHouse({ url: ep.clickhouseUrl, ...clickhouseLogin(), logger });
  const peerTables: string[] = [];
  try {
    await prepareBenchTenants({ tenants, tenantPairs: [tenantIds], redisUrl: ep.redisUrl, redisPrefix, masterKey, logger });
    const inputs = await buildStageInputs({ tenants, masterKey, tenantIds, o: { stageEvents: o.events }, ep }, { enrich: prefix, anonymize: prefix, sink: prefix }, {
      partitions: PARTITIONS,
      eventsPerRecord: DEFAULT_EVENTS_PER_RECORD,
    });
    // NOTE: the sink reads the clean topic as the anonymizer writes it (records of many events); the
    // engine reads the same events as one Avro record each, its native format, from a topic of its own
    const peerTopic = `${prefix}bench.one-per-record.v1`;
    await ensureTopics(kafka, topics, { partitions: PARTITIONS });
    await ensureTopics(kafka, [peerTopic], { partitions: PARTITIONS });
    const producer = await connectProducer(kafka);
    const fill = async (topic: string, messages: Message[]) => {
      for (let i = 0; i < messages.length; i += 20_000) await sendInChunks(producer, topic, messages.slice(i, i + 20_000));
      const n = (await admin.fetchTopicOffsets(topic)).reduce((s, p) => s + Number(p.high) - Number(p.low), 0);
      if (n !== messages.length) throw new Error(`${topic} holds ${n} records, expected ${messages.length}`);
      return n;
    };
    let sinkRecords: number;
    try {
      sinkRecords = await fill(topics.clean, inputs.many.clean);
      await fill(peerTopic, inputs.one.clean);
    } finally {
      await producer.disconnect();
    }
    const total = inputs.events;
    const eventsPerRecord = total / sinkRecords;
    log(`pre-filled ${topics.clean} with ${sinkRecords} records of many (${eventsPerRecord.toFixed(1)} events each) and ${peerTopic} with ${total} of one (${PARTITIONS} partitions)`);

    const state = await readState();
    const gatewayPid = state.services.clickhouse?.pid ?? -1;
    const brokerPid = state.services.kafka?.pid ?? -1;
    const env = { ...fleetBaseEnv(ep, { redisPrefix, masterKey, partitions: PARTITIONS }), TOPIC_PREFIX: prefix };
    const sink: Drain[] = [];
    const engine: Record<EngineVariant, Drain[]> = { defaults: [], flush1s: [] };
    for (let r = 1; r <= o.rounds; r++) {
      // NOTE: the order alternates so that a drift (page cache, merges of earlier copies) favours no side
      const sides: ('sink' | EngineVariant)[] = ['sink', 'defaults', 'flush1s'];
      for (const side of r % 2 === 1 ? sides : sides.reverse()) {
        if (side === 'sink') {
          const groupId = `${prefix}tracklane-sink`;
          await deleteGroup(admin, groupId);
          const d = await drainOnce(admin, 'sink', `peers-sink-r${r}`, env, groupId, topics.clean, sinkRecords, { watchPids: [gatewayPid, brokerPid], start: 'stable', eventsPerRecord });
          sink.push(d);
          log(`r${r}: sink                   ${describe(d)}`);
        } else {
          const table = `peer_events_${runId}_${side}_r${r}`;
          peerTables.push(table);
          const groupId = `${prefix}peer-kafka-engine-${side}-r${r}`;
          const d = await drainKafkaEngine({ admin, clickhouse, ep, topic: peerTopic, groupId, table, total, gatewayPid, brokerPid, flushMs: ENGINE_VARIANTS[side] });
          engine[side].push(d);
          log(`r${r}: Kafka engine ${side.padEnd(9)} ${describe(d)}`);
        }
      }
    }
    const mismatched = await compareCopies(clickhouse, tenantIds, peerTables[peerTables.length - 1] as string, total);
    return report(o, total, sink, engine, mismatched);
  } finally {
    for (const t of peerTables) await dropPeer(clickhouse, t).catch(() => undefined);
    await tenants.close().catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
    await clickhouse.close().catch(() => undefined);
  }
}

function describe(d: Drain): string {
  const [gateway, broker] = d.watchedCores;
  return `${Math.round(d.eventsPerSec).toLocaleString('en')} rows/s (own process ${d.cpuCores.toFixed(2)} cores, gateway ${gateway?.toFixed(2)}, broker ${broker?.toFixed(2)})`;
}

/**
 * (b): a `Kafka` table + materialized view in the gateway, on a consumer group of its own, into a
 * fresh copy of `events`. Its CPU is the gateway's (where the engine runs), so the own-process
 * figure is the gateway's too.
 */
async function drainKafkaEngine(a: {
  admin: Admin;
  clickhouse: ClickHouseClient;
  ep: ServiceEndpoints;
  topic: string;
  groupId: string;
  table: string;
  total: number;
  gatewayPid: number;
  brokerPid: number;
  /** kafka_flush_interval_ms; undefined: the engine's default */
  flushMs: number | undefined;
}): Promise<Drain> {
  const { clickhouse: ch, table } = a;
  await deleteGroup(a.admin, a.groupId);
  await ch.command({ query: `CREATE TABLE ${table} AS events` });
  // NOTE: settings are the engine's defaults apart from what names the source: one consumer, as
  // the sink is one replica (kafka_num_consumers defaults to 1).
  await ch.command({
    query:
      `CREATE TABLE ${table}_queue (${QUEUE_COLUMNS}) ENGINE = Kafka SETTINGS ` +
      `kafka_broker_list = {brokers:String}, kafka_topic_list = {topic:String}, kafka_group_name = {group:String}, ` +
      `kafka_format = 'AvroConfluent', format_avro_schema_registry_url = {registry:String}` +
      (a.flushMs !== undefined ? `, kafka_flush_interval_ms = ${a.flushMs}` : ''),
    query_params: { brokers: a.ep.kafkaBrokers, topic: a.topic, group: a.groupId, registry: a.ep.schemaRegistryUrl },
  });
  await ch.command({ query: `CREATE MATERIALIZED VIEW ${table}_mv TO ${table} AS ${MV_SELECT.replace('{queue:Identifier}', `${table}_queue`)}` });
  try {
    const d = await timeDrain(a.admin, {
      label: `Kafka engine ${table}`,
      groupId: a.groupId,
      topic: a.topic,
      total: a.total,
      pids: [a.gatewayPid, a.gatewayPid, a.brokerPid],
      start: 'stable',
      context: () => `see system.kafka_consumers for ${table}_queue`,
    });
    await eventually(async () => (await count(ch, table)) >= a.total, 30_000, `${table} holds every row`, 200);
    return d;
  } finally {
    // stop consuming before the next side runs
    await ch.command({ query: `DROP TABLE IF EXISTS ${table}_mv` });
    await ch.command({ query: `DROP TABLE IF EXISTS ${table}_queue` });
  }
}

async function dropPeer(ch: ClickHouseClient, table: string): Promise<void> {
  for (const t of [`${table}_mv`, `${table}_queue`, table]) await ch.command({ query: `DROP TABLE IF EXISTS ${t}` });
}

async function count(ch: ClickHouseClient, table: string, where = ''): Promise<number> {
  const rs = await ch.query({ query: `SELECT count() AS n FROM ${table} ${where}`, format: 'JSONEachRow' });
  const [row] = await rs.json<{ n: number | string }>();
  return Number(row?.n ?? 0);
}

/** Rows (every column) in one copy and not in the other, FINAL on both; 0 when the two are the same. */
async function compareCopies(ch: ClickHouseClient, tenantIds: readonly string[], peer: string, total: number): Promise<number> {
  const cols = EVENT_COLUMNS.join(', ');
  const tenants = tenantIds.map((t) => `'${t}'`).join(',');
  const sinkRows = await count(ch, 'events FINAL', `WHERE tenant_id IN (${tenants})`);
  if (sinkRows !== total) throw new Error(`the sink wrote ${sinkRows} rows, expected ${total}`);
  let differ = 0;
  for (const [a, b] of [
    [`events FINAL WHERE tenant_id IN (${tenants})`, `${peer} FINAL`],
    [`${peer} FINAL`, `events FINAL WHERE tenant_id IN (${tenants})`],
  ]) {
    const rs = await ch.query({ query: `SELECT count() AS n FROM (SELECT ${cols} FROM ${a} EXCEPT SELECT ${cols} FROM ${b})`, format: 'JSONEachRow' });
    differ += Number((await rs.json<{ n: number | string }>())[0]?.n ?? 0);
  }
  return differ;
}

function report(o: { events: number; rounds: number }, total: number, sink: Drain[], engine: Record<EngineVariant, Drain[]>, mismatched: number): BenchReport {
  const best = (ds: Drain[]) => ds.reduce((b, d) => (d.eventsPerSec > b.eventsPerSec ? d : b));
  const s = best(sink);
  const variants = Object.keys(engine) as EngineVariant[];
  const bestOf = Object.fromEntries(variants.map((v) => [v, best(engine[v])])) as Record<EngineVariant, Drain>;
  const peer = variants.map((v) => bestOf[v]).reduce((b, d) => (d.eventsPerSec > b.eventsPerSec ? d : b));
  const ratio = s.eventsPerSec / peer.eventsPerSec;
  const sinkCores = s.cpuCores + (s.watchedCores[0] ?? NaN);
  const metrics: Record<string, number> = {
    sinkRowsPerSec: Math.round(s.eventsPerSec),
    ratio: round(ratio, 2),
    sinkProcessCores: round(s.cpuCores, 2),
    sinkGatewayCores: round(s.watchedCores[0] ?? NaN, 2),
    sinkRowsPerCoreSec: Math.round(s.eventsPerSec / sinkCores),
    sinkBrokerCores: round(s.watchedCores[1] ?? NaN, 2),
  };
  for (const v of variants) {
    const d = bestOf[v];
    metrics[`engine.${v}.rowsPerSec`] = Math.round(d.eventsPerSec);
    metrics[`engine.${v}.ratio`] = round(s.eventsPerSec / d.eventsPerSec, 2);
    metrics[`engine.${v}.gatewayCores`] = round(d.cpuCores, 2);
    metrics[`engine.${v}.rowsPerCoreSec`] = Math.round(d.eventsPerSec / d.cpuCores);
    metrics[`engine.${v}.brokerCores`] = round(d.watchedCores[1] ?? NaN, 2);
  }
  metrics['rowsDiffering'] = mismatched;
  return {
    name: 'peers: Tracklane sink vs ClickHouse Kafka engine + materialized view',
    method:
      `One run against the real Kafka, Apicurio registry and chDB ClickHouse gateway. ${total.toLocaleString('en')} realistic clean ` +
      `records (demo traffic through the collector's normalizeAll and the real enrich and anonymize stages, 2 tenants, one anonymizing; ` +
      `Confluent-framed Avro) pre-filled once into two ${PARTITIONS}-partition topics: as the anonymizer writes them (records of many, ` +
      `grouped by partition per ${DEFAULT_EVENTS_PER_RECORD} events of a tenant) and one per record (the engine's native format). ` +
      `(a) services/sink, one process, drains the first on a group with no commits (events + identify_snapshots + users/accounts merge; ` +
      `events/s = records/s × events per record); ` +
      `(b) in the gateway's chDB, a Kafka engine table (kafka_format AvroConfluent against the same registry, one consumer) ` +
      `and a materialized view mapping each record to the same events row (event-rows.ts) into CREATE TABLE … AS events, ` +
      `reading the second on a group of its own; once at the engine's defaults and once with kafka_flush_interval_ms 1000. ` +
      `All timed alike (the engine commits once per block of up to a million rows, so a first commit is no start mark): ` +
      `from the first poll (every 50–100 ms) that sees the group Stable with a member to the first that sees every end offset committed; ` +
      `alternating ${o.rounds}×, best of each; ratio = sink ÷ the faster engine variant. CPU: the sink = its process + the gateway ` +
      `(its inserts); the engine = the gateway, where it runs. Afterwards every column of the sink's rows and of the last engine copy is ` +
      `compared (FINAL, EXCEPT both ways): ${mismatched} rows differ.`,
    metrics,
    target: `sink ≥ ${TARGET_RATIO} × the faster Kafka engine variant's rows/s (goal 1.0): ${ratio.toFixed(2)}, and both copies identical`,
    passed: ratio >= TARGET_RATIO && mismatched === 0,
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const r = await benchPeers();
  process.stdout.write(`${r.name}\nmethod: ${r.method}\n`);
  for (const [k, v] of Object.entries(r.metrics)) process.stdout.write(`  ${k.padEnd(28)} ${v.toLocaleString('en')}\n`);
  process.stdout.write(`target: ${r.target} → ${r.passed ? 'MET' : 'MISSED'}\n`);
}
