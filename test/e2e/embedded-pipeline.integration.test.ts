// Acceptance checks 3–6 of the embedded pipeline, end to end over HTTP into chDB:
// enrichment, anonymization, idempotent redelivery and bad input.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toNumber } from '../../libs/clickhouse/client.js';
import { createLogger } from '../../libs/core/logger.js';
import { embeddedConfigSchema } from '../../services/embedded/config.js';
import { startEmbedded, type EmbeddedServer } from '../../services/embedded/embedded-runner.js';

let server: EmbeddedServer;
let dataDir: string;
let seq = 0;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'tracklane-embedded-'));
  const config = embeddedConfigSchema.parse({
    PORT: '0',
    TRACKLANE_DATA_DIR: dataDir,
    TRACKLANE_MASTER_KEY: `base64:${randomBytes(32).toString('base64')}`,
    TRACKLANE_ADMIN_TOKEN: randomBytes(24).toString('base64url'),
  });
  server = await startEmbedded(config, createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }));
}, 120_000);

afterAll(async () => {
  await server?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

async function admin(method: string, path: string, body?: unknown) {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${server.adminToken}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function newTenant(flags?: Record<string, unknown>): Promise<{ tenant: string; writeKey: string }> {
  const tenant = `t${++seq}-${randomBytes(3).toString('hex')}`;
  const created = await admin('PUT', `/v1/admin/tenants/${tenant}`);
  if (flags) expect((await admin('PATCH', `/v1/admin/tenants/${tenant}/flags`, flags)).status).toBe(200);
  return { tenant, writeKey: created.body['writeKey'] as string };
}

async function send(writeKey: string, batch: unknown[], init: { body?: Buffer | string; headers?: Record<string, string> } = {}) {
  const res = await fetch(`${server.url}/v1/batch`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      authorization: `Basic ${Buffer.from(`${writeKey}:`).toString('base64')}`,
      ...init.headers,
    },
    body: init.body ?? JSON.stringify({ batch, sentAt: new Date().toISOString() }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function rows(sql: string): Promise<Record<string, unknown>[]> {
  return (await server.analystQuery(sql)) as Record<string, unknown>[];
}

const track = (id: string, extra: Record<string, unknown> = {}) => ({ type: 'track', event: 'Tested', messageId: id, userId: 'u1', ...extra });

describe('enrichment (check 3)', () => {
  it('resolves geo from the IP and none for a private IP', async () => {
    const { tenant, writeKey } = await newTenant();
    expect((await send(writeKey, [track('geo-public', { context: { ip: '8.8.8.8' } }), track('geo-private', { context: { ip: '10.1.2.3' } })])).status).toBe(200);
    const r = await rows(`SELECT event_id, geo_country, geo_city, ip, ip_org FROM events FINAL WHERE tenant_id = '${tenant}' ORDER BY event_id`);
    expect(r).toEqual([
      expect.objectContaining({ event_id: 'geo-private', geo_country: null, ip: '10.1.2.3', ip_org: null }),
      expect.objectContaining({ event_id: 'geo-public', geo_country: 'US', ip: '8.8.8.8' }),
    ]);
    expect(String(r[1]?.['ip_org'])).toMatch(/google/i);
  });

  it.each([
    ['full', true, '81.2.69.160', 'GB'],
    ['geo_then_mask', true, '81.2.69.0', 'GB'],
    ['mask', true, '81.2.69.0', null],
    ['drop', true, null, null],
    ['full', false, '81.2.69.160', null],
  ])('ipPolicy %s with resolveIp=%s stores ip %s and country %s', async (ipPolicy, resolveIp, ip, country) => {
    const { tenant, writeKey } = await newTenant({ ipPolicy, resolveIp });
    expect((await send(writeKey, [track('p1', { context: { ip: '81.2.69.160' } })])).status).toBe(200);
    const [r] = await rows(`SELECT ip, geo_country FROM events FINAL WHERE tenant_id = '${tenant}'`);
    expect(r).toEqual({ ip, geo_country: country });
  });

  it('infers accounts from company email domains only, and an explicit account wins', async () => {
    const { tenant, writeKey } = await newTenant();
    const res = await send(writeKey, [
      { type: 'identify', messageId: 'i-alice', userId: 'alice', traits: { email: 'alice@eng.acme.co.uk' } },
      { type: 'identify', messageId: 'i-bob', userId: 'bob', traits: { email: 'bob@gmail.com' } },
      { type: 'identify', messageId: 'i-carol', userId: 'carol', traits: { email: 'carol@initech.com' }, context: { groupId: 'acct-7' } },
    ]);
    expect(res.status).toBe(200);
    const events = await rows(`SELECT event_id, account_id, account_source FROM events FINAL WHERE tenant_id = '${tenant}' ORDER BY event_id`);
    expect(events).toEqual([
      { event_id: 'i-alice', account_id: 'acme.co.uk', account_source: 'email_domain' },
      { event_id: 'i-bob', account_id: null, account_source: null },
      { event_id: 'i-carol', account_id: 'acct-7', account_source: 'explicit' },
    ]);
    const accounts = await rows(`SELECT account_id, domain, source FROM accounts FINAL WHERE tenant_id = '${tenant}' ORDER BY account_id`);
    expect(accounts).toEqual([
      { account_id: 'acct-7', domain: null, source: 'explicit' },
      { account_id: 'acme.co.uk', domain: 'acme.co.uk', source: 'email_domain' },
    ]);
    const users = await rows(`SELECT user_id, email, account_id FROM users FINAL WHERE tenant_id = '${tenant}' ORDER BY user_id`);
    expect(users.map((u) => [u['user_id'], u['account_id']])).toEqual([
      ['alice', 'acme.co.uk'],
      ['bob', null],
      ['carol', 'acct-7'],
    ]);
  });
});

describe('anonymization (check 4)', () => {
  it('is forward only, stable per tenant, different across tenants, and leaves accounts alone', async () => {
    const a = await newTenant();
    const b = await newTenant();
    const identify = (id: string) => ({
      type: 'identify',
      messageId: id,
      userId: 'same-user',
      context: { groupId: 'acct-1' },
      traits: { email: 'same@acme.io' },
    });
    expect((await send(a.writeKey, [identify('before')])).status).toBe(200);

    const flipped = await admin('PATCH', `/v1/admin/tenants/${a.tenant}/flags`, { anonymizeIdentity: true });
    expect(flipped.body['anonymizeSince']).toEqual(expect.any(Number));
    await admin('PATCH', `/v1/admin/tenants/${b.tenant}/flags`, { anonymizeIdentity: true });

    expect((await send(a.writeKey, [identify('after-1'), identify('after-2')])).status).toBe(200);
    expect((await send(b.writeKey, [identify('other-tenant')])).status).toBe(200);

    const r = await rows(
      `SELECT tenant_id, event_id, user_id, identity_anonymized, key_version, account_id, received_at
       FROM events FINAL WHERE tenant_id IN ('${a.tenant}', '${b.tenant}') ORDER BY received_at, event_id`,
    );
    const byId = Object.fromEntries(r.map((x) => [x['event_id'], x]));
    expect(byId['before']).toMatchObject({ user_id: 'same-user', identity_anonymized: 0, key_version: 0 });
    const p1 = String(byId['after-1']?.['user_id']);
    expect(p1).toMatch(/^v1:[0-9a-f]{64}$/);
    expect(byId['after-1']).toMatchObject({ identity_anonymized: 1, key_version: 1 });
    expect(byId['after-2']?.['user_id']).toBe(p1);
    const pOther = String(byId['other-tenant']?.['user_id']);
    expect(pOther).toMatch(/^v1:/);
    expect(pOther).not.toBe(p1);
    for (const x of r) expect(x['account_id']).toBe('acct-1');
    expect(new Date(String(byId['before']?.['received_at'])).getTime()).toBeLessThan(Number(flipped.body['anonymizeSince']));
  });
});

describe('redelivery (check 5)', () => {
  it('stores each event_id once through FINAL when a batch is sent twice', async () => {
    const { tenant, writeKey } = await newTenant();
    const batch = Array.from({ length: 50 }, (_, i) => track(`dup-${i}`));
    expect((await send(writeKey, batch)).status).toBe(200);
    expect((await send(writeKey, batch)).status).toBe(200);
    const [r] = await rows(`SELECT count() AS n, uniqExact(event_id) AS u FROM events FINAL WHERE tenant_id = '${tenant}'`);
    expect(toNumber(r?.['n'])).toBe(50);
    expect(toNumber(r?.['u'])).toBe(50);
  });
});

describe('bad input (check 6)', () => {
  it('answers 400 with a message for invalid JSON', async () => {
    const { writeKey } = await newTenant();
    const res = await send(writeKey, [], { body: '{"batch": [1,' });
    expect(res.status).toBe(400);
    expect(String(res.body['message'])).toContain('invalid JSON');
  });

  it('answers 401 for a wrong write key', async () => {
    expect((await send('tl_not-a-real-key-000000000', [track('x')])).status).toBe(401);
  });

  it('answers 413 for a body over the limit', async () => {
    const { writeKey } = await newTenant();
    expect((await send(writeKey, [track('big', { properties: { pad: 'x'.repeat(600 * 1024) } })])).status).toBe(413);
  });

  it('rejects an oversized event by itself and stores its valid siblings', async () => {
    const { tenant, writeKey } = await newTenant();
    const res = await send(writeKey, [track('small-1'), track('huge', { properties: Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`pad${i}`, 'y'.repeat(7000)])) }), track('small-2')]);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ accepted: 2, rejected: 1 });
    const ids = await rows(`SELECT event_id FROM events FINAL WHERE tenant_id = '${tenant}' ORDER BY event_id`);
    expect(ids.map((r) => r['event_id'])).toEqual(['small-1', 'small-2']);
  });

  it('refuses a gzip bomb and stores nothing of it', async () => {
    const { tenant, writeKey } = await newTenant();
    const payload = JSON.stringify({ batch: [track('bomb', { properties: { pad: ' '.repeat(30 * 1024 * 1024) } })] });
    const res = await send(writeKey, [], { body: gzipSync(payload), headers: { 'content-encoding': 'gzip' } });
    expect(res.status).toBe(413);
    const [r] = await rows(`SELECT count() AS n FROM events WHERE tenant_id = '${tenant}'`);
    expect(toNumber(r?.['n'])).toBe(0);
  });
});

describe('analyst queries (POST /v1/admin/query)', () => {
  it.each([
    ["SELECT * FROM file('tenants.json', 'LineAsString')", 403, /file/],
    ["SELECT * FROM url('http://127.0.0.1:1/', 'LineAsString')", 403, /url/],
    ['SELECT count() FROM events SETTINGS max_result_rows = 100000000', 403, /settings/],
    ['DROP TABLE events', 403, /select/],
  ])('refuses %s', async (sql, status, reason) => {
    const res = await admin('POST', '/v1/admin/query', { sql });
    expect({ status: res.status, error: res.body['error'] }).toEqual({ status, error: 'query_not_allowed' });
    expect(String(res.body['message']).toLowerCase()).toMatch(reason);
    expect(toNumber((await rows('SELECT count() AS n FROM system.tables WHERE database = currentDatabase() AND name = \'events\''))[0]?.['n'])).toBe(1);
  });

  it('answers a plain SELECT, and ingestion keeps working afterwards', async () => {
    const res = await admin('POST', '/v1/admin/query', { sql: 'SELECT 1 AS one' });
    expect(res.body).toEqual({ rows: [{ one: 1 }] });
    const { tenant, writeKey } = await newTenant();
    expect((await send(writeKey, [track('after-query')])).status).toBe(200);
    expect(await rows(`SELECT event_id FROM events FINAL WHERE tenant_id = '${tenant}'`)).toEqual([{ event_id: 'after-query' }]);
  });
});

describe('anonymization switched on under load', () => {
  it('stores no clear identity for any event received at or after anonymizeSince', async () => {
    const { tenant, writeKey } = await newTenant();
    let n = 0;
    let sending = true;
    const sender = (async () => {
      while (sending) await send(writeKey, Array.from({ length: 20 }, () => track(`load-${n++}`, { userId: 'steady-user' })));
    })();
    await new Promise((r) => setTimeout(r, 150));
    const flipped = await admin('PATCH', `/v1/admin/tenants/${tenant}/flags`, { anonymizeIdentity: true });
    await new Promise((r) => setTimeout(r, 150));
    sending = false;
    await sender;
    const since = Number(flipped.body['anonymizeSince']);
    const r = await rows(
      `SELECT countIf(identity_anonymized = 0 AND toUnixTimestamp64Milli(received_at) >= ${since}) AS leaked,
              countIf(identity_anonymized = 1) AS anonymized, countIf(identity_anonymized = 0) AS clear
       FROM events FINAL WHERE tenant_id = '${tenant}'`,
    );
    expect(toNumber(r[0]?.['leaked'])).toBe(0);
    expect(toNumber(r[0]?.['anonymized'])).toBeGreaterThan(0);
    expect(toNumber(r[0]?.['clear'])).toBeGreaterThan(0);
  });
});

describe('URL scrub', () => {
  it('reaches the page fields in properties, titles and click labels', async () => {
    const { tenant, writeKey } = await newTenant();
    await send(writeKey, [
      {
        type: 'page',
        messageId: 'pii-page',
        userId: 'u1',
        name: 'Inbox',
        properties: { url: 'https://app.io/?email=alice@acme.com&token=abc', referrer: 'https://x.io/?password=hunter2', title: 'alice@acme.com' },
      },
      { type: 'click', messageId: 'pii-click', anonymousId: 'a1', element: { tag: 'BUTTON', label: 'bob@acme.com' } },
    ]);
    const stored = JSON.stringify(await rows(`SELECT * FROM events FINAL WHERE tenant_id = '${tenant}'`));
    for (const secret of ['alice@acme.com', 'bob@acme.com', 'hunter2', 'token=abc']) expect(stored).not.toContain(secret);
  });
});
