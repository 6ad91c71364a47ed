// Acceptance check: `npm start`, then the official @segment/analytics-node client pointed at
// it delivers identify, track, page and group calls that appear in ClickHouse (chDB) with
// the right tenant, ids, names and traits.
import { Analytics } from '@segment/analytics-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedProcess, type EmbeddedProcess } from '../support/embedded-process.js';
import { eventually } from '../support/poll.js';

let server: EmbeddedProcess;
let writeKey: string;

beforeAll(async () => {
  server = await startEmbeddedProcess();
  const created = await server.admin<{ writeKey: string }>('PUT', '/v1/admin/tenants/segment-e2e');
  expect(created.status).toBe(201);
  writeKey = created.body.writeKey;
}, 120_000);

afterAll(async () => {
  await server?.stop();
});

describe('@segment/analytics-node against npm start', () => {
  it('delivers identify, track, page and group calls into ClickHouse', async () => {
    const errors: unknown[] = [];
    const analytics = new Analytics({ writeKey, host: server.url, flushAt: 4, flushInterval: 200, maxRetries: 2 });
    analytics.on('error', (err) => errors.push(err));

    analytics.identify({
      userId: 'user-1',
      traits: { email: 'alice@eng.acme.co.uk', firstName: 'Alice', lastName: 'Liddell', plan: 'pro' },
      context: { ip: '8.8.8.8' },
    });
    analytics.track({ userId: 'user-1', event: 'Report Exported', properties: { format: 'csv', rows: 120 } });
    analytics.page({ userId: 'user-1', name: 'Dashboard', properties: { url: 'https://app.example.com/dashboard', path: '/dashboard' } });
    analytics.group({ userId: 'user-1', groupId: 'acct-42', traits: { name: 'Acme Ltd', plan: 'enterprise' } });
    await analytics.closeAndFlush({ timeout: 20_000 });
    expect(errors).toEqual([]);

    const events = await eventually(async () => {
      const rows = await server.query<Record<string, unknown>>(
        `SELECT tenant_id, type, event, user_id, account_id, geo_country, identity_anonymized, event_id
         FROM events FINAL WHERE tenant_id = 'segment-e2e' ORDER BY type`,
      );
      return rows.length === 4 ? rows : undefined;
    }, 30_000, 'four events in ClickHouse');

    expect(events.map((r) => [r['type'], r['event'], r['user_id']])).toEqual([
      ['group', null, 'user-1'],
      ['identify', null, 'user-1'],
      ['page', 'Dashboard', 'user-1'],
      ['track', 'Report Exported', 'user-1'],
    ]);
    for (const r of events) {
      expect(r['tenant_id']).toBe('segment-e2e');
      expect(String(r['event_id'])).toMatch(/^node-next-/);
      expect(Number(r['identity_anonymized'])).toBe(0);
    }
    expect(events.find((r) => r['type'] === 'group')?.['account_id']).toBe('acct-42');
    expect(events.find((r) => r['type'] === 'identify')?.['geo_country']).toBe('US');

    const users = await eventually(async () => {
      const rows = await server.query<Record<string, unknown>>(
        `SELECT user_id, email, first_name, last_name, traits FROM users FINAL WHERE tenant_id = 'segment-e2e'`,
      );
      return rows.length === 1 ? rows : undefined;
    }, 10_000, 'the user row');
    expect(users[0]).toMatchObject({ user_id: 'user-1', email: 'alice@eng.acme.co.uk', first_name: 'Alice', last_name: 'Liddell' });
    expect((users[0]?.['traits'] as Record<string, string>)['plan']).toBe('"pro"');

    const accounts = await server.query<Record<string, unknown>>(
      `SELECT account_id, domain, source, name FROM accounts FINAL WHERE tenant_id = 'segment-e2e' ORDER BY account_id`,
    );
    expect(accounts).toEqual(
      expect.arrayContaining([expect.objectContaining({ account_id: 'acct-42', source: 'explicit', name: 'Acme Ltd' })]),
    );
  });
});
