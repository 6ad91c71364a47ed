import { describe, expect, it } from 'vitest';
import { DAILY_ID_PREFIX, dailyId, dailyIdControl, memoryDailySalts, utcDay, type DailySalts } from './daily-ids.js';
import { collected, tenantWith } from '../../test/support/collection-events.js';

const NOON = Date.UTC(2026, 11, 3, 12);
const anonymous = (over = {}) => collected({ user_id: null, anonymous_id: null, ...over });

describe('utcDay', () => {
  it('names the UTC day and when it ends', () => {
    expect(utcDay(NOON)).toEqual({ day: '2026-12-03', endsAt: Date.UTC(2026, 11, 4) });
    expect(utcDay(Date.UTC(2026, 11, 4) - 1).day).toBe('2026-12-03');
    expect(utcDay(Date.UTC(2026, 11, 4)).day).toBe('2026-12-04');
  });
});

describe('dailyIdControl', () => {
  const tenant = tenantWith();

  it('gives events of one visitor (tenant, IP, agent) one id per day, unrelated to the next day\'s', async () => {
    const control = dailyIdControl(memoryDailySalts());
    const idOf = async (now: number, over = {}) => (await control.apply(tenant, [anonymous(over)], now)).kept[0]?.event.anonymous_id;
    const today = await idOf(NOON);
    expect(today).toMatch(new RegExp(`^${DAILY_ID_PREFIX}[A-Za-z0-9_-]{22}$`));
    expect(await idOf(NOON + 3_600_000)).toBe(today);
    expect(await idOf(NOON, { ip: '203.0.113.10' })).not.toBe(today);
    expect(await idOf(NOON, { user_agent: 'Other/1.0' })).not.toBe(today);
    expect((await control.apply(tenantWith({}, 'other'), [anonymous()], NOON)).kept[0]?.event.anonymous_id).not.toBe(today);
    expect(await idOf(NOON + 86_400_000)).not.toBe(today);
  });

  it('leaves events with an id untouched, and passes them through when the salt cannot be read', async () => {
    const failing: DailySalts = { saltOf: () => Promise.reject(new Error('redis down')) };
    const identified = collected({ user_id: 'u1' });
    const device = collected({ user_id: null, anonymous_id: 'a1' });
    const cookieless = anonymous();
    const v = await dailyIdControl(failing).apply(tenant, [identified, device, cookieless], NOON);
    expect(v.kept).toEqual([identified, device]);
    expect(v.retry).toEqual([{ eventId: cookieless.event.event_id, reason: expect.stringContaining('salt') }]);
  });

  it('a new day forgets the previous day\'s salt: its ids cannot be made again', async () => {
    const salts = memoryDailySalts();
    const { day, endsAt } = utcDay(NOON);
    const first = await salts.saltOf(day, endsAt);
    const id = dailyId(first, 'acme', day, '203.0.113.9', 'UA');
    await salts.saltOf('2026-12-04', endsAt + 86_400_000);
    expect(dailyId(await salts.saltOf(day, endsAt), 'acme', day, '203.0.113.9', 'UA')).not.toBe(id);
  });
});
