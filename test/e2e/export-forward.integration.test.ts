// The fleet's export path, without Kafka: the compactor's export app (it holds the master key)
// on ClickHouse over HTTP (the test gateway, which records every request), and the fleet
// collector's public and admin listeners forwarding the route to it. A tenant admin key gets the
// user's clear and pseudonymized events streamed through the collector; everything else is
// refused at the collector or at the compactor; both audit; no id is in a URL or a query's text.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeyRing, type KeyRing } from '../../libs/anonymize/key-ring.js';
import { createAuditLog } from '../../libs/audit/audit-log.js';
import { createClickHouse, type ClickHouseClient } from '../../libs/clickhouse/client.js';
import { migrate } from '../../libs/clickhouse/migrate.js';
import { insertEventTuples } from '../../libs/clickhouse/tables/events.js';
import { createLogger } from '../../libs/core/logger.js';
import { subjectHasher } from '../../libs/privacy/subject-hash.js';
import { toEventTuple } from '../../libs/sink/event-rows.js';
import { createMemoryTenantStore, type TenantStore } from '../../libs/tenants/tenant-store.js';
import { buildCollectorApp } from '../../services/collector/http-app.js';
import { compactorExportApp } from '../../services/compactor/export-app.js';
import { cleanEvent } from '../support/clickhouse-fixtures.js';
import { startClickHouseGateway, type CapturedRequest, type ClickHouseGateway } from '../support/clickhouse-gateway.js';
import { eventually } from '../support/poll.js';

const OPERATOR = randomBytes(16).toString('hex');
const T = 'fwd-acme';
const U = 'fwd-user';
const logger = createLogger({ level: 'silent' });

let dir = '';
let gateway: ClickHouseGateway;
let clickhouse: ClickHouseClient;
const captured: CapturedRequest[] = [];
let pseudonym = '';
let tenants: TenantStore;
let keys: KeyRing;
let compactor: FastifyInstance;
let publicApp: FastifyInstance;
let adminApp: FastifyInstance;
let compactorUrl = '';
let adminKey = '';
let readKey = '';
let otherKey = '';

const url = (app: FastifyInstance) => `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tracklane-export-forward-'));
  gateway = await startClickHouseGateway({ port: 0, dataDir: join(dir, 'ch'), onRequest: (r) => captured.push(r) });
  clickhouse = createClickHouse({ url: gateway.url, logger });
  await migrate(clickhouse);
  tenants = createMemoryTenantStore();
  await tenants.createTenant(T);
  await tenants.createTenant('fwd-globex');
  await tenants.patchFlags(T, { anonymizeIdentity: true }, 0);
  adminKey = (await tenants.createApiKey(T, { name: 'admins', scopes: ['admin'] }))?.key ?? '';
  readKey = (await tenants.createApiKey(T, { name: 'analysts', scopes: ['read'] }))?.key ?? '';
  otherKey = (await tenants.createApiKey('fwd-globex', { name: 'admins', scopes: ['admin'] }))?.key ?? '';
  keys = createKeyRing(randomBytes(32));
  pseudonym = keys.pseudonym(T, 1, U);
  await insertEventTuples(clickhouse, [
    toEventTuple(cleanEvent({ tenant_id: T, event_id: 'fwd-clear', user_id: U })),
    toEventTuple(cleanEvent({ tenant_id: T, event_id: 'fwd-pseudo', user_id: pseudonym, identity_anonymized: true, key_version: 1 })),
    toEventTuple(cleanEvent({ tenant_id: T, event_id: 'fwd-other', user_id: `${U}2` })),
  ]);
  const subjectHash = subjectHasher(randomBytes(32));
  compactor = compactorExportApp({ tenants, clickhouse: clickhouse, keys, subjectHash, logger });
  await compactor.listen({ port: 0, host: '127.0.0.1' });
  compactorUrl = url(compactor);
  const options = {
    logger,
    maxRequestBytes: 500 * 1024,
    trustProxy: false,
    ingest: { tenantByWriteKey: () => undefined, pipeline: { ready: () => true, ingest: async () => ({ accepted: 0, dropped: [], deadLettered: [], retry: [] }) }, limits: { maxEventBytes: 32768, maxBatchEvents: 500, maxFutureMs: 60_000 } },
    admin: { adminToken: OPERATOR, tenants, canAnonymize: true, analyst: { tenantQuery: async () => [], operatorQuery: async () => [] }, audit: createAuditLog({ client: clickhouse, logger }), exportForward: { compactorUrl } },
  };
  publicApp = buildCollectorApp({ ...options, listener: 'public' });
  adminApp = buildCollectorApp({ ...options, listener: 'admin' });
  await publicApp.listen({ port: 0, host: '127.0.0.1' });
  await adminApp.listen({ port: 0, host: '127.0.0.1' });
}, 120_000);

afterAll(async () => {
  await publicApp?.close();
  await adminApp?.close();
  await compactor?.close();
  await clickhouse?.close();
  await gateway?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function get(base: string, token: string, tenantId = T, userId = U): Promise<{ status: number; type: string | null; text: string }> {
  const res = await fetch(`${base}/v1/admin/tenants/${tenantId}/users/${encodeURIComponent(userId)}/export`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
}
const lines = (text: string) => text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);

describe('the fleet export path: collector → compactor', () => {
  it("streams a tenant admin's export through the collector: clear and pseudonymized events, nothing of another user", async () => {
    const res = await get(url(publicApp), adminKey);
    expect(res.status).toBe(200);
    expect(res.type).toMatch(/^application\/x-ndjson/);
    const got = lines(res.text);
    expect(got.filter((l) => l['kind'] === 'event').map((l) => [l['event_id'], l['storedAs']])).toEqual([
      ['fwd-clear', 'clear'],
      ['fwd-pseudo', 'pseudonym'],
    ]);
    expect(got.at(-1)).toMatchObject({ kind: 'summary', events: 2, pseudonyms: 1 });
  });

  it('refuses at the collector what it refuses anywhere, and the compactor takes no operator token', async () => {
    expect((await get(url(publicApp), readKey)).status).toBe(403);
    expect((await get(url(publicApp), otherKey)).status).toBe(404);
    expect((await get(url(publicApp), OPERATOR)).status).toBe(401);
    const operator = await get(url(adminApp), OPERATOR);
    expect(operator.status).toBe(403);
    expect(operator.text).toContain('tracklane export user --fleet');
    expect((await get(compactorUrl, OPERATOR)).status).toBe(401);
    // straight to the compactor, a tenant key is checked there as at the collector
    expect((await get(compactorUrl, otherKey)).status).toBe(404);
    expect((await get(compactorUrl, readKey)).status).toBe(403);
    expect((await get(compactorUrl, adminKey)).status).toBe(200);
  });

  it('answers 503 when the compactor cannot be reached', async () => {
    const lonely = buildCollectorApp({
      logger,
      maxRequestBytes: 1024,
      trustProxy: false,
      ingest: { tenantByWriteKey: () => undefined, pipeline: { ready: () => true, ingest: async () => ({ accepted: 0, dropped: [], deadLettered: [], retry: [] }) }, limits: { maxEventBytes: 32768, maxBatchEvents: 500, maxFutureMs: 60_000 } },
      admin: { adminToken: OPERATOR, tenants, canAnonymize: true, analyst: { tenantQuery: async () => [], operatorQuery: async () => [] }, exportForward: { compactorUrl: 'http://127.0.0.1:9' } },
      listener: 'public',
    });
    const res = await lonely.inject({ method: 'GET', url: `/v1/admin/tenants/${T}/users/${U}/export`, headers: { authorization: `Bearer ${adminKey}` } });
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('5');
    await lonely.close();
  });

  it('both sides audit: the collector the forward, the compactor the export under the subject hash', async () => {
    const rows = await eventually(async () => {
      const rs = await clickhouse.query({ query: 'SELECT action, status, details FROM audit_log WHERE tenant_id = {t:String} ORDER BY at', query_params: { t: T }, format: 'JSONEachRow' });
      const found = await rs.json<{ action: string; status: number; details: Record<string, string> }>();
      return found.some((r) => r.action === 'export.user' && r.details['complete'] === 'true') && found.some((r) => r.action === 'export.forward') ? found : undefined;
    }, 20_000, 'audit rows');
    const exported = rows.find((r) => r.action === 'export.user' && r.status === 200);
    expect(exported?.details).toMatchObject({ complete: 'true', events: '2', subjectIdHash: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(rows.some((r) => r.action === 'export.forward' && r.status === 403)).toBe(true);
    expect(JSON.stringify(rows)).not.toContain(U);
  });

  it('sends the ids to ClickHouse only as the data of lookup inserts, never in a URL or a query text', () => {
    const exportReads = captured.filter((r) => /tracklane_ids_/.test(r.queryText));
    expect(exportReads.some((r) => /^INSERT INTO tracklane_ids_/.test(r.queryText) && r.insertData.includes(pseudonym))).toBe(true);
    for (const needle of [U, pseudonym, encodeURIComponent(U), encodeURIComponent(pseudonym)]) {
      const leaks = captured.filter((r) => r.url.includes(needle) || r.queryText.includes(needle));
      expect(leaks.map((r) => `${r.method} ${r.url.slice(0, 200)} ${r.queryText.slice(0, 200)}`), needle).toEqual([]);
    }
  });
});
