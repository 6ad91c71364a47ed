// Acceptance checks of the Kafka fleet: collector, enricher, anonymizer and sink as separate
// processes on real Kafka, the schema registry, Redis and ClickHouse (the chDB gateway).
// One file, so its fleets run one after the other on the 2-core machine.
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createKeyRing } from '../../libs/anonymize/key-ring.js';
import { parseMasterKey } from '../../libs/anonymize/master-key.js';
import { toNumber } from '../../libs/clickhouse/client.js';
import { createRecordCodec } from '../../libs/kafka/record-codec.js';
import { rawMinimal } from '../../libs/kafka/record-fixtures.js';
import { topicNames } from '../../libs/kafka/topics.js';
import { sendTraffic } from '../../services/demo/send.js';
import { generateTraffic } from '../../services/demo/traffic.js';
import { eventually } from '../support/embedded-process.js';
import { sendBatch, startFleet, type Fleet } from '../support/fleet.js';
import { kafkaBrokerList, serviceEndpoints } from '../support/services.js';

let ch: ClickHouseClient;
let fleet: Fleet | undefined;

beforeAll(() => {
  ch = createClient({ url: serviceEndpoints().clickhouseUrl });
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
    fleet = await startFleet({ partitions: 3 });
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
    const keys = createKeyRing(parseMasterKey(fleet.env['TRACKLANE_MASTER_KEY']));
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
  it('routes an undecodable record and an event of an unknown tenant to the DLQ and keeps the partition moving', async () => {
    fleet = await startFleet({ partitions: 1 });
    const t = await tenant(fleet, 'dlq');
    const kafka = new Kafka({ clientId: 'fleet-test', brokers: kafkaBrokerList(serviceEndpoints()), logLevel: logLevel.NOTHING });
    const producer = kafka.producer();
    await producer.connect();
    try {
      expect(await sendBatch(fleet.collectorUrl(), t.writeKey, [track('before-poison')])).toBe(200);
      await producer.send({ topic: `${fleet.prefix}tracklane.raw.v1`, messages: [{ key: 'x', value: Buffer.from('definitely not avro') }] });
      // a well-formed event of a tenant that does not exist, received long enough ago
      const codec = createRecordCodec({ registry: new SchemaRegistry({ host: serviceEndpoints().schemaRegistryUrl }), topics: topicNames(fleet.prefix) });
      await codec.init();
      const ghost = { ...rawMinimal, tenant_id: `ghost-${fleet.prefix.slice(1, 9)}`, event_id: 'ghost-1', received_at: Date.now() - 60_000 };
      await producer.send({ topic: `${fleet.prefix}tracklane.raw.v1`, messages: [{ key: 'ghost', value: codec.encodeRaw(ghost) }] });
      expect(await sendBatch(fleet.collectorUrl(), t.writeKey, [track('after-poison')])).toBe(200);
    } finally {
      await producer.disconnect();
    }
    await eventually(async () => (await q(`SELECT count() AS n FROM events FINAL WHERE tenant_id = '${t.id}'`)).map((r) => toNumber(r['n']))[0] === 2, 60_000, 'both valid events');
    const letters = await eventually(async () => {
      const rows = await q(`SELECT stage, reason, payload FROM dead_letters WHERE payload LIKE '%${fleet?.prefix}tracklane.raw.v1%'`);
      return rows.some((r) => r['stage'] === 'decode') ? rows : undefined;
    }, 60_000, 'a dead_letters row');
    const poison = letters.find((l) => l['stage'] === 'decode');
    expect(poison).toMatchObject({ stage: 'decode', reason: 'record cannot be decoded' });
    expect(JSON.parse(String(poison?.['payload']))).toMatchObject({ value_base64: Buffer.from('definitely not avro').toString('base64') });
    const unknown = await eventually(async () => {
      const rows = await q(`SELECT stage, reason, event_id FROM dead_letters WHERE tenant_id = 'ghost-${fleet?.prefix.slice(1, 9)}'`);
      return rows.length >= 1 ? rows : undefined;
    }, 60_000, 'the unknown tenant in dead_letters');
    expect(unknown[0]).toEqual({ stage: 'enrich', reason: 'unknown tenant', event_id: 'ghost-1' });
  }, 180_000);
});

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
