// Token-bucket arithmetic, Retry-After, burst and the two limiters' behaviour (an injected clock;
// the Redis limiter with a stand-in client that fails). The shared bucket against a real Redis:
// rate-limits.integration.test.ts.
import type { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { DEFAULT_FLAGS, type TenantFlags } from '../tenants/flags.js';
import { EMPTY_KEYS } from '../tenants/tenant-keys.js';
import type { Tenant } from '../tenants/tenant-store.js';
import {
  createMemoryRateLimits,
  createRedisRateLimits,
  rateLimitCounters,
  retryAfterSeconds,
  takeTokens,
  tenantLimit,
  type BucketState,
} from './rate-limits.js';

const tenant = (flags: Partial<TenantFlags>, tenantId = 'acme'): Tenant => ({ tenantId, createdAt: 0, flags: { ...DEFAULT_FLAGS, ...flags }, keys: EMPTY_KEYS });

async function counterValue(registry: Registry, name: string): Promise<number> {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
  return (m?.values ?? []).reduce((s, v) => s + v.value, 0);
}

describe('tenantLimit', () => {
  it.each([
    { flags: { rateLimitPerSecond: null, rateLimitBurst: 50 }, limit: null },
    { flags: { rateLimitPerSecond: 10, rateLimitBurst: null }, limit: { ratePerSecond: 10, burst: 10 } },
    { flags: { rateLimitPerSecond: 10, rateLimitBurst: 40 }, limit: { ratePerSecond: 10, burst: 40 } },
  ])('$flags → $limit (burst defaults to one second of the rate)', ({ flags, limit }) => {
    expect(tenantLimit(flags)).toEqual(limit);
  });
});

describe('takeTokens', () => {
  const limit = { ratePerSecond: 10, burst: 20 };

  it('a new bucket is full: takes up to the burst at once, then refuses', () => {
    const first = takeTokens(undefined, limit, 20, 1_000);
    expect(first).toEqual({ ok: true, state: { tokens: 0, at: 1_000 } });
    expect(takeTokens(first.ok ? first.state : undefined, limit, 1, 1_000)).toEqual({ ok: false, waitMs: 100 });
  });

  it('refills at the rate, never above the burst', () => {
    const empty: BucketState = { tokens: 0, at: 0 };
    expect(takeTokens(empty, limit, 5, 499)).toEqual({ ok: false, waitMs: 1 });
    expect(takeTokens(empty, limit, 5, 500)).toEqual({ ok: true, state: { tokens: 0, at: 500 } });
    // an hour idle: full (20), not 36,000
    expect(takeTokens(empty, limit, 20, 3_600_000)).toEqual({ ok: true, state: { tokens: 0, at: 3_600_000 } });
    expect(takeTokens(empty, limit, 21, 3_600_000)).toEqual({ ok: true, state: { tokens: -1, at: 3_600_000 } });
  });

  it('waitMs is the time until the tokens the request needs are there', () => {
    const s: BucketState = { tokens: 2.5, at: 0 };
    expect(takeTokens(s, limit, 10, 0)).toEqual({ ok: false, waitMs: 750 });
    expect(takeTokens(s, limit, 10, 749)).toMatchObject({ ok: false, waitMs: 1 });
    expect(takeTokens(s, limit, 10, 750)).toMatchObject({ ok: true });
  });

  it('a batch larger than the burst is admitted from a full bucket and leaves a debt that holds the average rate', () => {
    const big = takeTokens(undefined, limit, 50, 0);
    expect(big).toEqual({ ok: true, state: { tokens: -30, at: 0 } });
    if (!big.ok) return;
    // the debt (30) and a full bucket's worth for the next batch of ≥ 20: 5 s at 10/s
    expect(takeTokens(big.state, limit, 50, 0)).toEqual({ ok: false, waitMs: 5_000 });
    expect(takeTokens(big.state, limit, 50, 5_000)).toMatchObject({ ok: true });
  });

  it('a clock that went back refills nothing and keeps the later time', () => {
    expect(takeTokens({ tokens: 1, at: 10_000 }, limit, 1, 5_000)).toEqual({ ok: true, state: { tokens: 0, at: 10_000 } });
    expect(takeTokens({ tokens: 0, at: 10_000 }, limit, 1, 5_000)).toEqual({ ok: false, waitMs: 100 });
  });

  it('a lower burst caps the tokens held (a limit change applies on the next request)', () => {
    const lowered = takeTokens({ tokens: 20, at: 0 }, { ratePerSecond: 10, burst: 5 }, 5, 0);
    expect(lowered).toEqual({ ok: true, state: { tokens: 0, at: 0 } });
    // a higher rate refills the same bucket faster from then on
    expect(takeTokens({ tokens: 0, at: 0 }, { ratePerSecond: 100, burst: 5 }, 1, 10)).toMatchObject({ ok: true });
  });
});

describe('retryAfterSeconds', () => {
  it.each([
    [0, 1],
    [1, 1],
    [1_000, 1],
    [1_001, 2],
    [4_500, 5],
  ])('%i ms → %i s', (ms, s) => expect(retryAfterSeconds(ms)).toBe(s));
});

describe('in-process limiter (embedded mode)', () => {
  it('refuses a tenant over its limit with Retry-After, counts it, and leaves other tenants alone', async () => {
    const registry = new Registry();
    const limits = createMemoryRateLimits({ counters: rateLimitCounters(registry) });
    const limited = tenant({ rateLimitPerSecond: 100, rateLimitBurst: 200 });
    const free = tenant({}, 'free');
    expect(limits.admit(limited, 150, 0)).toEqual({ admitted: true });
    expect(limits.admit(limited, 100, 0)).toEqual({ admitted: false, retryAfterSeconds: 1 });
    expect(limits.admit(limited, 100, 499)).toEqual({ admitted: false, retryAfterSeconds: 1 });
    expect(limits.admit(limited, 100, 500)).toEqual({ admitted: true });
    for (let i = 0; i < 100; i++) expect(limits.admit(free, 500, 0)).toEqual({ admitted: true });
    expect(await counterValue(registry, 'tracklane_rate_limited_requests_total')).toBe(2);
    expect(await counterValue(registry, 'tracklane_rate_limited_events_total')).toBe(200);
  });

  it('a refused request takes no tokens: a client retrying at Retry-After gets in', () => {
    const limits = createMemoryRateLimits();
    const t = tenant({ rateLimitPerSecond: 10 });
    expect(limits.admit(t, 10, 0)).toEqual({ admitted: true });
    for (let ms = 0; ms < 1_000; ms += 100) expect(limits.admit(t, 10, ms)).toMatchObject({ admitted: false });
    expect(limits.admit(t, 10, 1_000)).toEqual({ admitted: true });
  });

  it('keeps one bucket per tenant', () => {
    const limits = createMemoryRateLimits();
    const a = tenant({ rateLimitPerSecond: 10 }, 'a');
    const b = tenant({ rateLimitPerSecond: 10 }, 'b');
    expect(limits.admit(a, 10, 0)).toEqual({ admitted: true });
    expect(limits.admit(b, 10, 0)).toEqual({ admitted: true });
    expect(limits.admit(a, 1, 0)).toMatchObject({ admitted: false });
  });
});

describe('Redis limiter when Redis cannot be read', () => {
  const failing = (message: string) =>
    ({
      evalsha: async () => {
        throw new Error(message);
      },
      eval: async () => {
        throw new Error(message);
      },
    }) as unknown as Redis;

  it('admits the request and counts it; a tenant without a limit never asks Redis', async () => {
    const registry = new Registry();
    const lines: string[] = [];
    const { createLogger } = await import('../core/logger.js');
    const logger = createLogger({ level: 'warn', destination: { write: (s: string) => void lines.push(s) } });
    const limits = createRedisRateLimits({ redis: failing("Stream isn't writeable and enableOfflineQueue options is false"), prefix: 'tl:', counters: rateLimitCounters(registry), logger });
    expect(await limits.admit(tenant({ rateLimitPerSecond: 1 }), 500, 0)).toEqual({ admitted: true });
    expect(await limits.admit(tenant({ rateLimitPerSecond: 1 }), 500, 1)).toEqual({ admitted: true });
    expect(await limits.admit(tenant({}), 500, 2)).toEqual({ admitted: true });
    expect(await counterValue(registry, 'tracklane_rate_limit_unavailable_total')).toBe(2);
    expect(await counterValue(registry, 'tracklane_rate_limited_requests_total')).toBe(0);
    // logged once per 30 s, by error name only
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toContain('enableOfflineQueue');
  });

  it('falls back from EVALSHA to EVAL when Redis does not hold the script', async () => {
    const calls: string[] = [];
    const redis = {
      evalsha: async () => {
        calls.push('evalsha');
        throw new Error('NOSCRIPT No matching script. Please use EVAL.');
      },
      eval: async () => {
        calls.push('eval');
        return [0, 1500];
      },
    } as unknown as Redis;
    const limits = createRedisRateLimits({ redis, prefix: 'tl:' });
    expect(await limits.admit(tenant({ rateLimitPerSecond: 1 }), 5, 0)).toEqual({ admitted: false, retryAfterSeconds: 2 });
    expect(calls).toEqual(['evalsha', 'eval']);
  });
});
