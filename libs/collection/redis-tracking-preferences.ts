// The fleet's per-user tracking preferences: one Redis hash `<prefix>tracking-off`, field
// `<tenant>:<user hash>` → when tracking was switched off, and a change channel of the same name.
// Every collector holds the whole set in process (tracked() is sync on the hot path): loaded at
// start, kept current by the change messages (a change reaches every collector in milliseconds;
// the contract is ≤ 2 s) and reloaded after the subscriber reconnects (a message may have been
// missed) and every `reloadIntervalMs` as a backstop. A change is written and announced in one
// MULTI/EXEC, so every collector sees changes of one user in the order Redis applied them.
// Before the first load succeeded tracked() answers undefined (events are retried, never stored
// for a user who may have switched tracking off); after it, an outage serves the last view.
import type { Redis } from 'ioredis';
import { safeErrorFields } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { SubjectHash } from '../privacy/subject-hash.js';
import { TrackingOffSet, type TrackingPreferences } from './tracking-preferences.js';

export interface RedisTrackingPreferencesOptions {
  /** commands (left open by close()) */
  redis: Redis;
  /** a connection of its own for SUBSCRIBE (left open by close()) */
  subscriber: Redis;
  keyPrefix: string;
  hash: SubjectHash;
  logger: Logger;
  /** full reload period; default 5 min */
  reloadIntervalMs?: number;
}

type Change = [tenantId: string, userHash: string, offSince: number | null];

export function trackingOffKey(keyPrefix: string): string {
  return `${keyPrefix}tracking-off`;
}

export async function openRedisTrackingPreferences(opts: RedisTrackingPreferencesOptions): Promise<TrackingPreferences & { loaded(): boolean }> {
  const key = trackingOffKey(opts.keyPrefix);
  const state = new TrackingOffSet(opts.hash);
  let loaded = false;
  let closed = false;
  /** changes heard while a load runs, applied over its result */
  let heard: Change[] | null = null;
  let running: Promise<void> | null = null;

  const onMessage = (channel: string, message: string): void => {
    if (channel !== key) return;
    const change = parseChange(message);
    if (change === null) return opts.logger.warn({ channel }, 'ignoring a malformed tracking preference change');
    state.apply(...change);
    heard?.push(change);
  };
  opts.subscriber.on('message', onMessage);
  // NOTE: ioredis subscribes again after a reconnect; what was published meanwhile is lost: reload
  const onReady = (): void => void reload();
  opts.subscriber.on('ready', onReady);
  await opts.subscriber.subscribe(key);

  function reload(): Promise<void> {
    running ??= load().finally(() => (running = null));
    return running;
  }
  async function load(): Promise<void> {
    heard = [];
    try {
      const entries: Change[] = [];
      let cursor = '0';
      do {
        const [next, flat] = await opts.redis.hscan(key, cursor, 'COUNT', 1000);
        for (let i = 0; i + 1 < flat.length; i += 2) {
          const change = parseField(flat[i]!, flat[i + 1]!);
          if (change !== null) entries.push(change);
        }
        cursor = next;
      } while (cursor !== '0');
      state.replaceAll(entries as [string, string, number][]);
      for (const c of heard) state.apply(...c);
      loaded = true;
    } catch (err) {
      opts.logger.warn({ ...safeErrorFields(err), loaded }, 'tracking preferences could not be loaded from Redis: retrying');
      // NOTE: until a first load succeeds every identified event waits: try again soon
      if (!loaded && !closed) setTimeout(() => void reload(), 1_000).unref();
    } finally {
      heard = null;
    }
  }
  await reload();
  const timer = setInterval(() => void reload(), opts.reloadIntervalMs ?? 300_000);
  timer.unref();

  return {
    loaded: () => loaded,
    tracked: (tenantId, userId) => (loaded ? !state.isOff(tenantId, userId) : undefined),
    async get(tenantId, userId) {
      const at = await opts.redis.hget(key, field(tenantId, opts.hash(tenantId, userId)));
      return at === null ? { trackUsage: true, updatedAt: null } : { trackUsage: false, updatedAt: Number(at) };
    },
    async set(tenantId, userId, trackUsage, now) {
      if (closed) throw new Error('tracking preferences are closed');
      const userHash = opts.hash(tenantId, userId);
      const change: Change = [tenantId, userHash, trackUsage ? null : now];
      const tx = opts.redis.multi();
      if (trackUsage) tx.hdel(key, field(tenantId, userHash));
      else tx.hset(key, field(tenantId, userHash), String(now));
      const results = await tx.publish(key, JSON.stringify(change)).exec();
      const failed = results?.find(([err]) => err !== null)?.[0];
      if (results === null || failed) throw failed ?? new Error('the tracking preference change was not applied');
      state.apply(...change);
      return { trackUsage, updatedAt: now };
    },
    async close() {
      closed = true;
      clearInterval(timer);
      opts.subscriber.off('message', onMessage);
      opts.subscriber.off('ready', onReady);
      await running;
    },
  };
}

const field = (tenantId: string, userHash: string): string => `${tenantId}:${userHash}`;

function parseField(f: string, at: string): Change | null {
  const i = f.lastIndexOf(':');
  const n = Number(at);
  return i > 0 && Number.isSafeInteger(n) ? [f.slice(0, i), f.slice(i + 1), n] : null;
}

function parseChange(message: string): Change | null {
  try {
    const v: unknown = JSON.parse(message);
    if (Array.isArray(v) && v.length === 3 && typeof v[0] === 'string' && typeof v[1] === 'string' && (v[2] === null || Number.isSafeInteger(v[2]))) {
      return [v[0], v[1], v[2] as number | null];
    }
  } catch {
    // falls through
  }
  return null;
}
