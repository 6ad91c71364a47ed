// GET /tag.js (caching, ETag, gzip) and the opt-in test page, on the collector app.
import { gunzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createLogger } from '../../libs/core/logger.js';
import type { TagBundle } from '../../libs/tag/build-tag.js';
import { createMemoryTenantStore } from '../../libs/tenants/tenant-store.js';
import { buildCollectorApp } from './http-app.js';
import { TAG_CACHE_CONTROL, TAG_IMMUTABLE_CACHE_CONTROL, type TagRouteOptions } from './tag-routes.js';

const FAKE: TagBundle = { code: Buffer.from('(()=>{})();'), gzip: Buffer.from([]), hash: 'abc123', etag: 'W/"abc123"' };
FAKE.gzip = (await import('node:zlib')).gzipSync(FAKE.code);

let app: FastifyInstance | undefined;

async function appWith(tag?: TagRouteOptions): Promise<FastifyInstance> {
  app = buildCollectorApp({
    logger: createLogger({ level: 'silent' }),
    maxRequestBytes: 500 * 1024,
    trustProxy: false,
    ingest: {
      tenantByWriteKey: () => undefined,
      pipeline: { ready: () => true, ingest: async () => ({ accepted: 0, dropped: [], deadLettered: [], retry: [] }) },
      limits: { maxEventBytes: 32 * 1024, maxBatchEvents: 500, maxFutureMs: 60_000 },
    },
    admin: { adminToken: 'admin-token-0123456789', tenants: createMemoryTenantStore(), canAnonymize: true, analyst: { operatorQuery: async () => [], tenantQuery: async () => [] } },
    ...(tag ? { tag } : {}),
  });
  await app.ready();
  return app;
}

afterEach(async () => {
  await app?.close();
  app = undefined;
});

describe('GET /tag.js', () => {
  it('serves the bundle with caching headers and an ETag', async () => {
    const a = await appWith({ bundle: async () => FAKE });
    const res = await a.inject({ method: 'GET', url: '/tag.js' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe('(()=>{})();');
    expect(res.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(res.headers['etag']).toBe('W/"abc123"');
    expect(res.headers['cache-control']).toBe(TAG_CACHE_CONTROL);
    expect(res.headers['vary']).toBe('accept-encoding');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['access-control-allow-origin']).toBe('*');
  });

  it('answers 304 to a matching If-None-Match (weak or strong form)', async () => {
    const a = await appWith({ bundle: async () => FAKE });
    for (const inm of ['W/"abc123"', '"abc123"', '"old", W/"abc123"', '*']) {
      const res = await a.inject({ method: 'GET', url: '/tag.js', headers: { 'if-none-match': inm } });
      expect(res.statusCode, inm).toBe(304);
      expect(res.body).toBe('');
      expect(res.headers['etag']).toBe('W/"abc123"');
    }
    const stale = await a.inject({ method: 'GET', url: '/tag.js', headers: { 'if-none-match': 'W/"old"' } });
    expect(stale.statusCode).toBe(200);
  });

  it('serves gzip when accepted', async () => {
    const a = await appWith({ bundle: async () => FAKE });
    const gz = await a.inject({ method: 'GET', url: '/tag.js', headers: { 'accept-encoding': 'br, gzip' } });
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(gz.rawPayload).toString()).toBe('(()=>{})();');
    const refused = await a.inject({ method: 'GET', url: '/tag.js', headers: { 'accept-encoding': 'gzip;q=0, identity' } });
    expect(refused.headers['content-encoding']).toBeUndefined();
  });

  it('caches the content-addressed URL for a year', async () => {
    const a = await appWith({ bundle: async () => FAKE });
    expect((await a.inject({ method: 'GET', url: '/tag.js?v=abc123' })).headers['cache-control']).toBe(TAG_IMMUTABLE_CACHE_CONTROL);
    expect((await a.inject({ method: 'GET', url: '/tag.js?v=other' })).headers['cache-control']).toBe(TAG_CACHE_CONTROL);
  });

  it('builds the real bundle by default (once)', async () => {
    const a = await appWith();
    const first = await a.inject({ method: 'GET', url: '/tag.js' });
    expect(first.statusCode).toBe(200);
    expect(first.body).toContain('tracklane');
    const second = await a.inject({ method: 'GET', url: '/tag.js' });
    expect(second.headers['etag']).toBe(first.headers['etag']);
  });
});

describe('test page', () => {
  it('is not served by default', async () => {
    const a = await appWith({ bundle: async () => FAKE });
    expect((await a.inject({ method: 'GET', url: '/tag/test-page' })).statusCode).toBe(404);
  });

  it('is served when enabled, also for its form post (fields unread) and below its path', async () => {
    const a = await appWith({ bundle: async () => FAKE, testPage: true });
    const get = await a.inject({ method: 'GET', url: '/tag/test-page?writeKey=k' });
    expect(get.statusCode).toBe(200);
    expect(get.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(get.headers['cache-control']).toBe('no-store');
    expect(get.body).toContain("tracklane('init'");
    const post = await a.inject({
      method: 'POST',
      url: '/tag/test-page?writeKey=k',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'notes=zq-typed-9931',
    });
    expect(post.statusCode).toBe(200);
    expect(post.body).not.toContain('zq-typed-9931');
    expect((await a.inject({ method: 'GET', url: '/tag/test-page/docs' })).statusCode).toBe(200);
  });
});
