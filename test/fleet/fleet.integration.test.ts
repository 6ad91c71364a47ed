// Acceptance checks of the Kafka fleet: collector, enricher, anonymizer and sink as separate
// processes on real Kafka, the schema registry, Redis and ClickHouse (the chDB gateway).
// One file, so its fleets run one after the other on the 2-core machine.
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toNumber } from '../../libs/clickhouse/client.js';
import { DEAD_LETTER_SELECT, parseDeadLetterPayload, parseDeadLetterRow, type DeadLetterRow } from '../../libs/clickhouse/tables/dead-letters.js';
import { createLogger } from '../../libs/core/logger.js';
import { embeddedConfigSchema } from '../../services/embedded/config.js';
import { startEmbedded, type EmbeddedServer } from '../../services/embedded/embedded-runner.js';
import { createRecordCodec } from '../../libs/kafka/record-codec.js';
import { rawMinimal } from '../support/record-fixtures.js';
import { storedKeyRing } from '../support/stored-key-ring.js';
import { topicNames } from '../../libs/kafka/topics.js';
import { sendTraffic } from '../../services/demo/send.js';
import { generateTraffic } from '../../services/demo/traffic.js';
import { eventually } from '../support/poll.js';
import { sendBatch, startFleet, type Fleet } from '../support/fleet.js';
import { startPrivateRedis, type PrivateRedis } from '../support/private-redis.js';
import { countsSince, stageCounts, type StageCounts } from '../support/stage-counts.js';
import { clickhouseClientOptions, kafkaBrokerList, serviceEndpoints } from '../support/services.js';
import { startKafka, stopKafka } from '../../scripts/services/services.js';

let ch: ClickHouseClient;
let fleet: Fleet | undefined;

beforeAll(() => {
  ch = createClient(clickhouseClientOptions());
});
afterAll(async () => {
  await ch?.close();
});
afterEach(async () => {
  await fleet?.stopAll();
  fleet = undefined;
});

async function q<T = Record<string, unknown>>(sql: string): Promise<T[]> {
  return (await ch.query({ query: sql, format: 'JSONEachRow' })).json<T>();
}

async function tenant(f: Fleet, id: string, flags?: Record<string, unknown>): Promise<{ id: string; writeKey: string; flags: Record<string, unknown> }> {
  const tenantId = `${id}-${f.prefix.slice(1, 9)}`;
  const created = await f.admin<{ writeKey: string }>('PUT', `/v1/admin/tenants/${tenantId}`);
  expect(created.status).toBe(201);
  const patched = flags ? await f.admin('PATCH', `/v1/admin/tenants/${tenantId}/flags`, flags) : { body: {} };
  return { id: tenantId, writeKey: created.body.writeKey, flags: patched.body };
}

const track = (id: string, userId = 'u1', extra: Record<string, unknown> = {}) => ({ type: 'track', event: 'E', messageId: id, userId, ...extra });

describe('fleet: 100,000 events (check 1)', () => {
  it('land in ClickHouse exactly once, enriched and anonymized as the stage code does in process', async () => {
    // NOTE: the compactor's key keeper makes the anonymizing tenant's stored key
    fleet = await startFleet({ partitions: 3, services: ['collector', 'enricher', 'anonymizer', 'sink', 'compactor'] });
    const clear = await tenant(fleet, 'clear');
    const anon = await tenant(fleet, 'anon', { anonymizeIdentity: true });
    // forward only: anonymizeSince lies up to 2 s ahead (propagation window); send after it
    const since = Number(anon.flags['anonymizeSince']);
    await new Promise((r) => setTimeout(r, Math.max(0, since - Date.now() + 50)));

    const traffic = generateTraffic({ seed: 11, events: 100_000, tenants: [clear.id, anon.id], startMs: Date.now() });
    const stats = await sendTraffic({
      baseUrl: fleet.collectorUrl(),
      writeKeys: { [clear.id]: clear.writeKey, [anon.id]: anon.writeKey },
      batches: traffic.batches,
      concurrency: 8,
    });
    expect(stats.rejected).toBe(0);

    const where = `tenant_id IN ('${clear.id}', '${anon.id}')`;
    let seen = 0;
    await eventually(async () => (seen = toNumber((await q(`SELECT count() AS n FROM events FINAL WHERE ${where}`))[0]?.['n'])) === 100_000, 240_000, '100,000 rows').catch((err: Error) => {
      throw new Error(`${err.message} (saw ${seen})\n${[...(fleet?.processes.values() ?? [])].map((p) => `${p.name}: ${p.output().slice(-1500)}`).join('\n')}`);
    });
    const [totals] = await q(`SELECT count() AS n, uniqExact(tenant_id, event_id) AS u FROM events FINAL WHERE ${where}`);
    expect(toNumber(totals?.['n'])).toBe(100_000);
    expect(toNumber(totals?.['u'])).toBe(100_000);

    const byType = Object.fromEntries((await q(`SELECT type, count() AS n FROM events FINAL WHERE ${where} GROUP BY type`)).map((r) => [r['type'], toNumber(r['n'])]));
    expect(byType).toEqual(Object.fromEntries(Object.entries(traffic.expected.byType).filter(([, n]) => n > 0)));
    const byCountry = Object.fromEntries((await q(`SELECT geo_country, count() AS n FROM events FINAL WHERE ${where} GROUP BY geo_country`)).map((r) => [r['geo_country'], toNumber(r['n'])]));
    expect(byCountry).toEqual(traffic.expected.byCountry);

    // identities: clear for one tenant, the pseudonym of the same key ring for the other
    const redis = new Redis(fleet.env['REDIS_URL'] ?? '', { lazyConnect: false });
    const keys = await storedKeyRing(redis, fleet.env['TRACKLANE_REDIS_PREFIX'] ?? '', fleet.env['TRACKLANE_MASTER_KEY'], [anon.id]);
    redis.disconnect();
    const sent = new Map<string, string>();
    for (const b of traffic.batches) for (const m of b.messages) if (m.userId) sent.set(`${b.tenant}/${m.messageId}`, m.userId);
    const stored = await q<{ tenant_id: string; event_id: string; user_id: string; identity_anonymized: number }>(
      `SELECT tenant_id, event_id, user_id, identity_anonymized FROM events FINAL WHERE ${where} AND user_id IS NOT NULL`,
    );
    expect(stored.length).toBe(sent.size);
    for (const r of stored) {
      const userId = sent.get(`${r.tenant_id}/${r.event_id}`);
      expect(userId).toBeDefined();
      const expected = r.tenant_id === anon.id ? keys.pseudonym(anon.id, 1, userId as string) : userId;
      expect(r.user_id).toBe(expected);
      expect(Number(r.identity_anonymized)).toBe(r.tenant_id === anon.id ? 1 : 0);
    }
    const inferred = (await q(`SELECT tenant_id, account_id FROM accounts FINAL WHERE ${where} AND source = 'email_domain'`)).map((r) => `${r['tenant_id']}/${r['account_id']}`).sort();
    const expectedInferred = Object.entries(traffic.expected.inferredAccountsByTenant).flatMap(([t, ds]) => [...new Set(ds)].map((d) => `${t}/${d}`)).sort();
    expect(inferred).toEqual(expectedInferred);
  }, 420_000);
});

describe('fleet: dead letters (check 3)', () => {
  it('routes an undecodable record and an event of an unknown tenant to the DLQ and keeps the partition moving; the DLQ reads through the registry, and the embedded runner stores and counts the same', async () => {
    fleet = await startFleet({ partitions: 1 });
    const f = fleet;
    const t = await tenant(f, 'dlq');
    const endpoints = serviceEndpoints();
    const kafka = new Kafka({ clientId: 'fleet-test', brokers: kafkaBrokerList(endpoints), logLevel: logLevel.NOTHING });
    const producer = kafka.producer();
    const stageUrls = (['enricher', 'anonymizer', 'sink'] as const).map((n) => `http://127.0.0.1:${f.processes.get(n)?.port}`);
    const ghostTenant = `ghost-${f.prefix.slice(1, 9)}`;
    // a well-formed event of a tenant that does not exist, received long enough ago
    const ghost = { ...rawMinimal, tenant_id: ghostTenant, event_id: 'ghost-1', received_at: Date.now() - 60_000 };
    await producer.connect();
    let fleetCounts: Record<string, StageCounts>;
    try {
      expect(await sendBatch(f.collectorUrl(), t.writeKey, [track('before-poison')])).toBe(200);
      await eventually(async () => (await q(`SELECT count() AS n FROM events FINAL WHERE tenant_id = '${t.id}'`)).map((r) => toNumber(r['n']))[0] === 1, 60_000, 'the first event');
      const before = await stageCounts(...stageUrls);
      const codec = createRecordCodec({ registry: new SchemaRegistry({ host: endpoints.schemaRegistryUrl }), topics: topicNames(f.prefix) });
      await codec.init();
      await producer.send({ topic: `${f.prefix}tracklane.raw.v1`, messages: [{ key: 'ghost', value: codec.encodeRaw(ghost) }] });
      await eventually(async () => (await q(`SELECT 1 FROM dead_letters WHERE tenant_id = '${ghostTenant}'`)).length === 1, 60_000, 'the unknown tenant in dead_letters');
      fleetCounts = countsSince(before, await stageCounts(...stageUrls), STAGES);
      await producer.send({ topic: `${f.prefix}tracklane.raw.v1`, messages: [{ key: 'x', value: Buffer.from('definitely not avro') }] });
      expect(await sendBatch(f.collectorUrl(), t.writeKey, [track('after-poison')])).toBe(200);
    } finally {
      await producer.disconnect();
    }
    await eventually(async () => (await q(`SELECT count() AS n FROM events FINAL WHERE tenant_id = '${t.id}'`)).map((r) => toNumber(r['n']))[0] === 2, 60_000, 'both valid events');
    const unreadable = JSON.stringify({ unreadable_base64: Buffer.from('definitely not avro').toString('base64') });
    const poison = await eventually(async () => (await q(`SELECT stage, reason, payload FROM dead_letters WHERE stage = 'decode' AND payload = '${unreadable}'`))[0], 60_000, 'the undecodable record in dead_letters');
    expect(poison).toEqual({ stage: 'decode', reason: 'record cannot be decoded', payload: unreadable });
    const [fleetRow] = (await q(`SELECT ${DEAD_LETTER_SELECT} FROM dead_letters WHERE tenant_id = '${ghostTenant}'`)).map(parseDeadLetterRow);
    expect(fleetRow).toMatchObject({ stage: 'enrich', reason: 'unknown tenant', event_id: 'ghost-1', error: null });
    expect(parseDeadLetterPayload(fleetRow?.payload ?? '')).toEqual({ input: ghost });

    // A consumer that trusts the registry reads each dead letter with its original schema
    const subjects = (await (await fetch(`${endpoints.schemaRegistryUrl}/subjects`)).json()) as string[];
    expect(subjects).toContain(`${f.prefix}tracklane.raw.v1-value`);
    expect(subjects).not.toContain(`${f.prefix}tracklane.dlq.v1-value`);
    const letters = await readTopic(kafka, `${f.prefix}tracklane.dlq.v1`, 2);
    const registry = new SchemaRegistry({ host: endpoints.schemaRegistryUrl });
    const ghostLetter = letters.find((m) => m.headers['tl-event-id'] === 'ghost-1');
    expect(ghostLetter?.headers).toMatchObject({ 'tl-stage': 'enrich', 'tl-reason': 'unknown tenant', 'tl-original-topic': `${f.prefix}tracklane.raw.v1`, 'tl-attempts': '1' });
    expect(await registry.decode(ghostLetter?.value ?? Buffer.alloc(0))).toEqual(ghost);
    const garbage = letters.find((m) => m.headers['tl-stage'] === 'decode');
    expect(garbage?.value).toEqual(Buffer.from('definitely not avro'));
    await expect(registry.decode(garbage?.value ?? Buffer.alloc(0))).rejects.toThrow();

    // The embedded runner, given the same event, stores the same row and counts the same
    const embedded = await startEmbeddedForTest();
    try {
      const before = await stageCounts(embedded.server.adminUrl);
      expect(await embedded.server.intake.ingest([ghost])).toEqual({ accepted: 0, dropped: [], deadLettered: [{ eventId: 'ghost-1', reason: 'unknown tenant' }], retry: [] });
      expect(countsSince(before, await stageCounts(embedded.server.adminUrl), STAGES)).toEqual(fleetCounts);
      expect(fleetCounts['enrich']).toEqual({ in: 1, out: 0, dropped: 0, deadLetters: 1, retries: 0 });
      const embeddedRows = (
        await (await embedded.server.clickhouse.query({ query: `SELECT ${DEAD_LETTER_SELECT} FROM dead_letters WHERE tenant_id = {t:String}`, query_params: { t: ghostTenant }, format: 'JSONEachRow' })).json<Record<string, unknown>>()
      ).map(parseDeadLetterRow);
      const withoutTime = (r: DeadLetterRow | undefined) => ({ ...r, received_at: undefined });
      expect(embeddedRows.map(withoutTime)).toEqual([withoutTime(fleetRow)]);
      // received_at is when the stage gave up, in both
      expect(Math.abs((embeddedRows[0]?.received_at ?? 0) - Date.now())).toBeLessThan(60_000);
      expect(Math.abs((fleetRow?.received_at ?? 0) - Date.now())).toBeLessThan(5 * 60_000);
    } finally {
      await embedded.stop();
    }
  }, 240_000);
});

const STAGES = ['enrich', 'anonymize', 'sink'];

/** The records of a topic from its start, with headers as text, once `count` are there. */
async function readTopic(kafka: Kafka, topic: string, count: number): Promise<{ value: Buffer | null; headers: Record<string, string> }[]> {
  const consumer = kafka.consumer({ groupId: `read-${topic}-${Date.now()}` });
  const seen: { value: Buffer | null; headers: Record<string, string> }[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        const headers = Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)]));
        seen.push({ value: message.value, headers });
      },
    });
    await eventually(async () => seen.length >= count, 60_000, `${count} records on ${topic}`);
    return seen;
  } finally {
    await consumer.disconnect();
  }
}

/** An embedded runner on chDB in a data dir of its own. */
async function startEmbeddedForTest(): Promise<{ server: EmbeddedServer; stop(): Promise<void> }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tracklane-dlq-contract-'));
  const config = embeddedConfigSchema.parse({
    PORT: '0',
    HOST: '127.0.0.1',
    TRACKLANE_DATA_DIR: dataDir,
    TRACKLANE_ADMIN_TOKEN: randomBytes(24).toString('base64url'),
    TRACKLANE_MASTER_KEY: `base64:${randomBytes(32).toString('base64')}`,
  });
  const server = await startEmbedded(config, createLogger({ level: 'silent' }));
  return {
    server,
    async stop() {
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

describe('fleet: shutdown (check 6)', () => {
  it('every worker drains, commits and exits 0 within 10 s of SIGTERM', async () => {
    fleet = await startFleet({ partitions: 2 });
    const t = await tenant(fleet, 'term');
    expect(await sendBatch(fleet.collectorUrl(), t.writeKey, Array.from({ length: 200 }, (_, i) => track(`term-${i}`, `u${i % 7}`)))).toBe(200);
    for (const [name, proc] of fleet.processes) {
      const started = Date.now();
      proc.kill('SIGTERM');
      const exit = await proc.exited;
      expect({ name, ...exit }).toEqual({ name, code: 0, signal: null });
      expect(Date.now() - started).toBeLessThan(10_000);
    }
    fleet.processes.clear();
  }, 180_000);
});

/** Posts batches of fresh events until stopped; records which ids were answered 200. */
function steadyLoad(url: string, writeKey: string, idPrefix: string, opts: { batch?: number; concurrency?: number; pauseMs?: number } = {}) {
  const accepted: string[] = [];
  const statuses: { at: number; status: number }[] = [];
  let n = 0;
  let running = true;
  const worker = async () => {
    while (running) {
      const ids = Array.from({ length: opts.batch ?? 50 }, () => `${idPrefix}-${n++}`);
      let status = 0;
      try {
        const res = await fetch(`${url}/v1/batch`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${writeKey}:`).toString('base64')}` },
          // NOTE: a dozen users, so the events spread over every partition
          body: JSON.stringify({ batch: ids.map((id, i) => track(id, `steady-${(n + i) % 12}`)) }),
          signal: AbortSignal.timeout(30_000),
        });
        await res.arrayBuffer();
        status = res.status;
      } catch {
        status = -1;
      }
      statuses.push({ at: Date.now(), status });
      if (status === 200) accepted.push(...ids);
      else await new Promise((r) => setTimeout(r, 200));
      if (opts.pauseMs) await new Promise((r) => setTimeout(r, opts.pauseMs));
    }
  };
  const workers = Array.from({ length: opts.concurrency ?? 2 }, worker);
  return {
    accepted,
    statuses,
    async stop() {
      running = false;
      await Promise.all(workers);
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function storedCount(tenantId: string, final = true): Promise<number> {
  return toNumber((await q(`SELECT count() AS n FROM events ${final ? 'FINAL' : ''} WHERE tenant_id = '${tenantId}'`))[0]?.['n']);
}

/**
 * Every accepted id is stored exactly once through FINAL; with `onlyAccepted`, nothing else is
 * (without it, events of requests answered 503 may also have made it: that is allowed).
 */
async function expectExactlyOnce(tenantId: string, accepted: readonly string[], onlyAccepted = true): Promise<void> {
  let seen = -1;
  await eventually(async () => (seen = await storedCount(tenantId)) >= accepted.length, 180_000, `${accepted.length} rows`).catch(async (err: Error) => {
    throw new Error(`${err.message} (saw ${seen})\n${(await fleet?.diagnostics()) ?? ''}`);
  });
  const [r] = await q(`SELECT count() AS n, uniqExact(event_id) AS u FROM events FINAL WHERE tenant_id = '${tenantId}'`);
  expect(toNumber(r?.['n'])).toBe(toNumber(r?.['u']));
  if (onlyAccepted) expect(toNumber(r?.['n'])).toBe(accepted.length);
  const ids = new Set((await q<{ event_id: string }>(`SELECT event_id FROM events FINAL WHERE tenant_id = '${tenantId}'`)).map((x) => x.event_id));
  expect(accepted.filter((id) => !ids.has(id))).toEqual([]);
}

function testKafka(): Kafka {
  return new Kafka({ clientId: 'fleet-test', brokers: kafkaBrokerList(serviceEndpoints()), logLevel: logLevel.NOTHING });
}

describe('fleet: kill -9 under steady load (check 2)', () => {
  it('loses and duplicates nothing, and the sink never commits ahead of ClickHouse', async () => {
    fleet = await startFleet({ partitions: 3 });
    const t = await tenant(fleet, 'kill');
    const load = steadyLoad(fleet.collectorUrl(), t.writeKey, 'kill', { batch: 100 });
    const admin = testKafka().admin();
    await admin.connect();
    const committedSum = async () => {
      const offsets = await admin.fetchOffsets({ groupId: `${fleet?.prefix}tracklane-sink`, topics: [`${fleet?.prefix}tracklane.clean.v1`] });
      return offsets.flatMap((o) => o.partitions).reduce((n, p) => n + Math.max(0, Number(p.offset)), 0);
    };
    // NOTE: offsets read before rows: a commit happens only after its insert, so rows ≥ committed.
    const violations: string[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const committed = await committedSum();
        const rows = await storedCount(t.id, false);
        if (committed > rows) violations.push(`committed ${committed} > rows ${rows}`);
        await sleep(300);
      }
    })();
    try {
      await eventually(async () => (await storedCount(t.id)) > 3_000, 60_000, 'rows before the sink kill');
      const sink = fleet.processes.get('sink');
      sink?.kill('SIGKILL');
      expect((await sink?.exited)?.signal).toBe('SIGKILL');
      const committedAtKill = await committedSum();
      expect(committedAtKill).toBeLessThanOrEqual(await storedCount(t.id, false));
      await sleep(1_000);
      await fleet.start('sink');
      const before = await storedCount(t.id);
      await eventually(async () => (await storedCount(t.id)) > before + 2_000, 60_000, 'rows after the sink restart');
      sampling = false;
      await sampler;

      const enricher = fleet.processes.get('enricher');
      enricher?.kill('SIGKILL');
      expect((await enricher?.exited)?.signal).toBe('SIGKILL');
      await sleep(1_000);
      await fleet.start('enricher');
      await sleep(3_000);
    } finally {
      sampling = false;
      await sampler;
      await load.stop();
      await admin.disconnect();
    }
    expect(violations).toEqual([]);
    expect(load.accepted.length).toBeGreaterThan(5_000);
    await expectExactlyOnce(t.id, load.accepted);
  }, 420_000);
});

describe('fleet: flags in Redis (check 4)', () => {
  let redis: PrivateRedis | undefined;
  afterEach(async () => {
    await redis?.destroy();
  });

  it('two anonymizers honour a flip within 2 s; with Redis stopped no clear identity passes; nothing is lost when it returns', async () => {
    redis = await startPrivateRedis();
    fleet = await startFleet({ partitions: 3, env: { REDIS_URL: redis.url } });
    await fleet.start('anonymizer', 'anonymizer-2');
    // NOTE: the compactor's key keeper makes the tenant's stored key, within the flip's 2 s
    await fleet.start('compactor');
    const t = await tenant(fleet, 'flip');
    const load = steadyLoad(fleet.collectorUrl(), t.writeKey, 'flip', { batch: 20, pauseMs: 50 });
    let since = 0;
    try {
      await sleep(1_500);
      const flippedAt = Date.now();
      const flipped = await fleet.admin('PATCH', `/v1/admin/tenants/${t.id}/flags`, { anonymizeIdentity: true });
      since = Number(flipped.body['anonymizeSince']);
      expect(since - flippedAt).toBeLessThanOrEqual(2_500);
      await sleep(Math.max(0, since - Date.now()) + 2_000);

      await redis.stop();
      await sleep(4_000);
      await redis.start();
      await sleep(3_000);
    } finally {
      await load.stop();
    }
    await expectExactlyOnce(t.id, load.accepted);
    const [r] = await q(
      `SELECT countIf(identity_anonymized = 0 AND toUnixTimestamp64Milli(received_at) >= ${since}) AS leaked,
              countIf(identity_anonymized = 1) AS anonymized, countIf(identity_anonymized = 0) AS clear,
              countIf(startsWith(user_id, 'steady-') AND toUnixTimestamp64Milli(received_at) >= ${since}) AS clear_after
       FROM events FINAL WHERE tenant_id = '${t.id}'`,
    );
    expect(toNumber(r?.['leaked'])).toBe(0);
    expect(toNumber(r?.['clear_after'])).toBe(0);
    expect(toNumber(r?.['anonymized'])).toBeGreaterThan(0);
    expect(toNumber(r?.['clear'])).toBeGreaterThan(0);

    // the clean topic itself never carried the clear id after anonymizeSince
    const codec = createRecordCodec({ registry: new SchemaRegistry({ host: serviceEndpoints().schemaRegistryUrl }), topics: topicNames(fleet.prefix) });
    await codec.init();
    const consumer = testKafka().consumer({ groupId: `${fleet.prefix}check-clean` });
    await consumer.connect();
    await consumer.subscribe({ topic: `${fleet.prefix}tracklane.clean.v1`, fromBeginning: true });
    let records = 0;
    let leakedOnTopic = 0;
    await consumer.run({
      eachMessage: async ({ message }) => {
        if (!message.value) return;
        const d = await codec.decodeCleanRecord(message.value);
        if (!d.ok) return;
        for (const item of d.value) {
          if (!item.ok) continue;
          const e = item.value;
          records++;
          if (e.tenant_id === t.id && e.received_at >= since && (!e.identity_anonymized || (e.user_id ?? '').startsWith('steady-'))) leakedOnTopic++;
        }
      },
    });
    await eventually(async () => records >= load.accepted.length, 60_000, 'the clean topic read back');
    await consumer.disconnect();
    expect(leakedOnTopic).toBe(0);
    // both replicas took part
    const outs: Record<string, number> = {};
    for (const key of ['anonymizer', 'anonymizer-2']) {
      const metrics = await (await fetch(`http://127.0.0.1:${fleet.processes.get(key)?.port}/metrics`)).text();
      outs[key] = Number(/^tracklane_events_out_total\{[^}]*stage="anonymize"[^}]*\} (\d+)/m.exec(metrics)?.[1] ?? 0);
    }
    expect(outs['anonymizer']).toBeGreaterThan(0);
    expect(outs['anonymizer-2']).toBeGreaterThan(0);
  }, 420_000);
});

describe('fleet: Kafka stopped (check 5)', () => {
  it('the collector answers 503, never 2xx without an ack, and every 2xx event arrives after Kafka returns', async () => {
    fleet = await startFleet({ partitions: 2 });
    const t = await tenant(fleet, 'outage');
    const load = steadyLoad(fleet.collectorUrl(), t.writeKey, 'outage', { batch: 20, pauseMs: 50 });
    let stoppedAt = 0;
    let restarting = 0;
    let restartedAt = 0;
    try {
      await sleep(2_000);
      expect(await stopKafka()).toBe(true);
      stoppedAt = Date.now();
      await sleep(8_000);
      restarting = Date.now();
      expect(await startKafka()).toBe(true);
      restartedAt = Date.now();
      await eventually(async () => load.statuses.some((s) => s.at > restartedAt + 1_000 && s.status === 200), 90_000, 'a 2xx after Kafka returned');
    } finally {
      await load.stop();
    }
    // the broker answers before startKafka() finished its readiness checks: the outage ends when it is called
    const during = load.statuses.filter((s) => s.at > stoppedAt + 500 && s.at < restarting);
    expect(during.length).toBeGreaterThan(0);
    const timeline = load.statuses.map((s) => `${s.at - stoppedAt}:${s.status}`).join(' ');
    expect(during.filter((s) => s.status === 200), timeline).toEqual([]);
    expect(during.some((s) => s.status === 503)).toBe(true);
    await expectExactlyOnce(t.id, load.accepted, false);
  }, 420_000);
});
