// The fleet's reading of the brokers' retention for receipts: re-read on a timer (an altered
// topic needs no restart), a failed re-reading promises no horizon until one succeeds, and the
// pending sweep takes the TTL of the latest reading.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DEFAULT_TOPIC_RETENTION, TOPIC_KINDS, type BrokerRetention } from '../kafka/topic-retention.js';
import { startPendingExpiry, watchReceiptRetention } from './receipts.js';

const DAY = 24 * 3_600_000;
const broker = (overwritesMs: number, read = true): BrokerRetention => ({
  topics: Object.fromEntries(
    TOPIC_KINDS.map((k) => [k, { ...DEFAULT_TOPIC_RETENTION[k], ...(k === 'overwrites' ? { retentionMs: overwritesMs } : {}), fileDeleteDelayMs: 60_000, read }]),
  ) as BrokerRetention['topics'],
  retentionCheckIntervalMs: 300_000,
  retentionCheckIntervalRead: true,
});
const horizon = (overwritesMs: number) => Math.max(overwritesMs + DAY, 7 * DAY + DAY) + 60_000 + 300_000;

beforeEach(() => void vi.useFakeTimers());
afterEach(() => void vi.useRealTimers());

describe('watchReceiptRetention', () => {
  const logged: { level: string; msg: string }[] = [];
  const logger = { warn: (_o: object, msg: string) => void logged.push({ level: 'warn', msg }), info: (_o: object, msg: string) => void logged.push({ level: 'info', msg }) };

  it('re-reads every interval and takes what the brokers hold now', async () => {
    let held = broker(7 * DAY);
    const watch = await watchReceiptRetention({ read: async () => held, everyMs: 60_000, logger });
    expect(watch.current()).toEqual({ pendingTtlMs: 7 * DAY, copiesHorizonMs: horizon(7 * DAY) });
    held = broker(30 * DAY); // kafka-configs --alter --add-config retention.ms=…
    await vi.advanceTimersByTimeAsync(59_000);
    expect(watch.current().pendingTtlMs).toBe(7 * DAY);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(watch.current()).toEqual({ pendingTtlMs: 30 * DAY, copiesHorizonMs: horizon(30 * DAY) });
    await watch.stop();
    held = broker(DAY);
    await vi.advanceTimersByTimeAsync(120_000);
    expect(watch.current().pendingTtlMs).toBe(30 * DAY);
  });

  it('a reading that fails, or tells less, leaves no horizon (the pending TTL as last known) until one tells all', async () => {
    logged.length = 0;
    let next: () => Promise<BrokerRetention> = async () => broker(7 * DAY);
    const watch = await watchReceiptRetention({
      read: async (log) => {
        const b = await next();
        if (!b.topics.raw.read) log.warn({}, 'not told');
        return b;
      },
      everyMs: 60_000,
      logger,
    });
    next = async () => Promise.reject(new Error('connection refused'));
    await vi.advanceTimersByTimeAsync(60_000);
    expect(watch.current()).toEqual({ pendingTtlMs: 7 * DAY, copiesHorizonMs: null });
    next = async () => broker(2 * DAY, false);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(watch.current()).toEqual({ pendingTtlMs: 2 * DAY, copiesHorizonMs: null });
    await vi.advanceTimersByTimeAsync(60_000);
    // told once, not at every reading
    expect(logged.filter((l) => l.msg === 'not told')).toHaveLength(1);
    next = async () => broker(2 * DAY);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(watch.current()).toEqual({ pendingTtlMs: 2 * DAY, copiesHorizonMs: horizon(2 * DAY) });
    await watch.stop();
  });

  it('a first reading that fails is the caller\'s (the service does not start on a guess)', async () => {
    await expect(watchReceiptRetention({ read: async () => Promise.reject(new Error('unreachable')), logger })).rejects.toThrow('unreachable');
  });
});

describe('startPendingExpiry', () => {
  it('sweeps with the TTL of the latest reading, and not at all while there is none', async () => {
    const ttls: number[] = [];
    const store = { expirePending: async (ttl: number) => (ttls.push(ttl), 0) };
    let ttl: number | null = null;
    const sweep = startPendingExpiry({ store, ttlMs: () => ttl, everyMs: 1_000, logger: { warn: () => undefined, info: () => undefined } });
    await vi.advanceTimersByTimeAsync(1_000);
    expect(ttls).toEqual([]);
    ttl = 7 * DAY;
    await vi.advanceTimersByTimeAsync(1_000);
    ttl = DAY;
    await vi.advanceTimersByTimeAsync(1_000);
    expect(ttls).toEqual([7 * DAY, DAY]);
    await sweep.stop();
  });
});
