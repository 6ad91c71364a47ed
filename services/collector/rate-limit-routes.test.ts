// The ingestion routes with the in-process rate limiter (as embedded mode wires it): a tenant
// over its limit gets 429 with Retry-After and nothing reaches the pipeline; another tenant is
// untouched; the client retrying after Retry-After gets in; a PATCH of the limit applies to the
// next request.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createMemoryRateLimits } from '../../libs/collection/rate-limits.js';
import type { RawEvent } from '../../libs/events/envelope.js';
import { createMemoryTenantStore, type TenantStore } from '../../libs/tenants/tenant-store.js';
import { ingestApp, type IngestApp } from '../../test/support/ingest-app.js';

let app: FastifyInstance;
let tenants: TenantStore;
let clock = 1_000_000;
let ingested: RawEvent[];
let send: IngestApp['batch'];
const keys: Record<string, string> = {};

const batch = (tenant: string, n: number) => send(keys[tenant] ?? '', Array.from({ length: n }, (_, i) => ({ type: 'track', event: 'e', userId: `u${i}` })));

beforeEach(async () => {
  tenants = createMemoryTenantStore();
  for (const t of ['limited', 'free']) keys[t] = (await tenants.createTenant(t)).writeKey ?? '';
  await tenants.patchFlags('limited', { rateLimitPerSecond: 10, rateLimitBurst: 20 }, clock);
  ({ app, ingested, batch: send } = await ingestApp({ tenants, collection: { admission: createMemoryRateLimits(), controls: [] }, now: () => clock }));
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
