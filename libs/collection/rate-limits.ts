// Per-tenant rate limits (issue 16 item 7): a token bucket per tenant counting events, refilled
// at the tenant's `rateLimitPerSecond` and holding `rateLimitBurst ?? rateLimitPerSecond` events.
// A request-level admission (controls.ts): a request is admitted or refused (429 + Retry-After)
// as a whole, before its events are validated. Embedded mode keeps the buckets in process; the
// fleet keeps them in Redis so every collector replica draws from one bucket per tenant. While
// Redis cannot be read the fleet admits and counts that: a limit protects capacity, and turning
// a Redis outage into an ingestion outage would lose more than it protects.
// NOTE: not rate-limiter-flexible: its Redis limiter is a fixed window (a tenant gets twice its
// limit around a window's edge, and the wait it reports is the window's end, not the time until
// enough tokens are back); the bucket here is one short script with the in-process arithmetic.
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { Counter, type Registry } from 'prom-client';
import { safeErrorFields } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { TenantFlags } from '../tenants/flags.js';
import type { Admission, RequestAdmission } from './controls.js';

export interface BucketLimit {
  /** tokens (events) added per second */
  ratePerSecond: number;
  /** most tokens the bucket holds */
  burst: number;
}

/** A tenant's bucket; null when the tenant has no limit. */
export function tenantLimit(flags: Pick<TenantFlags, 'rateLimitPerSecond' | 'rateLimitBurst'>): BucketLimit | null {
  if (flags.rateLimitPerSecond === null) return null;
  return { ratePerSecond: flags.rateLimitPerSecond, burst: flags.rateLimitBurst ?? flags.rateLimitPerSecond };
}

/** A bucket's state: tokens held at time `at` (ms). A bucket never seen is full. */
export interface BucketState {
  tokens: number;
  at: number;
}

export type Take = { ok: true; state: BucketState } | { ok: false; waitMs: number };

/**
 * Takes `events` tokens from a bucket at `now`. The bucket refills continuously since `at`,
 * up to `burst`. A take is allowed when the bucket holds min(events, burst) tokens and then
 * takes all `events`: a batch larger than the burst is admitted from a full bucket and leaves it
 * in debt (negative), so the average rate still holds and such a batch is not refused for ever.
 * Refused takes leave the state as it was; `waitMs` is the time until enough tokens are there.
 * NOTE: the Lua script below is the same arithmetic; a clock that went back refills nothing.
 */
export function takeTokens(state: BucketState | undefined, limit: BucketLimit, events: number, now: number): Take {
  const at = state ? Math.max(state.at, now) : now;
  const refilled = state ? state.tokens + (Math.max(0, now - state.at) * limit.ratePerSecond) / 1000 : limit.burst;
  const tokens = Math.min(limit.burst, refilled);
  const need = Math.min(events, limit.burst);
  if (tokens < need) return { ok: false, waitMs: Math.ceil(((need - tokens) * 1000) / limit.ratePerSecond) };
  return { ok: true, state: { tokens: tokens - events, at } };
}

/** HTTP Retry-After is whole seconds: rounded up, at least 1 (0 would invite a busy loop). */
export function retryAfterSeconds(waitMs: number): number {
  return Math.max(1, Math.ceil(waitMs / 1000));
}

export interface RateLimitCounters {
  limited(events: number): void;
  /** a request admitted without a check: the shared buckets could not be read */
  unavailable(): void;
}

/** The limiter's Prometheus counters (no tenant label: tenants are unbounded; the log names them). */
export function rateLimitCounters(registry: Registry): RateLimitCounters {
  const registers = [registry];
  const requests = new Counter({ name: 'tracklane_rate_limited_requests_total', help: 'requests refused with 429: the tenant was over its event rate limit', registers });
  const events = new Counter({ name: 'tracklane_rate_limited_events_total', help: 'events in requests refused with 429 (rate limit)', registers });
  const unavailable = new Counter({
    name: 'tracklane_rate_limit_unavailable_total',
    help: 'requests of rate-limited tenants admitted unchecked because the shared buckets (Redis) could not be read',
    registers,
  });
  return {
    limited(n) {
      requests.inc();
      events.inc(n);
    },
    unavailable: () => unavailable.inc(),
  };
}

export interface RateLimitOptions {
  counters?: RateLimitCounters;
  /** a tenant over its limit is logged at most once a minute (id only) */
  logger?: Logger;
}

/** Embedded mode: the buckets in process (one process takes all of a tenant's requests). */
export function createMemoryRateLimits(opts: RateLimitOptions = {}): RequestAdmission {
  // NOTE: one entry per limited tenant that sent something: bounded by the tenant registry
  const buckets = new Map<string, BucketState>();
  const note = limitedLog(opts.logger);
  return {
    admit(tenant, events, now): Admission {
      const limit = tenantLimit(tenant.flags);
      if (limit === null) {
        buckets.delete(tenant.tenantId);
        return { admitted: true };
      }
      const take = takeTokens(buckets.get(tenant.tenantId), limit, events, now);
      if (take.ok) {
        buckets.set(tenant.tenantId, take.state);
        return { admitted: true };
      }
      opts.counters?.limited(events);
      note(tenant.tenantId, now);
      return { admitted: false, retryAfterSeconds: retryAfterSeconds(take.waitMs) };
    },
  };
}

/**
 * KEYS[1] the bucket (a hash: tokens, at); ARGV rate per second, burst, events. Returns
 * {1, 0} when admitted, {0, ms to wait} when not. Time is Redis's own (TIME), so collectors
 * with skewed clocks still share one bucket consistently.
 * NOTE: the key expires once the bucket would be full again: an idle tenant costs no memory.
 */
export const TAKE_SCRIPT = `
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local s = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(s[1])
local at = tonumber(s[2])
if tokens == nil or at == nil then
  tokens = burst
  at = now
elseif now > at then
  tokens = tokens + (now - at) * rate / 1000
  at = now
end
if tokens > burst then tokens = burst end
local need = math.min(n, burst)
if tokens < need then
  return {0, math.ceil((need - tokens) * 1000 / rate)}
end
tokens = tokens - n
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(at))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) * 1000 / rate) + 1000)
return {1, 0}
`;
const TAKE_SHA = createHash('sha1').update(TAKE_SCRIPT).digest('hex');

/** The bucket key of a tenant under TRACKLANE_REDIS_PREFIX (the collector's ACL grants `<prefix>ratelimit:*`). */
export const rateLimitKey = (prefix: string, tenantId: string): string => `${prefix}ratelimit:${tenantId}`;

export interface RedisRateLimitOptions extends RateLimitOptions {
  /**
   * A client of its own that fails fast: no offline queue and a short command timeout, so a
   * Redis outage costs a request milliseconds, not a hang (collector-service.ts opens it).
   */
  redis: Redis;
  /** TRACKLANE_REDIS_PREFIX */
  prefix: string;
}

/** The fleet: one bucket per tenant in Redis, shared by every collector replica. */
export function createRedisRateLimits(opts: RedisRateLimitOptions): RequestAdmission {
  const note = limitedLog(opts.logger);
  let lastWarned = -Infinity;
  return {
    async admit(tenant, events, now): Promise<Admission> {
      const limit = tenantLimit(tenant.flags);
      if (limit === null) return { admitted: true };
      const key = rateLimitKey(opts.prefix, tenant.tenantId);
      const args = [String(limit.ratePerSecond), String(limit.burst), String(events)];
      let reply: unknown;
      try {
        reply = await runTake(opts.redis, key, args);
      } catch (err) {
        opts.counters?.unavailable();
        if (now - lastWarned >= 30_000) {
          lastWarned = now;
          // NOTE: name and message only: an ioredis error keeps its command's arguments
          opts.logger?.warn({ ...safeErrorFields(err) }, 'rate limits cannot be read from Redis: requests are admitted unchecked (tracklane_rate_limit_unavailable_total)');
        }
        return { admitted: true };
      }
      const [ok, waitMs] = Array.isArray(reply) ? reply.map(Number) : [];
      if (ok === 1 || waitMs === undefined || !Number.isFinite(waitMs)) return { admitted: true };
      opts.counters?.limited(events);
      note(tenant.tenantId, now);
      return { admitted: false, retryAfterSeconds: retryAfterSeconds(waitMs) };
    },
  };
}

async function runTake(redis: Redis, key: string, args: string[]): Promise<unknown> {
  try {
    return await redis.evalsha(TAKE_SHA, 1, key, ...args);
  } catch (err) {
    if (!(err instanceof Error && err.message.startsWith('NOSCRIPT'))) throw err;
    return redis.eval(TAKE_SCRIPT, 1, key, ...args);
  }
}

/** Logs a limited tenant at most once a minute per tenant (its id only: not PII). */
function limitedLog(logger: Logger | undefined): (tenantId: string, now: number) => void {
  const last = new Map<string, number>();
  return (tenantId, now) => {
    if (!logger) return;
    const at = last.get(tenantId);
    if (at !== undefined && now - at < 60_000) return;
    last.set(tenantId, now);
    logger.info({ tenantId }, 'tenant over its event rate limit: requests answered 429 (logged once a minute)');
  };
}
