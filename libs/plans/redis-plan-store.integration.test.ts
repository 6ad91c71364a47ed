// The fleet's plan store on a real Redis (a private redis-server, so it can be stopped): a change
// reaches another replica within 2 s (pub/sub, and the poll alone when messages are missed);
// versions grow across removals; while Redis is down the last loaded plans are served, and a
// replica that never loaded answers "unknown" (undefined: the control's retry) until it can.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisConnectionOfUrl } from '../config/redis-connection.js';
import { createLogger } from '../core/logger.js';
import { startPrivateRedis, type PrivateRedis } from '../../test/support/private-redis.js';
import { eventually } from '../../test/support/poll.js';
import { trackingPlanSchema } from './plan-schema.js';
import type { PlanStore } from './plan-store.js';
import { openRedisPlanStore } from './redis-plan-store.js';

const logger = createLogger({ level: 'silent' });
const PLAN = trackingPlanSchema.parse({ mode: 'block', unplanned: 'flag', events: { 'Signed Up': { type: 'object' } } });
let redis: PrivateRedis;
const stores: PlanStore[] = [];
const open = async (extra: { pubsub?: boolean; openTimeoutMs?: number } = {}) => {
  const s = await openRedisPlanStore({ redis: redisConnectionOfUrl(redis.url), keyPrefix: 'test:', logger, ...extra });
  stores.push(s);
  return s;
};

beforeAll(async () => {
  redis = await startPrivateRedis();
});
afterAll(async () => {
  for (const s of stores) await s.close();
  await redis?.destroy();
});

describe('redis plan store', () => {
  it('a change reaches other replicas within 2 s, by pub/sub and by the poll alone', async () => {
    const a = await open();
    const b = await open();
    const deaf = await open({ pubsub: false });
    expect(a.get('acme')).toBeNull();
    const started = Date.now();
    expect(await a.put('acme', PLAN, 1_000)).toEqual({ version: 1, updatedAt: 1_000, plan: PLAN });
    // read-your-writes on the writer
    expect(a.get('acme')?.version).toBe(1);
    await eventually(() => b.get('acme')?.version === 1, 2_000, 'b sees the plan', 20);
    await eventually(() => deaf.get('acme')?.version === 1, 2_000, 'the poll-only replica sees the plan', 20);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(b.get('acme')).toEqual({ version: 1, updatedAt: 1_000, plan: PLAN });

    expect(await b.remove('acme')).toBe(true);
    expect(await b.remove('acme')).toBe(false);
    await eventually(() => a.get('acme') === null && deaf.get('acme') === null, 2_000, 'the removal everywhere', 20);
    expect((await a.put('acme', PLAN, 2_000)).version).toBe(3);
  });

  it('Redis down: the last loaded plans are served; a replica that never loaded answers unknown until it can', async () => {
    const a = await open();
    await a.put('globex', PLAN, 5);
    await redis.stop();
    let down = true;
    try {
      // a reload attempt fails meanwhile (the poll runs every second): still served
      await new Promise((r) => setTimeout(r, 1_200));
      expect(a.get('globex')?.version).toBe(1);
      const late = await open({ openTimeoutMs: 300 });
      expect(late.get('globex')).toBeUndefined();
      expect(late.get('anyone')).toBeUndefined();
      await redis.start();
      down = false;
      await eventually(() => late.get('globex')?.version === 1, 5_000, 'the late replica loads once Redis is back', 50);
      expect(late.get('anyone')).toBeNull();
    } finally {
      if (down) await redis.start();
    }
  }, 30_000);
});
