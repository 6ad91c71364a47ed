// CORS: the ingestion routes answer preflights and carry Access-Control-Allow-Origin on every
// answer (errors included); the admin API carries none.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createLogger } from '../../libs/core/logger.js';
import { createMemoryTenantStore } from '../../libs/tenants/tenant-store.js';
import { CORS_MAX_AGE_SECONDS } from './cors.js';
import { buildCollectorApp } from './http-app.js';

const ADMIN = 'admin-token-0123456789';
const ORIGIN = 'https://shop.example.com';
let app: FastifyInstance;
let writeKey: string;

beforeAll(async () => {
  const tenants = createMemoryTenantStore();
  writeKey = (await tenants.createTenant('acme')).writeKey ?? '';
  app = buildCollectorApp({
    logger: createLogger({ level: 'silent' }),
    maxRequestBytes: 500 * 1024,
    trustProxy: false,
    ingest: {
      tenantByWriteKey: (k) => tenants.tenantByWriteKey(k),
      pipeline: { ready: () => true, ingest: async (events) => ({ accepted: events.length, dropped: [], deadLettered: [], retry: [] }) },
      limits: { maxEventBytes: 32 * 1024, maxBatchEvents: 500, maxFutureMs: 60_000 },
    },
    admin: { adminToken: ADMIN, tenants, canAnonymize: true, analyst: { operatorQuery: async () => [], tenantQuery: async () => [] } },
  });
  await app.ready();
});

afterAll(() => app.close());

describe('ingestion CORS', () => {
  it.each(['/v1/batch', '/v1/track', '/v1/identify', '/v1/page', '/v1/screen', '/v1/group', '/v1/alias'])('preflight of %s', async (url) => {
    const res = await app.inject({
      method: 'OPTIONS',
      url,
      headers: { origin: ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,authorization' },
    });
    expect(res.statusCode).toBe(204);
    expect(res.headers['access-control-allow-origin']).toBe('*');
    expect(res.headers['access-control-allow-methods']).toContain('POST');
    expect(res.headers['access-control-allow-headers']).toMatch(/content-type.*authorization/);
    expect(res.headers['access-control-max-age']).toBe(String(CORS_MAX_AGE_SECONDS));
  });

  it('a text/plain beacon body with the write key inside is accepted, with the header', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/batch',
      headers: { origin: ORIGIN, 'content-type': 'text/plain;charset=UTF-8' },
      payload: JSON.stringify({ writeKey, batch: [{ type: 'page', anonymousId: 'a1' }] }),
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers['access-control-allow-origin']).toBe('*');
  });

  it('error answers carry the header too (the tag reads their status)', async () => {
    const unauthorized = await app.inject({ method: 'POST', url: '/v1/batch', headers: { origin: ORIGIN, 'content-type': 'text/plain' }, payload: '{"batch":[]}' });
    expect(unauthorized.statusCode).toBe(401);
    expect(unauthorized.headers['access-control-allow-origin']).toBe('*');
    const badJson = await app.inject({ method: 'POST', url: '/v1/batch', headers: { origin: ORIGIN, 'content-type': 'text/plain' }, payload: '{' });
    expect(badJson.statusCode).toBe(400);
    expect(badJson.headers['access-control-allow-origin']).toBe('*');
  });
});

describe('admin API', () => {
  it('has no CORS headers and no preflight', async () => {
    const get = await app.inject({ method: 'GET', url: '/v1/admin/tenants/acme/flags', headers: { origin: ORIGIN, authorization: `Bearer ${ADMIN}` } });
    expect(get.statusCode).toBe(200);
    expect(get.headers['access-control-allow-origin']).toBeUndefined();
    const preflight = await app.inject({
      method: 'OPTIONS',
      url: '/v1/admin/query',
      headers: { origin: ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization' },
    });
    expect(preflight.headers['access-control-allow-origin']).toBeUndefined();
    expect(preflight.statusCode).toBe(404);
  });

  it('health routes have none either', async () => {
    const res = await app.inject({ method: 'GET', url: '/healthz', headers: { origin: ORIGIN } });
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
  });
});
