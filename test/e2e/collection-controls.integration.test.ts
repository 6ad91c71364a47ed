// Issue 16 through the embedded server: per-user tracking preferences (acceptance 2), the bot
// policy (acceptance 3), the server-side consent policy and cookieless daily ids — what is
// stored in ClickHouse, what the answer and /metrics count as dropped, and why.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toNumber } from '../../libs/clickhouse/client.js';
import type { EmbeddedServer } from '../../services/embedded/embedded-runner.js';
import { startInProcessEmbedded, type InProcessEmbedded } from '../support/in-process-embedded.js';

const CHROME = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36';
const HEADLESS = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36';
const GOOGLEBOT = 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)';

let e2e: InProcessEmbedded;
let server: EmbeddedServer;

beforeAll(async () => {
  e2e = await startInProcessEmbedded();
  server = e2e.server;
}, 120_000);

afterAll(() => e2e?.stop());

async function admin(method: string, path: string, body?: unknown) {
  const { status, body: answer } = await e2e.admin(method, path, body);
  expect(status, `${method} ${path}`).toBeLessThan(300);
  return answer;
}

const tenant = (flags: Record<string, unknown> = {}) => e2e.tenant('t', flags);

async function send(writeKey: string, batch: Record<string, unknown>[], userAgent = CHROME) {
  const res = await fetch(`${server.url}/v1/batch`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'user-agent': userAgent, authorization: `Basic ${Buffer.from(`${writeKey}:`).toString('base64')}` },
    body: JSON.stringify({ batch }),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as { accepted: number; dropped?: number };
}

const stored = async (tenantId: string) =>
  (await server.analystQuery(`SELECT event AS name, user_id, anonymous_id, ua_device_type FROM events FINAL WHERE tenant_id = '${tenantId}' ORDER BY name`)) as {
    name: string;
    user_id: string | null;
    anonymous_id: string | null;
    ua_device_type: string | null;
  }[];

async function droppedCount(reason: string): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${server.adminToken}` } })).text();
  // NOTE: the registry's default label (service) comes first
  const line = text.split('\n').find((l) => l.startsWith('tracklane_collector_dropped_total{') && l.includes(`reason="${reason}"`));
  return line === undefined ? 0 : toNumber(line.split(' ').at(-1) ?? '0');
}

const track = (name: string, over: Record<string, unknown> = {}) => ({ type: 'track', event: name, userId: 'u1', messageId: randomUUID(), ...over });

describe('per-user tracking preference (trackUsage)', () => {
  it('100 events of a user with tracking off: none stored, 100 counted as dropped (tracking_off); switched on, the next are stored', async () => {
    const t = await tenant();
    await send(t.writeKey, [track('Before', { userId: 'ann@acme.com' })]);
    await admin('PUT', `/v1/admin/tenants/${t.id}/users/ann%40acme.com/preferences`, { trackUsage: false });
    expect(await admin('GET', `/v1/admin/tenants/${t.id}/users/ann%40acme.com/preferences`)).toMatchObject({ trackUsage: false });
    const before = await droppedCount('tracking_off');
    const answer = await send(t.writeKey, Array.from({ length: 100 }, (_, i) => track(`Off ${i}`, { userId: 'ann@acme.com' })).concat([track('Someone else', { userId: 'bob' })]));
    expect(answer).toMatchObject({ accepted: 1, dropped: 100 });
    expect((await droppedCount('tracking_off')) - before).toBe(100);

    await admin('PUT', `/v1/admin/tenants/${t.id}/users/ann%40acme.com/preferences`, { trackUsage: true });
    expect(await send(t.writeKey, [track('After', { userId: 'ann@acme.com' })])).toMatchObject({ accepted: 1 });
    expect((await stored(t.id)).map((r) => r.name)).toEqual(['After', 'Before', 'Someone else']);
  });
});

describe('bot policy', () => {
  it('drop: a headless browser and a crawler are dropped (bot), a real browser and a server SDK without its user\'s agent are kept', async () => {
    const t = await tenant({ botPolicy: 'drop' });
    const before = await droppedCount('bot');
    expect(await send(t.writeKey, [track('Headless')], HEADLESS)).toMatchObject({ accepted: 0, dropped: 1 });
    expect(await send(t.writeKey, [track('Crawler')], GOOGLEBOT)).toMatchObject({ accepted: 0, dropped: 1 });
    expect(await send(t.writeKey, [track('Crawler in context', { context: { userAgent: GOOGLEBOT, library: { name: 'analytics-python' } } })], 'python-requests/2.31')).toMatchObject({ dropped: 1 });
    expect(await send(t.writeKey, [track('Browser')], CHROME)).toMatchObject({ accepted: 1 });
    expect(await send(t.writeKey, [track('Server SDK', { context: { library: { name: '@segment/analytics-node' } } })], 'analytics-node-next/latest')).toMatchObject({ accepted: 1 });
    expect((await droppedCount('bot')) - before).toBe(3);
    expect(await stored(t.id)).toEqual([
      { name: 'Browser', user_id: 'u1', anonymous_id: null, ua_device_type: 'desktop' },
      { name: 'Server SDK', user_id: 'u1', anonymous_id: null, ua_device_type: null },
    ]);
  });

  it.each([
    ['flag', 'bot'],
    ['keep', 'desktop'],
  ])('%s: a crawler is stored as %s', async (botPolicy, deviceType) => {
    const t = await tenant({ botPolicy });
    expect(await send(t.writeKey, [track('Crawler')], GOOGLEBOT)).toMatchObject({ accepted: 1 });
    expect((await stored(t.id)).map((r) => r.ua_device_type)).toEqual([deviceType]);
  });
});

describe('consent policy', () => {
  it('consentRequired analytics: granted stored, denied dropped (consent_denied), none follows consentMissing', async () => {
    const consent = (prefs: Record<string, boolean>) => ({ context: { consent: { categoryPreferences: prefs } } });
    const batch = () => [track('Granted', consent({ analytics: true })), track('Denied', consent({ analytics: false, ads: true })), track('No consent info')];
    const keep = await tenant({ consentRequired: ['analytics'] });
    expect(await send(keep.writeKey, batch())).toMatchObject({ accepted: 2, dropped: 1 });
    expect((await stored(keep.id)).map((r) => r.name)).toEqual(['Granted', 'No consent info']);

    const strict = await tenant({ consentRequired: ['analytics'], consentMissing: 'drop' });
    const [denied, missing] = [await droppedCount('consent_denied'), await droppedCount('consent_missing')];
    expect(await send(strict.writeKey, batch())).toMatchObject({ accepted: 1, dropped: 2 });
    expect((await stored(strict.id)).map((r) => r.name)).toEqual(['Granted']);
    expect([(await droppedCount('consent_denied')) - denied, (await droppedCount('consent_missing')) - missing]).toEqual([1, 1]);
  });
});

describe('cookieless daily ids', () => {
  it('events without ids get one daily id per visitor (IP and user agent), another for another visitor', async () => {
    const t = await tenant();
    const anon = (name: string, ip: string) => ({ type: 'page', name, messageId: randomUUID(), context: { ip } });
    await send(t.writeKey, [anon('A1', '198.51.100.7')]);
    await send(t.writeKey, [anon('A2', '198.51.100.7')]);
    await send(t.writeKey, [anon('B', '198.51.100.8')]);
    await send(t.writeKey, [anon('C', '198.51.100.7')], 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 Version/17.4 Safari/605.1.15');
    const ids = Object.fromEntries((await stored(t.id)).map((r) => [r.name, r.anonymous_id]));
    expect(ids['A1']).toMatch(/^d-[A-Za-z0-9_-]{22}$/);
    expect(ids['A2']).toBe(ids['A1']);
    expect(new Set([ids['A1'], ids['B'], ids['C']]).size).toBe(3);
  });
});
