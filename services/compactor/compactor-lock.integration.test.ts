// The compactor lease against the machine's Redis: one holder at a time, a lost lease is
// noticed, and release lets the next one in.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../libs/core/logger.js';
import { CompactorLockLostError, createCompactorLock } from './compactor-lock.js';

const redis = new Redis(process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379');
const logger = createLogger({ level: 'silent' });
afterAll(async () => {
  await redis.quit();
});
const key = () => `tl-test:compactor-lease:${randomBytes(4).toString('hex')}`;

describe('compactor lease (Redis)', () => {
  it('admits one holder at a time; the second gets in after the first releases', async () => {
    const k = key();
    const a = createCompactorLock({ redis, key: k, ttlMs: 3_000, pollMs: 50, logger });
    const b = createCompactorLock({ redis, key: k, ttlMs: 3_000, pollMs: 50, logger });
    await a.acquire();
    let bHolds = false;
    const bAcquired = b.acquire().then(() => (bHolds = true));
    await new Promise((r) => setTimeout(r, 300));
    expect(bHolds).toBe(false);
    a.assertHeld();
    await a.release();
    await bAcquired;
    expect(bHolds).toBe(true);
    expect(() => a.assertHeld()).toThrow(CompactorLockLostError);
    await b.release();
    expect(await redis.exists(k)).toBe(0);
  });

  it('notices a lease taken over (expired and acquired by another) at the next renewal', async () => {
    const k = key();
    const a = createCompactorLock({ redis, key: k, ttlMs: 600, pollMs: 50, logger });
    await a.acquire();
    await redis.set(k, 'someone-else'); // as if it had expired and another compactor took it
    await new Promise((r) => setTimeout(r, 400));
    expect(() => a.assertHeld()).toThrow(CompactorLockLostError);
    await a.release();
    expect(await redis.get(k)).toBe('someone-else'); // release never deletes another's lease
    await redis.del(k);
  });
});
