import { beforeEach, describe, expect, it } from 'vitest';
import { createDelivery, type Delivery, type DeliveryDeps } from './delivery.js';
import { fakeClock, type FakeClock } from './fake-clock.js';

let clock: FakeClock;
let posts: string[][];
let beacons: string[][];
/** the status each next post resolves with; null = network error; empty = 200 */
let answers: (number | null)[];
let beaconOk: boolean;

const flushPromises = () => new Promise((r) => setTimeout(r, 0));

function delivery(over: Partial<DeliveryDeps> = {}): Delivery {
  return createDelivery({
    post: (body) => {
      posts.push(JSON.parse(body).batch);
      const a = answers.length ? answers.shift()! : 200;
      return a === null ? Promise.reject(new TypeError('network')) : Promise.resolve(a);
    },
    beacon: (body) => {
      if (beaconOk) beacons.push(JSON.parse(body).batch);
      return beaconOk;
    },
    wrap: (messages) => `{"batch":[${messages.join(',')}]}`,
    now: clock.now,
    random: () => 0.5,
    setTimer: clock.setTimer,
    clearTimer: clock.clearTimer,
    batchSize: 3,
    flushIntervalMs: 1000,
    maxQueue: 10,
    maxBatchChars: 10_000,
    maxAttempts: 4,
    backoffBaseMs: 1000,
    backoffMaxMs: 60_000,
    ...over,
  });
}

beforeEach(() => {
  clock = fakeClock();
  posts = [];
  beacons = [];
  answers = [];
  beaconOk = true;
});

const msg = (n: number) => JSON.stringify({ n });
const ns = (batches: unknown[][]) => batches.map((b) => b.map((m) => (m as { n: number }).n));

describe('delivery', () => {
  it('sends a full batch at once and a partial one after the flush interval', async () => {
    const d = delivery();
    for (let i = 1; i <= 4; i++) d.push(msg(i));
    expect(ns(posts)).toEqual([[1, 2, 3]]);
    await flushPromises();
    clock.advance(999);
    expect(posts).toHaveLength(1);
    clock.advance(1);
    expect(ns(posts)).toEqual([[1, 2, 3], [4]]);
  });

  it('keeps one request in flight; what queued meanwhile follows', async () => {
    const d = delivery();
    for (let i = 1; i <= 6; i++) d.push(msg(i));
    expect(ns(posts)).toEqual([[1, 2, 3]]);
    await flushPromises();
    expect(ns(posts)).toEqual([[1, 2, 3], [4, 5, 6]]);
  });

  it('caps a batch by characters, but always sends at least one message', () => {
    const d = delivery({ maxBatchChars: 20, batchSize: 10 });
    d.push(JSON.stringify({ n: 1, pad: 'x'.repeat(40) }));
    d.push(msg(2));
    d.flush();
    expect(posts[0]).toHaveLength(1);
  });

  it('retries network errors and 5xx with exponential backoff, in order', async () => {
    answers = [null, 503, 200];
    const d = delivery();
    d.push(msg(1));
    clock.advance(1000);
    await flushPromises();
    d.push(msg(2));
    clock.advance(749); // 1000 × 2^0 × (0.5 + 0.5/2)
    expect(posts).toHaveLength(1);
    clock.advance(1);
    expect(ns(posts)).toEqual([[1], [1, 2]]);
    await flushPromises();
    clock.advance(1499); // second failure: 2000 × 0.75
    expect(posts).toHaveLength(2);
    clock.advance(1);
    expect(ns(posts)).toEqual([[1], [1, 2], [1, 2]]);
    await flushPromises();
    clock.advance(60_000);
    expect(posts).toHaveLength(3);
    expect(d.size()).toBe(0);
  });

  it('drops a batch the collector refuses for good (400, 401, 413)', async () => {
    answers = [401];
    const d = delivery();
    d.push(msg(1));
    clock.advance(1000);
    await flushPromises();
    clock.advance(60_000);
    expect(posts).toHaveLength(1);
    expect(d.dropped()).toBe(1);
  });

  it('gives a batch up after maxAttempts', async () => {
    answers = [500, 500, 500, 500, 500];
    const d = delivery();
    d.push(msg(1));
    for (let i = 0; i < 10; i++) {
      clock.advance(60_000);
      await flushPromises();
    }
    expect(posts).toHaveLength(4);
    expect(d.dropped()).toBe(1);
    expect(d.size()).toBe(0);
  });

  it('bounds the queue, dropping the oldest', () => {
    const d = delivery({ batchSize: 100 });
    for (let i = 1; i <= 15; i++) d.push(msg(i));
    expect(d.size()).toBe(10);
    expect(d.dropped()).toBe(5);
    d.flushOnHide();
    expect(ns(beacons)).toEqual([[6, 7, 8, 9, 10, 11, 12, 13, 14, 15]]);
  });

  it('on page hide sends everything queued by beacon, in batches, even during a backoff', async () => {
    answers = [null];
    const d = delivery();
    d.push(msg(1));
    clock.advance(1000);
    await flushPromises();
    for (let i = 2; i <= 5; i++) d.push(msg(i));
    d.flushOnHide();
    expect(ns(beacons)).toEqual([[1, 2, 3], [4, 5]]);
    expect(d.size()).toBe(0);
  });

  it('falls back to a keepalive POST when the beacon is refused', () => {
    beaconOk = false;
    const d = delivery();
    d.push(msg(1));
    d.flushOnHide();
    expect(ns(posts)).toEqual([[1]]);
  });

  it('clear() forgets the queue and sends nothing more, not even retries', async () => {
    answers = [null];
    const d = delivery();
    d.push(msg(1));
    clock.advance(1000);
    d.push(msg(2));
    d.clear();
    await flushPromises();
    clock.advance(120_000);
    d.flushOnHide();
    expect(ns(posts)).toEqual([[1]]);
    expect(beacons).toEqual([]);
    expect(clock.pending()).toBe(0);
  });
});
