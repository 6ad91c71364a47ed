// The fleet through the test broker's SASL_SSL listener
// (SCRAM-SHA-512, the broker verified against the test CA) and the schema registry behind HTTPS
// with basic auth (the test setup's proxy), and services that are given a wrong
// password or no trust in that CA: not ready, one line naming the setting, exit 1 on
// STARTUP_TIMEOUT_MS — never the password in their output.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { ConfigResourceTypes, Kafka, logLevel } from 'kafkajs';
import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { toNumber } from '../../libs/clickhouse/client.js';
import { kafkaSecureEndpoint } from '../../scripts/services/kafka.js';
import type { KafkaSecureEndpoint } from '../../scripts/services/kafka-tls.js';
import { eventually } from '../support/poll.js';
import { readyzCodesUntilExit, sendBatch, startFleet, type Fleet, type FleetServiceName } from '../support/fleet.js';
import { startRegistryProxy, type RegistryProxy } from '../support/registry-proxy.js';
import { clickhouseClientOptions, serviceEndpoints } from '../support/services.js';

let ch: ClickHouseClient;
let fleet: Fleet | undefined;
let secure: KafkaSecureEndpoint;
let dir: string;
let schemaRegistryProxy: RegistryProxy;

beforeAll(async () => {
  serviceEndpoints();
  ch = createClient(clickhouseClientOptions());
  secure = await kafkaSecureEndpoint();
  dir = mkdtempSync(join(tmpdir(), 'tracklane-sasl-'));
  schemaRegistryProxy = await startRegistryProxy(serviceEndpoints().schemaRegistryUrl);
});
afterAll(async () => {
  await ch?.close();
  await schemaRegistryProxy?.close();
  rmSync(dir, { recursive: true, force: true });
});
afterEach(async () => {
  await fleet?.stopAll();
  fleet = undefined;
});

/** The fleet's Kafka settings for the SASL_SSL listener; the password from a file, as a mounted Secret gives it. */
function saslEnv(password: string, extra: Record<string, string> = {}): Record<string, string> {
  const passwordFile = join(dir, `password-${Math.random().toString(36).slice(2)}`);
  writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
  return {
    KAFKA_BROKERS: secure.brokers,
    KAFKA_SSL: 'true',
    KAFKA_SSL_CA_FILE: secure.caFile,
    KAFKA_SASL_MECHANISM: secure.mechanism,
    KAFKA_SASL_USERNAME: secure.username,
    KAFKA_SASL_PASSWORD_FILE: passwordFile,
    SCHEMA_REGISTRY_URL: schemaRegistryProxy.url,
    SCHEMA_REGISTRY_USER: schemaRegistryProxy.username,
    SCHEMA_REGISTRY_PASSWORD: schemaRegistryProxy.password,
    SCHEMA_REGISTRY_CA_FILE: schemaRegistryProxy.caFile,
    ...extra,
  };
}

const track = (id: string, userId: string) => ({ type: 'track', event: 'E', messageId: id, userId });

describe('fleet over SASL_SSL (check 1)', () => {
  it('carries 10,000 events collector → enricher → anonymizer → sink exactly once through FINAL', async () => {
    // NOTE: a retention of its own: the services create the topics (fleet context) with the configured retention
    fleet = await startFleet({ partitions: 3, env: saslEnv(secure.password, { KAFKA_RAW_RETENTION_MS: '43200000', KAFKA_RAW_SEGMENT_MS: '1800000' }) });
    const tenantId = `sasl-${fleet.prefix.slice(1, 9)}`;
    const created = await fleet.admin<{ writeKey: string }>('PUT', `/v1/admin/tenants/${tenantId}`);
    expect(created.status).toBe(201);

    const ids = Array.from({ length: 10_000 }, (_, i) => `sasl-${i}`);
    for (let i = 0; i < ids.length; i += 500) {
      const batch = ids.slice(i, i + 500).map((id, j) => track(id, `user-${(i + j) % 37}`));
      expect(await sendBatch(fleet.collectorUrl(), created.body.writeKey, batch)).toBe(200);
    }
    const count = async () => toNumber((await (await ch.query({ query: `SELECT count() AS n FROM events FINAL WHERE tenant_id = {t:String}`, query_params: { t: tenantId }, format: 'JSONEachRow' })).json<{ n: string }>())[0]?.n);
    let seen = -1;
    await eventually(async () => (seen = await count()) >= ids.length, 180_000, '10,000 rows').catch(async (err: Error) => {
      throw new Error(`${err.message} (saw ${seen})\n${(await fleet?.diagnostics()) ?? ''}`);
    });
    const stored = await (await ch.query({ query: `SELECT event_id, count() AS n FROM events FINAL WHERE tenant_id = {t:String} GROUP BY event_id`, query_params: { t: tenantId }, format: 'JSONEachRow' })).json<{ event_id: string; n: string }>();
    expect(stored.length).toBe(ids.length);
    expect(stored.filter((r) => toNumber(r.n) !== 1)).toEqual([]);
    expect(new Set(stored.map((r) => r.event_id))).toEqual(new Set(ids));
    // every service reached the registry only through the authenticated proxy, and never failed there
    expect(schemaRegistryProxy.refused()).toBe(0);

    // the fleet's topics live on the broker it reached through the secure listener
    const kafka = new Kafka({
      clientId: 'sasl-test',
      brokers: [secure.brokers],
      ssl: { ca: [readFileSync(secure.caFile, 'utf8')], rejectUnauthorized: true },
      sasl: { mechanism: secure.mechanism, username: secure.username, password: secure.password },
      logLevel: logLevel.NOTHING,
    });
    const admin = kafka.admin();
    await admin.connect();
    try {
      // NOTE: records of many events (schemas/avro/README.md): at least one record per 500 events, at most one each
      const offsets = await admin.fetchTopicOffsets(`${fleet.prefix}tracklane.clean.v1`);
      const records = offsets.reduce((n, p) => n + Number(p.high), 0);
      expect(records).toBeGreaterThanOrEqual(Math.ceil(ids.length / 500));
      expect(records).toBeLessThan(ids.length);
      const described = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [{ type: ConfigResourceTypes.TOPIC, name: `${fleet.prefix}tracklane.raw.v1`, configNames: ['retention.ms', 'segment.ms'] }],
      });
      const entries = Object.fromEntries((described.resources[0]?.configEntries ?? []).map((e) => [e.configName, e.configValue]));
      expect(entries).toEqual({ 'retention.ms': '43200000', 'segment.ms': '1800000' });
    } finally {
      await admin.disconnect();
    }
  }, 420_000);
});

describe('fleet: a wrong SASL password or an untrusted broker certificate (check 2)', () => {
  const services: FleetServiceName[] = ['collector', 'enricher', 'anonymizer', 'sink', 'compactor'];

  /** Starts every service with `env`; each must stay not ready, exit 1 after its start timeout and name `setting`. */
  async function expectRefusedAtStart(env: Record<string, string>, setting: string, secret: string): Promise<void> {
    fleet = await startFleet({ services: [], env: { ...env, STARTUP_TIMEOUT_MS: '6000' } });
    const started = Date.now();
    const procs = await Promise.all(services.map((s) => fleet!.start(s, s, {}, { awaitReady: false })));
    // not ready while it tries (the placeholder answers 503 once the process is up)
    const readiness = await Promise.all(procs.map(readyzCodesUntilExit));
    for (const [i, p] of procs.entries()) {
      const exit = await p.exited;
      const out = p.output();
      expect({ service: p.name, code: exit.code }).toEqual({ service: p.name, code: 1 });
      expect(readiness[i]).toContain(503);
      expect(readiness[i]).not.toContain(200);
      expect(out).toContain(setting);
      expect(out).toContain('STARTUP_TIMEOUT_MS');
      expect(out).not.toContain(secret);
      // one line per problem, not one per attempt
      expect(out.split('\n').filter((l) => l.includes('not ready:')).length).toBe(1);
    }
    // each gave up on its timeout, not at once and not much later (the bound covers five
    // processes booting at once on two cores, which takes up to ~10 s here)
    expect(Date.now() - started).toBeGreaterThanOrEqual(6_000);
    expect(Date.now() - started).toBeLessThan(6_000 + 20_000);
    fleet.processes.clear();
  }

  it('a wrong password: not ready, exits 1 on STARTUP_TIMEOUT_MS, names KAFKA_SASL_PASSWORD and never the password', async () => {
    const wrong = `wrong-${Math.random().toString(36).slice(2)}`;
    await expectRefusedAtStart(saslEnv(wrong), 'KAFKA_SASL_PASSWORD', wrong);
  }, 120_000);

  it('the system CAs instead of the test CA: not ready, exits 1, names KAFKA_SSL_CA_FILE', async () => {
    const { KAFKA_SSL_CA_FILE: _ca, ...withoutCa } = saslEnv(secure.password);
    await expectRefusedAtStart(withoutCa, 'KAFKA_SSL_CA_FILE', secure.password);
  }, 120_000);
});
