// Whether a compactor runs in the fleet: every compactor process (active or standing by)
// refreshes a Redis key with a TTL; the collector reads it to tell a caller that an accepted
// overwrite request will wait in tracklane.overwrites.v1 until a compactor runs.
import type { Redis } from 'ioredis';
import { safeErrorFields } from '../../libs/core/errors.js';
import type { Logger } from '../../libs/core/logger.js';

export const compactorPresenceKey = (redisPrefix: string, topicPrefix: string): string => `${redisPrefix}compactor-seen:${topicPrefix}`;

/**
 * Refreshes the key every `everyMs` (TTL `ttlMs`) until stopped. stop() leaves the key to
 * expire: another compactor may be standing by, and refreshes it within `everyMs`.
 */
export function announcePresence(opts: { redis: Redis; key: string; ttlMs?: number; everyMs?: number; logger: Logger }): { stop(): Promise<void> } {
  const ttlMs = opts.ttlMs ?? 30_000;
  const everyMs = opts.everyMs ?? 10_000;
  const refresh = (): void => {
    opts.redis.set(opts.key, String(Date.now()), 'PX', ttlMs).catch((err: unknown) => {
      opts.logger.warn({ ...safeErrorFields(err) }, 'could not announce the compactor (the collector may warn that none runs)');
    });
  };
  refresh();
  const timer = setInterval(refresh, everyMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
    },
  };
}

/**
 * true: a compactor refreshed the key within its TTL; false: none did; null: Redis did not
 * answer (unknown — callers say nothing rather than guess). Cached for `cacheMs`.
 */
export function presenceCheck(opts: { redis: Redis; key: string; cacheMs?: number; now?: () => number }): () => Promise<boolean | null> {
  const cacheMs = opts.cacheMs ?? 5_000;
  const now = opts.now ?? Date.now;
  let cached: { at: number; seen: boolean } | null = null;
  return async () => {
    if (cached && now() - cached.at < cacheMs) return cached.seen;
    try {
      const seen = (await opts.redis.exists(opts.key)) === 1;
      cached = { at: now(), seen };
      return seen;
    } catch {
      return null;
    }
  };
}

export const NO_COMPACTOR_WARNING =
  'no compactor has been seen in the last 30 s: the request is queued (tracklane.overwrites.v1) and applies when one runs';
