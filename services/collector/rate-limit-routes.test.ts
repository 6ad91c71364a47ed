// The ingestion routes with the in-process rate limiter (as embedded mode wires it): a tenant
// over its limit gets 429 with Retry-After and nothing reaches the pipeline; another tenant is
// untouched; the client retrying after Retry-After gets in; a PATCH of the limit applies to the
// next request.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createMemoryRateLimits } from '../../libs/collection/rate-limits.js';
import { createLogger } from '../../libs/core/logger.js';
import type { RawEvent } from '../../libs/events/envelope.js';
import type { IngestPipeline } from '../../libs/pipeline/ingest.js';
import { createMemoryTenantStore, type TenantStore } from '../../libs/tenants/tenant-store.js';
import { buildCollectorApp } from './http-app.js';

let app: FastifyInstance;
let tenants: TenantStore;
let clock = 1_000_000;
const ingested: RawEvent[] = [];
const keys: Record<string, string> = {};

const pipeline: IngestPipeline = {
  ready: () => true,
  async ingest(events) {
    ingested.push(...events);
    return { accepted: events.length, dropped: [], deadLettered: [], retry: [] };
  },
};

const batch = (tenant: string, n: number) =>
  app.inject({
    method: 'POST',
    url: '/v1/batch',
    headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${keys[tenant]}:`).toString('base64')}` },
    payload: JSON.stringify({ batch: Array.from({ length: n }, (_, i) => ({ type: 'track', event: 'e', userId: `u${i}` })) }),
  });

beforeEach(async () => {
  ingested.length = 0;
  tenants = createMemoryTenantStore();
  for (const t of ['limited', 'free']) keys[t] = (await tenants.createTenant(t)).writeKey ?? '';
  await tenants.patchFlags('limited', { rateLimitPerSecond: 10, rateLimitBurst: 20 }, clock);
  app = buildCollectorApp({
    logger: createLogger({ level: 'silent' }),
    maxRequestBytes: 500 * 1024,
    trustProxy: false,
    ingest: {
      tenantByWriteKey: (k) => tenants.tenantByWriteKey(k),
      pipeline,
      limits: { maxEventBytes: 32 * 1024, maxBatchEvents: 500, maxFutureMs: 60_000 },
      collection: { admission: createMemoryRateLimits(), controls: [] },
      now: () => clock,
    },
    admin: { adminToken: 'admin-token-0123456789', tenants, canAnonymize: true, analyst: { operatorQuery: async () => [], tenantQuery: async () => [] } },
  });
  await app.ready();
});

afterEach(() => app.close());

describe('rate limits on the ingestion routes', () => {
  it('answers 429 with Retry-After to a tenant over its limit, as a whole request, and lets it in again once the tokens are back', async () => {
    expect((await batch('limited', 15)).statusCode).toBe(200);
    const refused = await batch('limited', 10);
    expect(refused.statusCode).toBe(429);
    // 5 tokens left, 10 needed at 10/s: half a second, rounded up
    expect(refused.headers['retry-after']).toBe('1');
    expect(refused.json()).toMatchObject({ success: false, error: 'rate_limited' });
    expect(ingested).toHaveLength(15);
    // the other tenant has no limit
    for (let i = 0; i < 5; i++) expect((await batch('free', 100)).statusCode).toBe(200);
    clock += 1_000;
    expect((await batch('limited', 10)).statusCode).toBe(200);
    expect(ingested.filter((e) => e.tenant_id === 'limited')).toHaveLength(25);
  });

  it('a limit change applies to the next request', async () => {
    expect((await batch('limited', 20)).statusCode).toBe(200);
    expect((await batch('limited', 20)).statusCode).toBe(429);
    await tenants.patchFlags('limited', { rateLimitPerSecond: null }, clock);
    expect((await batch('limited', 20)).statusCode).toBe(200);
  });
});
