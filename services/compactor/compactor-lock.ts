// One compactor at a time (DESIGN.md §5): the overwrites topic's single partition already gives
// one consumer, but a round that outlasts a rebalance could leave the old owner still writing
// while the new one starts — both would refill the same lookup tables. A Redis lease with a
// fencing check before every step closes that gap.
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from '../../libs/core/logger.js';
import { safeErrorFields } from '../../libs/core/errors.js';
import { RoundAbortedError } from '../../libs/compactor/compactor-errors.js';

export class CompactorLockLostError extends RoundAbortedError {
  override readonly name = 'CompactorLockLostError';
}

export interface CompactorLock {
  /** waits until this process holds the lease (renewed in the background until release) */
  acquire(): Promise<void>;
  /** throws CompactorLockLostError when the lease was lost (another compactor may be writing) */
  assertHeld(): void;
  release(): Promise<void>;
}

// compare-and-set scripts: only the holder's token renews or deletes the lease
const RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";
const RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

export function createCompactorLock(opts: { redis: Redis; key: string; ttlMs?: number; pollMs?: number; logger: Logger }): CompactorLock {
  const ttlMs = opts.ttlMs ?? 30_000;
  const pollMs = opts.pollMs ?? 1_000;
  let token: string | null = null;
  let lost = false;
  let timer: NodeJS.Timeout | null = null;

  const renew = async (): Promise<'ok' | 'lost' | 'error'> => {
    if (token === null) return 'lost';
    try {
      return ((await opts.redis.eval(RENEW, 1, opts.key, token, String(ttlMs))) as number) === 1 ? 'ok' : 'lost';
    } catch (err) {
      opts.logger.warn({ ...safeErrorFields(err) }, 'compactor lease renewal failed');
      return 'error';
    }
  };

  return {
    async acquire() {
      const mine = randomUUID();
      let waited = false;
      for (;;) {
        if ((await opts.redis.set(opts.key, mine, 'PX', ttlMs, 'NX')) === 'OK') break;
        if (!waited) opts.logger.info('another compactor holds the lease; waiting');
        waited = true;
        await new Promise((r) => setTimeout(r, pollMs));
      }
      token = mine;
      lost = false;
      let renewedAt = Date.now();
      timer = setInterval(() => {
        void renew().then((r) => {
          if (r === 'ok') renewedAt = Date.now();
          // NOTE: Redis unreachable: the lease may have expired once a TTL passed unrenewed
          else if (r === 'lost' || Date.now() - renewedAt > ttlMs) lost = true;
        });
      }, Math.max(100, Math.floor(ttlMs / 3)));
    },
    assertHeld() {
      if (token === null || lost) throw new CompactorLockLostError('the compactor lease was lost: another compactor may be running');
    },
    async release() {
      if (timer) clearInterval(timer);
      timer = null;
      const t = token;
      token = null;
      if (t !== null) await opts.redis.eval(RELEASE, 1, opts.key, t).catch(() => undefined);
    },
  };
}
