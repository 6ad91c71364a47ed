// Issue 16 across the fleet: a per-user tracking preference set through one collector is in
// force on another within 2 s (both ways), and the drops are counted by reason in /metrics.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toNumber } from '../../libs/clickhouse/client.js';
import { startFleet, type Fleet } from '../support/fleet.js';

let fleet: Fleet;
let writeKey: string;
const TENANT = 'prefs';

beforeAll(async () => {
  fleet = await startFleet({ services: ['collector'] });
  await fleet.start('collector', 'collector-2');
  const { body } = await fleet.admin<{ writeKey: string }>('PUT', `/v1/admin/tenants/${TENANT}`);
  writeKey = body.writeKey;
}, 120_000);

afterAll(async () => {
  await fleet?.stopAll();
});

const urlOf = (key: string) => `http://127.0.0.1:${fleet.processes.get(key)?.port}`;

async function send(key: string, userId: string): Promise<{ accepted: number; dropped?: number }> {
  const res = await fetch(`${urlOf(key)}/v1/batch`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${writeKey}:`).toString('base64')}` },
    body: JSON.stringify({ batch: [{ type: 'track', event: 'E', userId, messageId: randomUUID() }] }),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as { accepted: number; dropped?: number };
}

async function setPreference(key: string, userId: string, trackUsage: boolean): Promise<number> {
  const res = await fetch(`${fleet.collectorAdminUrl(key)}/v1/admin/tenants/${TENANT}/users/${encodeURIComponent(userId)}/preferences`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${fleet.adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ trackUsage }),
  });
  expect(res.status).toBe(200);
  return Date.now();
}

/** ms from `since` until `key`'s collector answers `want` for one event of `userId` (polls every 50 ms, 5 s at most). */
async function msUntil(key: string, userId: string, want: 'dropped' | 'accepted', since: number): Promise<number> {
  while (Date.now() - since < 5_000) {
    const r = await send(key, userId);
    if ((want === 'dropped' ? r.dropped : r.accepted) === 1) return Date.now() - since;
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error(`${key} never answered ${want} for the user`);
}

async function trackingOffDrops(key: string): Promise<number> {
  const text = await (await fetch(`${urlOf(key)}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('tracklane_collector_dropped_total{') && l.includes('reason="tracking_off"'));
  return line === undefined ? 0 : toNumber(line.split(' ').at(-1) ?? '0');
}

describe('tracking preferences across collectors', () => {
  it('switched off through one collector, the other drops the user\'s events within 2 s; switched on through it, the first stores them again within 2 s', async () => {
    const user = 'carol@acme.com';
    expect(await send('collector-2', user)).toMatchObject({ accepted: 1 });
    const before = await trackingOffDrops('collector-2');

    const off = await msUntil('collector-2', user, 'dropped', await setPreference('collector', user, false));
    expect(off).toBeLessThanOrEqual(2_000);
    expect(await send('collector', 'someone-else')).toMatchObject({ accepted: 1 });
    expect(await trackingOffDrops('collector-2')).toBeGreaterThan(before);

    const on = await msUntil('collector', user, 'accepted', await setPreference('collector-2', user, true));
    expect(on).toBeLessThanOrEqual(2_000);
  }, 60_000);
});
