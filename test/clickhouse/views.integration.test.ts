// The analyst views (schemas/clickhouse/0004_views.sql) on a small hand-checked fixture,
// written twice so the numbers also prove the views read through FINAL.
import { beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../libs/core/logger.js';
import { toNumber } from '../../libs/clickhouse/client.js';
import { createClickHouseSink } from '../../libs/sink/clickhouse-sink.js';
import type { CleanEvent } from '../../libs/events/envelope.js';
import { cleanEvent } from '../support/clickhouse-fixtures.js';
import { queryRows, uniqueTenant, useTestClickHouse } from '../support/chdb.js';

const ch = useTestClickHouse();
const tenant = uniqueTenant('views');
const other = uniqueTenant('other');
const day1 = Date.UTC(2026, 4, 10, 9, 0, 0);
const day2 = Date.UTC(2026, 4, 11, 9, 0, 0);

function ev(id: string, at: number, o: Partial<CleanEvent>): CleanEvent {
  return cleanEvent({ tenant_id: tenant, event_id: id, received_at: at, occurred_at: at, sent_at: at, ...o });
}

const noGeo = { geo: null };
const fixture: CleanEvent[] = [
  // day 1: anon-1 browses, then identifies as u1 (session s1); anon-2 views one page (s2)
  ev('a', day1, { type: 'page', anonymous_id: 'anon-1', session_id: 's1', context: { ...cleanEvent().context, path: '/' } }),
  ev('b', day1 + 60_000, { type: 'page', anonymous_id: 'anon-1', session_id: 's1', context: { ...cleanEvent().context, path: '/pricing' } }),
  ev('c', day1 + 120_000, { type: 'identify', user_id: 'u1', anonymous_id: 'anon-1', session_id: 's1', account_id: 'acc-1' }),
  ev('d', day1 + 180_000, { type: 'track', user_id: 'u1', anonymous_id: 'anon-1', session_id: 's1', account_id: 'acc-1' }),
  ev('e', day1 + 30_000, { type: 'page', anonymous_id: 'anon-2', session_id: 's2', context: { ...cleanEvent().context, path: '/pricing' }, geo: { ...cleanEvent().geo!, country: 'US' } }),
  // day 2: u1 again (s3), no geo
  ev('f', day2, { type: 'page', user_id: 'u1', anonymous_id: 'anon-1', session_id: 's3', account_id: 'acc-1', context: { ...cleanEvent().context, path: '/' }, ...noGeo }),
];

beforeAll(async () => {
  const sink = createClickHouseSink({ client: ch().client, logger: createLogger({ level: 'silent' }) });
  await sink.write(fixture);
  await sink.write(fixture); // redelivered: views must not double count
  await sink.write([cleanEvent({ tenant_id: other, event_id: 'x', received_at: day1 })]);
  await sink.stop();
});

async function view(name: string, order: string): Promise<Record<string, unknown>[]> {
  const rows = await queryRows<Record<string, unknown>>(ch().client, `SELECT * EXCEPT tenant_id FROM ${name} WHERE tenant_id = {t:String} ORDER BY ${order}`, { t: tenant });
  // 64-bit counts: numbers on chDB, strings over HTTP
  return rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, ['users', 'views', 'visitors', 'events'].includes(k) ? toNumber(v) : v])));
}

describe('views', () => {
  it('daily_active_users counts visitors (user id, else anonymous id) per day', async () => {
    expect(await view('daily_active_users', 'day')).toEqual([
      { day: '2026-05-10', users: 3 }, // anon-1, u1, anon-2
      { day: '2026-05-11', users: 1 },
    ]);
  });

  it('sessions', async () => {
    expect(await view('sessions', 'session_id')).toEqual([
      { session_id: 's1', user_id: 'u1', anonymous_id: 'anon-1', started_at: '2026-05-10 09:00:00.000', ended_at: '2026-05-10 09:03:00.000', events: 4 },
      { session_id: 's2', user_id: null, anonymous_id: 'anon-2', started_at: '2026-05-10 09:00:30.000', ended_at: '2026-05-10 09:00:30.000', events: 1 },
      { session_id: 's3', user_id: 'u1', anonymous_id: 'anon-1', started_at: '2026-05-11 09:00:00.000', ended_at: '2026-05-11 09:00:00.000', events: 1 },
    ]);
  });

  it('top_pages', async () => {
    expect(await view('top_pages', 'views DESC, path')).toEqual([
      { path: '/', views: 2, visitors: 2 }, // anon-1 then u1
      { path: '/pricing', views: 2, visitors: 2 },
    ]);
  });

  it('events_by_account', async () => {
    expect(await view('events_by_account', 'day')).toEqual([
      { account_id: 'acc-1', day: '2026-05-10', events: 2, users: 1 },
      { account_id: 'acc-1', day: '2026-05-11', events: 1, users: 1 },
    ]);
  });

  it('events_by_country', async () => {
    expect(await view('events_by_country', 'day, geo_country')).toEqual([
      { geo_country: 'GB', day: '2026-05-10', events: 4, users: 2 },
      { geo_country: 'US', day: '2026-05-10', events: 1, users: 1 },
    ]);
  });
});
