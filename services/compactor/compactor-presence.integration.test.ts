// Compactor presence against the machine's Redis: announced while a compactor runs, gone a
// TTL after the last one stops, unknown (null) when Redis does not answer.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../libs/core/logger.js';
import { announcePresence, compactorPresenceKey, presenceCheck } from './compactor-presence.js';

const redis = new Redis(process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379');
const logger = createLogger({ level: 'silent' });
afterAll(async () => {
  await redis.quit();
});
const key = () => compactorPresenceKey('tl-test:', `p${randomBytes(4).toString('hex')}.`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('compactor presence (Redis)', () => {
  it('is seen while a compactor refreshes it, and not once the TTL has passed after it stopped', async () => {
    const k = key();
    const seen = presenceCheck({ redis, key: k, cacheMs: 0 });
    expect(await seen()).toBe(false);
    const presence = announcePresence({ redis, key: k, ttlMs: 400, everyMs: 100, logger });
    await sleep(50);
    expect(await seen()).toBe(true);
    await sleep(600); // past one TTL: only the refreshes keep it
    expect(await seen()).toBe(true);
    await presence.stop();
    expect(await seen()).toBe(true); // a standby may still refresh it: it expires, it is not deleted
    await sleep(500);
    expect(await seen()).toBe(false);
  });

  it('caches an answer for cacheMs', async () => {
    const k = key();
    let t = 0;
    const seen = presenceCheck({ redis, key: k, cacheMs: 1_000, now: () => t });
    expect(await seen()).toBe(false);
    await redis.set(k, '1', 'PX', 5_000);
    t = 999;
    expect(await seen()).toBe(false);
    t = 1_000;
    expect(await seen()).toBe(true);
  });

  it('is unknown (null), not false, when Redis does not answer', async () => {
    const down = new Redis('redis://127.0.0.1:1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
    const seen = presenceCheck({ redis: down, key: key(), cacheMs: 0 });
    expect(await seen()).toBeNull();
    down.disconnect();
  });
});
