// The collection controls' Redis state against the machine's real Redis (REDIS_URL or
// 127.0.0.1:6379): two instances stand for two collectors. Every test uses its own key prefix
// and deletes its keys afterwards.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../core/logger.js';
import { subjectHasher } from '../privacy/subject-hash.js';
import { eventually } from '../../test/support/poll.js';
import { redisDailySalts, utcDay } from './daily-ids.js';
import { openRedisTrackingPreferences, trackingOffKey } from './redis-tracking-preferences.js';

const REDIS_URL = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const hash = subjectHasher(Buffer.alloc(32, 3));
const logger = createLogger({ level: 'silent' });
let prefix: string;
const clients: Redis[] = [];
const client = (): Redis => {
  const c = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  clients.push(c);
  return c;
};

beforeEach(() => {
  prefix = `test-collection-${randomUUID()}:`;
});
afterEach(async () => {
  const admin = client();
  const keys = await admin.keys(`${prefix}*`);
  if (keys.length > 0) await admin.del(...keys);
  await Promise.all(clients.splice(0).map((c) => (c.status === 'ready' ? c.quit() : c.disconnect())));
});

const open = () => openRedisTrackingPreferences({ redis: client(), subscriber: client(), keyPrefix: prefix, hash, logger });

describe('Redis tracking preferences', () => {
  it('a change on one collector is in force on another within 2 s, and back; the user only as a keyed hash', async () => {
    const [a, b] = [await open(), await open()];
    expect(b.tracked('acme', 'ann@acme.com')).toBe(true);
    const started = Date.now();
    await a.set('acme', 'ann@acme.com', false, started);
    expect(a.tracked('acme', 'ann@acme.com')).toBe(false);
    await eventually(() => expect(b.tracked('acme', 'ann@acme.com')).toBe(false), 2_000);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(await b.get('acme', 'ann@acme.com')).toEqual({ trackUsage: false, updatedAt: started });
    expect(JSON.stringify(await client().hgetall(trackingOffKey(prefix)))).not.toContain('ann');

    await b.set('acme', 'ann@acme.com', true, started + 1);
    await eventually(() => expect(a.tracked('acme', 'ann@acme.com')).toBe(true), 2_000);
    expect(await a.get('acme', 'ann@acme.com')).toEqual({ trackUsage: true, updatedAt: null });
    await Promise.all([a.close(), b.close()]);
  });

  it('a collector started later loads what was set before it', async () => {
    const a = await open();
    await a.set('acme', 'u1', false, 1);
    await a.set('other', 'u2', false, 2);
    const late = await open();
    expect([late.loaded(), late.tracked('acme', 'u1'), late.tracked('other', 'u2'), late.tracked('acme', 'u2')]).toEqual([true, false, false, true]);
    await Promise.all([a.close(), late.close()]);
  });

  it('answers unknown (retry) until its first load, then serves the last view while Redis is unreachable', async () => {
    const dead = new Redis('redis://127.0.0.1:1', { maxRetriesPerRequest: 0, lazyConnect: true, retryStrategy: () => null });
    dead.on('error', () => undefined);
    clients.push(dead);
    const subscriber = client();
    const blind = await openRedisTrackingPreferences({ redis: dead, subscriber, keyPrefix: prefix, hash, logger });
    expect([blind.loaded(), blind.tracked('acme', 'u1')]).toEqual([false, undefined]);
    await blind.close();

    const a = await open();
    await a.set('acme', 'u1', false, 1);
    // the connection for commands goes away: what was loaded stays in force
    const b = await openRedisTrackingPreferences({ redis: client(), subscriber: client(), keyPrefix: prefix, hash, logger });
    clients.at(-2)?.disconnect();
    expect(b.tracked('acme', 'u1')).toBe(false);
    await Promise.all([a.close(), b.close()]);
  });
});

describe('Redis daily salts', () => {
  it('two collectors share one salt per day, which expires at the end of that day', async () => {
    const [a, b] = [redisDailySalts(client(), prefix), redisDailySalts(client(), prefix)];
    const { day, endsAt } = utcDay(Date.now());
    const [sa, sb] = await Promise.all([a.saltOf(day, endsAt), b.saltOf(day, endsAt)]);
    expect(sa.equals(sb)).toBe(true);
    expect(sa.length).toBe(32);
    const expiresAt = await client().call('EXPIRETIME', `${prefix}daily-salt:${day}`);
    expect(expiresAt).toBe(Math.ceil(endsAt / 1000));
    const other = await a.saltOf('2099-01-01', Date.UTC(2099, 0, 2));
    expect(other.equals(sa)).toBe(false);
  });

  it('a failed read is not remembered: the next request asks Redis again', async () => {
    const c = client();
    const salts = redisDailySalts(c, prefix);
    const { day, endsAt } = utcDay(Date.now());
    c.disconnect();
    await expect(salts.saltOf(day, endsAt)).rejects.toThrow();
    await c.connect();
    expect((await salts.saltOf(day, endsAt)).length).toBe(32);
  });
});
