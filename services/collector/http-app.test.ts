// Unit tests of the collector's HTTP contract, with an in-memory tenant store and a
// recording pipeline (the integration suite runs the same routes against chDB).
import { gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createLogger } from '../../libs/core/logger.js';
import type { RawEvent } from '../../libs/events/envelope.js';
import type { IngestOutcome, IngestPipeline } from '../../libs/pipeline/ingest.js';
import { createMemoryTenantStore } from '../../libs/tenants/tenant-store.js';
import type { TenantStore } from '../../libs/tenants/tenant-store.js';
import { buildCollectorApp } from './http-app.js';

const ADMIN = 'admin-token-0123456789';

class RecordingPipeline implements IngestPipeline {
  batches: RawEvent[][] = [];
  retryIds = new Set<string>();
  isReady = true;
  ready() {
    return this.isReady;
  }
  async ingest(events: readonly RawEvent[]): Promise<IngestOutcome> {
    this.batches.push([...events]);
    const retry = events.filter((e) => this.retryIds.has(e.event_id)).map((e) => ({ eventId: e.event_id, reason: 'test' }));
    return { accepted: events.length - retry.length, dropped: [], deadLettered: [], retry };
  }
  get events() {
    return this.batches.flat();
  }
}

let app: FastifyInstance;
let pipeline: RecordingPipeline;
let tenants: TenantStore;
let writeKey: string;
let canAnonymize = true;

/** n properties of `size` characters each: under the per-value limit, over the per-event one when n × size > 32 KB */
const padded = (n: number, size: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`pad${i}`, 'x'.repeat(size)]));
const basic = (key: string) => `Basic ${Buffer.from(`${key}:`).toString('base64')}`;

async function post(url: string, payload: unknown, headers: Record<string, string> = {}) {
  return app.inject({
    method: 'POST',
    url,
    headers: { 'content-type': 'application/json', authorization: basic(writeKey), ...headers },
    payload: typeof payload === 'string' || Buffer.isBuffer(payload) ? payload : JSON.stringify(payload),
  });
}

beforeEach(async () => {
  pipeline = new RecordingPipeline();
  tenants = createMemoryTenantStore();
  writeKey = (await tenants.createTenant('acme')).writeKey ?? '';
  app = buildCollectorApp({
    logger: createLogger({ level: 'silent' }),
    maxRequestBytes: 500 * 1024,
    trustProxy: false,
    ingest: {
      tenantByWriteKey: (k) => tenants.tenantByWriteKey(k),
      pipeline,
      limits: { maxEventBytes: 32 * 1024, maxBatchEvents: 500, maxFutureMs: 60_000 },
    },
    admin: {
      adminToken: ADMIN,
      tenants,
      canAnonymize,
      analyst: { operatorQuery: async (sql) => [{ echoed: sql }], tenantQuery: async (tenantId, sql) => [{ tenantId, echoed: sql }] },
    },
  });
  await app.ready();
});

afterEach(async () => {
  await app.close();
  canAnonymize = true;
});

describe('ingestion', () => {
  it('accepts a Segment batch and stamps the tenant from the write key', async () => {
    const res = await post('/v1/batch', {
      batch: [
        { type: 'track', event: 'Signed Up', userId: 'u1', messageId: 'm1', tenant_id: 'evil' },
        { type: 'page', anonymousId: 'a1', name: 'Home', messageId: 'm2' },
      ],
      sentAt: new Date().toISOString(),
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ success: true, accepted: 2 });
    expect(pipeline.events.map((e) => [e.event_id, e.tenant_id, e.type])).toEqual([
      ['m1', 'acme', 'track'],
      ['m2', 'acme', 'page'],
    ]);
  });

  it.each([
    ['/v1/track', { event: 'Clicked', userId: 'u' }, 'track'],
    ['/v1/identify', { userId: 'u', traits: { email: 'a@b.io' } }, 'identify'],
    ['/v1/page', { anonymousId: 'a', name: 'Home' }, 'page'],
    ['/v1/screen', { anonymousId: 'a', name: 'Main' }, 'screen'],
    ['/v1/group', { userId: 'u', groupId: 'g' }, 'group'],
    ['/v1/alias', { userId: 'u', previousId: 'a' }, 'alias'],
  ])('%s takes a single call of type %s', async (url, body, type) => {
    const res = await post(url, { ...body, type: 'track' });
    expect(res.statusCode).toBe(200);
    expect(pipeline.events[0]?.type).toBe(type);
  });

  it('accepts the write key in the body', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/track',
      headers: { 'content-type': 'application/json' },
      payload: { writeKey, event: 'E', userId: 'u' },
    });
    expect(res.statusCode).toBe(200);
  });

  it.each([
    ['a wrong write key', basic('tl_wrongwrongwrongwrongwrong'), 'unknown write key'],
    ['no write key', '', 'missing write key'],
  ])('answers 401 for %s', async (_name, authorization, message) => {
    const res = await post('/v1/batch', { batch: [{ type: 'track', event: 'E', userId: 'u' }] }, { authorization });
    expect(res.statusCode).toBe(401);
    expect(res.json().message).toContain(message);
    expect(pipeline.events).toHaveLength(0);
  });

  it('answers 400 with a message for invalid JSON', async () => {
    const res = await post('/v1/batch', '{"batch": [');
    expect(res.statusCode).toBe(400);
    expect(res.json().message).toMatch(/^invalid JSON/);
  });

  it('answers 413 for a body over the limit', async () => {
    const big = { batch: [{ type: 'track', event: 'E', userId: 'u', properties: { pad: 'x'.repeat(600 * 1024) } }] };
    const res = await post('/v1/batch', big);
    expect(res.statusCode).toBe(413);
    expect(pipeline.events).toHaveLength(0);
  });

  it('rejects an oversized event by itself and accepts its siblings', async () => {
    const res = await post('/v1/batch', {
      batch: [
        { type: 'track', event: 'ok-1', userId: 'u', messageId: 'ok-1' },
        { type: 'track', event: 'big', userId: 'u', messageId: 'big', properties: padded(5, 7000) },
        { type: 'track', userId: 'u', messageId: 'no-name' },
        { type: 'track', event: 'ok-2', userId: 'u', messageId: 'ok-2' },
      ],
    });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({ success: true, accepted: 2, rejected: 2 });
    expect(body.errors).toEqual([
      { index: 1, messageId: 'big', error: expect.stringContaining('the limit is 32768') },
      { index: 2, messageId: 'no-name', error: expect.stringContaining('event name') },
    ]);
    expect(pipeline.events.map((e) => e.event_id)).toEqual(['ok-1', 'ok-2']);
  });

  it('reports a too deeply nested event by itself instead of failing the request', async () => {
    const deep = `${'{"d":'.repeat(50_000)}"x"${'}'.repeat(50_000)}`;
    const body = `{"batch":[{"type":"track","event":"ok","userId":"u","messageId":"fine"},{"type":"track","event":"deep","userId":"u","messageId":"deep","properties":${deep}}]}`;
    const res = await post('/v1/batch', body);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ accepted: 1, rejected: 1, errors: [{ index: 1, messageId: 'deep' }] });
    expect(pipeline.events.map((e) => e.event_id)).toEqual(['fine']);
  });

  it('answers 400 with every error when no event is valid', async () => {
    const res = await post('/v1/batch', { batch: [{ type: 'nope' }, { type: 'track', userId: 'u' }] });
    expect(res.statusCode).toBe(400);
    expect(res.json().errors).toHaveLength(2);
  });

  it('refuses more than 500 events per batch', async () => {
    const batch = Array.from({ length: 501 }, (_, i) => ({ type: 'track', event: 'E', userId: 'u', messageId: `m${i}` }));
    const res = await post('/v1/batch', { batch });
    expect(res.statusCode).toBe(400);
    expect(res.json().message).toContain('limit is 500');
  });

  it('accepts a gzip body', async () => {
    const res = await post('/v1/batch', gzipSync(JSON.stringify({ batch: [{ type: 'track', event: 'Z', userId: 'u' }] })), {
      'content-encoding': 'gzip',
    });
    expect(res.statusCode).toBe(200);
    expect(pipeline.events[0]?.name).toBe('Z');
  });

  it('refuses a gzip bomb without inflating it', async () => {
    const bomb = gzipSync(Buffer.alloc(50 * 1024 * 1024, 0x20));
    expect(bomb.length).toBeLessThan(500 * 1024);
    const res = await post('/v1/batch', bomb, { 'content-encoding': 'gzip' });
    expect(res.statusCode).toBe(413);
    expect(res.json().message).toContain('decompressed body exceeds');
  });

  it('answers 503 when the pipeline asks for a retry', async () => {
    pipeline.retryIds.add('r1');
    const res = await post('/v1/batch', { batch: [{ type: 'track', event: 'E', userId: 'u', messageId: 'r1' }] });
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('1');
  });

  it('answers 503 and readyz not ready while the pipeline is not ready', async () => {
    pipeline.isReady = false;
    expect((await app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(503);
    expect((await post('/v1/track', { event: 'E', userId: 'u' })).statusCode).toBe(503);
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
  });
});

describe('admin API', () => {
  const admin = (method: 'GET' | 'PUT' | 'PATCH' | 'POST', url: string, payload?: unknown, token = ADMIN) =>
    app.inject({ method, url, headers: { authorization: `Bearer ${token}` }, ...(payload ? { payload } : {}) });

  it('requires the bearer token', async () => {
    expect((await admin('PUT', '/v1/admin/tenants/new', undefined, 'wrong')).statusCode).toBe(401);
    expect((await app.inject({ method: 'PUT', url: '/v1/admin/tenants/new' })).statusCode).toBe(401);
  });

  it('creates a tenant whose write key then ingests, idempotently', async () => {
    const first = await admin('PUT', '/v1/admin/tenants/globex');
    expect(first.statusCode).toBe(201);
    const { writeKey: key } = first.json();
    expect(key).toMatch(/^tl_/);
    const again = await admin('PUT', '/v1/admin/tenants/globex');
    expect(again.statusCode).toBe(200);
    // NOTE: a secret is shown once: an existing tenant comes back without a key
    expect(again.json()).toEqual({ tenantId: 'globex', created: false });
    const res = await post('/v1/track', { event: 'E', userId: 'u' }, { authorization: basic(key) });
    expect(res.statusCode).toBe(200);
    expect(pipeline.events[0]?.tenant_id).toBe('globex');
  });

  it('routes a path parameter of 128 characters URL-encoded (384 in the URL), not 414 as the router default would', async () => {
    const id = '%41'.repeat(128);
    const res = await admin('GET', `/v1/admin/tenants/${id}/flags`);
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: 'bad_request' });
  });

  it('rejects a bad tenant id', async () => {
    expect((await admin('PUT', '/v1/admin/tenants/Bad%20Id')).statusCode).toBe(400);
  });

  it('switching anonymizeIdentity on stamps anonymizeSince with server time', async () => {
    const before = Date.now();
    const res = await admin('PATCH', '/v1/admin/tenants/acme/flags', { anonymizeIdentity: true, ipPolicy: 'mask' });
    expect(res.statusCode).toBe(200);
    const flags = res.json();
    expect(flags).toMatchObject({ tenantId: 'acme', anonymizeIdentity: true, ipPolicy: 'mask' });
    expect(flags.anonymizeSince).toBeGreaterThanOrEqual(before);
    expect((await admin('GET', '/v1/admin/tenants/acme/flags')).json()).toEqual(flags);
  });

  it.each([
    [{ ipPolicy: 'everything' }],
    [{ anonymizeSince: 1 }],
    [{ resolveIp: 'false' }],
  ])('rejects an invalid flags patch %j', async (patch) => {
    expect((await admin('PATCH', '/v1/admin/tenants/acme/flags', patch)).statusCode).toBe(400);
  });

  it('404s flags of an unknown tenant', async () => {
    expect((await admin('GET', '/v1/admin/tenants/nobody/flags')).statusCode).toBe(404);
    expect((await admin('PATCH', '/v1/admin/tenants/nobody/flags', { resolveIp: false })).statusCode).toBe(404);
  });

  it('passes SQL to the read-only query function', async () => {
    const res = await admin('POST', '/v1/admin/query', { sql: 'SELECT 1' });
    expect(res.json()).toEqual({ rows: [{ echoed: 'SELECT 1' }] });
    expect((await admin('POST', '/v1/admin/query', { sql: '' })).statusCode).toBe(400);
  });
});

describe('admin API without a master key', () => {
  beforeEach(async () => {
    await app.close();
    canAnonymize = false;
    app = buildCollectorApp({
      logger: createLogger({ level: 'silent' }),
      maxRequestBytes: 500 * 1024,
      trustProxy: false,
      ingest: { tenantByWriteKey: (k) => tenants.tenantByWriteKey(k), pipeline, limits: { maxEventBytes: 32768, maxBatchEvents: 500, maxFutureMs: 60_000 } },
      admin: { adminToken: ADMIN, tenants, canAnonymize, analyst: { operatorQuery: async () => [], tenantQuery: async () => [] } },
    });
    await app.ready();
  });

  it('refuses to switch anonymization on (409), explaining why', async () => {
    const res = await app.inject({
      method: 'PATCH',
      url: '/v1/admin/tenants/acme/flags',
      headers: { authorization: `Bearer ${ADMIN}` },
      payload: { anonymizeIdentity: true },
    });
    expect(res.statusCode).toBe(409);
    expect(res.json().message).toContain('TRACKLANE_MASTER_KEY');
    expect(tenants.get('acme')?.anonymizeIdentity).toBe(false);
  });
});
