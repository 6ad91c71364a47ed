// The fleet's shared rate limit against the real Redis: two limiters on two connections (two
// collector replicas) draw from one bucket per tenant, Retry-After says when enough tokens are
// back, the bucket key expires once it would be full again, and a Redis that cannot be reached
// lets requests through and counts them.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { createRedisRateLimits, rateLimitCounters, rateLimitKey } from '../../libs/collection/rate-limits.js';
import { closeRedis, openRedis, redisConnectionOfUrl } from '../../libs/config/redis-connection.js';
import { DEFAULT_FLAGS, type TenantFlags } from '../../libs/tenants/flags.js';
import { EMPTY_KEYS } from '../../libs/tenants/tenant-keys.js';
import type { Tenant } from '../../libs/tenants/tenant-store.js';
import { freePort } from '../support/child-process.js';
import { serviceEndpoints } from '../support/services.js';

const prefix = `tl-rl-${randomBytes(4).toString('hex')}:`;
const clients: Redis[] = [];
const tenant = (flags: Partial<TenantFlags>): Tenant => ({ tenantId: `t${randomBytes(4).toString('hex')}`, createdAt: 0, flags: { ...DEFAULT_FLAGS, ...flags }, keys: EMPTY_KEYS });

/** As collector-service.ts opens it: fails fast, no offline queue. */
function limiterClient(url: string): Redis {
  const c = openRedis(redisConnectionOfUrl(url), 'rate-limits', { enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: 250 });
  c.on('error', () => undefined);
  clients.push(c);
  return c;
}

async function ready(c: Redis): Promise<void> {
  if (c.status !== 'ready') await new Promise<void>((resolve) => c.once('ready', () => resolve()));
}

afterAll(async () => {
  const admin = new Redis(serviceEndpoints().redisUrl);
  const keys = await admin.keys(`${prefix}*`);
  if (keys.length > 0) await admin.del(...keys);
  await admin.quit();
  await Promise.all(clients.map((c) => closeRedis(c)));
});

describe('shared rate limits in Redis', () => {
  it('two collectors share one bucket per tenant', async () => {
    const url = serviceEndpoints().redisUrl;
    const [a, b] = [limiterClient(url), limiterClient(url)];
    await Promise.all([ready(a), ready(b)]);
    const registry = new Registry();
    const counters = rateLimitCounters(registry);
    const one = createRedisRateLimits({ redis: a, prefix, counters });
    const two = createRedisRateLimits({ redis: b, prefix, counters });
    const t = tenant({ rateLimitPerSecond: 20, rateLimitBurst: 100 });
    const other = tenant({ rateLimitPerSecond: 20, rateLimitBurst: 100 });
    // 100 tokens: 60 through one collector, 40 through the other, then both refuse
    expect(await one.admit(t, 60, Date.now())).toEqual({ admitted: true });
    expect(await two.admit(t, 40, Date.now())).toEqual({ admitted: true });
    const refused = await two.admit(t, 40, Date.now());
    // 40 tokens at 20/s: 2 s (a few ms may have refilled since)
    expect(refused).toEqual({ admitted: false, retryAfterSeconds: 2 });
    expect(await one.admit(t, 1, Date.now())).toMatchObject({ admitted: false });
    // another tenant's bucket is its own
    expect(await one.admit(other, 100, Date.now())).toEqual({ admitted: true });
    const admin = a;
    const pttl = await admin.pttl(rateLimitKey(prefix, t.tenantId));
    // expires when full again (100 tokens at 20/s = 5 s) plus a second
    expect(pttl).toBeGreaterThan(4_000);
    expect(pttl).toBeLessThanOrEqual(6_000);
    const limited = (await registry.getMetricsAsJSON()).find((m) => m.name === 'tracklane_rate_limited_requests_total');
    expect(limited?.values[0]?.value).toBe(2);
  });

  it('refills at the rate: after the Retry-After the tenant gets in again', async () => {
    const c = limiterClient(serviceEndpoints().redisUrl);
    await ready(c);
    const limits = createRedisRateLimits({ redis: c, prefix });
    const t = tenant({ rateLimitPerSecond: 50 });
    expect(await limits.admit(t, 50, Date.now())).toEqual({ admitted: true });
    const refused = await limits.admit(t, 25, Date.now());
    expect(refused).toEqual({ admitted: false, retryAfterSeconds: 1 });
    await new Promise((r) => setTimeout(r, 550));
    expect(await limits.admit(t, 25, Date.now())).toEqual({ admitted: true });
  });

  it('a Redis that cannot be reached admits the requests and counts them', async () => {
    // NOTE: a port nobody listens on: the client never gets ready
    const c = limiterClient(`redis://127.0.0.1:${await freePort()}`);
    const registry = new Registry();
    const limits = createRedisRateLimits({ redis: c, prefix, counters: rateLimitCounters(registry) });
    const t = tenant({ rateLimitPerSecond: 1 });
    const started = Date.now();
    for (let i = 0; i < 5; i++) expect(await limits.admit(t, 500, Date.now())).toEqual({ admitted: true });
    expect(Date.now() - started).toBeLessThan(2_000);
    const unavailable = (await registry.getMetricsAsJSON()).find((m) => m.name === 'tracklane_rate_limit_unavailable_total');
    expect(unavailable?.values[0]?.value).toBe(5);
  });
});
