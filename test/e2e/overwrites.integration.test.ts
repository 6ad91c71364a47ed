// Issue 4 through the embedded server's REST API: a PATCH of a user's PII reaches `verified`
// and no stored copy of the old values remains; erasures; bad requests.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toNumber } from '../../libs/clickhouse/client.js';
import { createLogger } from '../../libs/core/logger.js';
import { embeddedConfigSchema } from '../../services/embedded/config.js';
import { startEmbedded, type EmbeddedServer } from '../../services/embedded/embedded-runner.js';
import { eventually } from '../support/poll.js';
import { grepEveryColumn } from '../support/grep-tables.js';
import { countsSince, stageCounts } from '../support/stage-counts.js';

let server: EmbeddedServer;
let dataDir: string;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'tracklane-overwrites-'));
  const config = embeddedConfigSchema.parse({
    PORT: '0',
    TRACKLANE_DATA_DIR: dataDir,
    TRACKLANE_ADMIN_TOKEN: randomBytes(24).toString('base64url'),
    TRACKLANE_MASTER_KEY: `base64:${randomBytes(32).toString('base64')}`,
  });
  server = await startEmbedded(config, createLogger({ level: 'silent' }));
}, 120_000);

afterAll(async () => {
  await server?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

async function call(method: string, path: string, body?: unknown, auth = `Bearer ${server.adminToken}`) {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: auth, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function tenantWithUser(tenant: string, userId: string, traits: Record<string, string>): Promise<string> {
  const { body } = await call('PUT', `/v1/admin/tenants/${tenant}`);
  const res = await fetch(`${server.url}/v1/batch`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${String(body['writeKey'])}:`).toString('base64')}` },
    body: JSON.stringify({
      batch: [
        { type: 'identify', messageId: `${tenant}-i1`, userId, traits },
        { type: 'track', messageId: `${tenant}-t1`, userId, event: 'Report Exported' },
        { type: 'identify', messageId: `${tenant}-i2`, userId, traits: { ...traits, plan: 'pro' } },
      ],
    }),
  });
  expect(res.status).toBe(200);
  return String(body['writeKey']);
}

async function verified(requestId: string) {
  return eventually(async () => {
    const r = await call('GET', `/v1/admin/requests/${requestId}`);
    if (r.body['status'] === 'failed') throw new Error(`request failed: ${String(r.body['reason'])}`);
    return r.body['status'] === 'verified' ? r.body : undefined;
  }, 150_000, 'a verified receipt');
}

/** Every column of every table holding one of the needles (through the analyst session). */
const grepEverything = (needles: string[]) => grepEveryColumn(<T,>(sql: string) => server.analystQuery(sql) as Promise<T[]>, needles);

describe('retroactive overwrites over the admin API (embedded)', () => {
  it('a PATCH of email, first and last name is verified and leaves no old copy anywhere', async () => {
    await tenantWithUser('ow-a', 'user-1', { email: 'old.alice@acme-old.io', firstName: 'Alicia', lastName: 'Oldname' });
    const patched = await call('PATCH', '/v1/admin/tenants/ow-a/users/user-1', { set: { email: 'alice@acme.io', firstName: 'Alice', lastName: 'Liddell' } });
    expect(patched.status).toBe(202);
    const receipt = await verified(String(patched.body['requestId']));
    expect(receipt).toMatchObject({ status: 'verified', commands: 1, verifiedAt: expect.any(Number) });

    expect(await server.analystQuery(`SELECT email, first_name, last_name FROM users FINAL WHERE tenant_id = 'ow-a'`)).toEqual([
      { email: 'alice@acme.io', first_name: 'Alice', last_name: 'Liddell' },
    ]);
    const [physical] = (await server.analystQuery(`SELECT count() AS n FROM users WHERE tenant_id = 'ow-a' AND user_id = 'user-1'`)) as { n: unknown }[];
    expect(toNumber(physical?.n)).toBe(1);
    expect(await grepEverything(['old.alice@acme-old.io', 'Alicia', 'Oldname'])).toEqual([]);
    // the events are kept, their trait snapshots rewritten
    const events = (await server.analystQuery(`SELECT event_id, traits FROM events_with_traits WHERE tenant_id = 'ow-a' ORDER BY event_id`)) as { traits: Record<string, string> }[];
    expect(events).toHaveLength(3);
    expect(events[0]?.traits['email']).toBe('"alice@acme.io"');
  }, 200_000);

  it('an anonymize erasure scrubs the users it names and leaves others alone', async () => {
    await tenantWithUser('ow-b', 'user-2', { email: 'bob@acme-b.io', firstName: 'Bobby', lastName: 'Tables' });
    const erased = await call('POST', '/v1/admin/tenants/ow-b/erasures', { userIds: ['user-2'], mode: 'anonymize' });
    expect(erased.status).toBe(202);
    await verified(String(erased.body['requestId']));
    expect(await grepEverything(['bob@acme-b.io', 'Bobby'])).toEqual([]);
    const [user] = (await server.analystQuery(`SELECT email, first_name FROM users FINAL WHERE tenant_id = 'ow-b'`)) as { email: string; first_name: string | null }[];
    expect(user?.email).toMatch(/anonymized/);
    expect(user?.first_name).toBeNull();
  }, 200_000);

  it('delete with deleteEvents and suppress removes the user, its events and its PII, then drops and counts its later events', async () => {
    const writeKey = await tenantWithUser('ow-c', 'user-3', { email: 'carol@acme-c.io', firstName: 'Caroline', lastName: 'Gone' });
    const erased = await call('POST', '/v1/admin/tenants/ow-c/erasures', { userIds: ['user-3'], mode: 'delete', deleteEvents: true, suppress: true });
    expect(erased.status).toBe(202);
    const requestId = String(erased.body['requestId']);
    expect(await verified(requestId)).toMatchObject({ rowsRewritten: { users: 1, events_deleted: 3 } });
    expect(await server.analystQuery(`SELECT user_id FROM users FINAL WHERE tenant_id = 'ow-c'`)).toEqual([]);
    expect(await server.analystQuery(`SELECT event_id FROM events WHERE tenant_id = 'ow-c'`)).toEqual([]);
    expect(await grepEverything(['carol@acme-c.io', 'Caroline'])).toEqual([]);

    // later events: the suppressed user's are dropped and counted, a bystander's are kept
    const before = await stageCounts(server.adminUrl);
    const res = await fetch(`${server.url}/v1/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${writeKey}:`).toString('base64')}` },
      body: JSON.stringify({
        batch: [
          { type: 'track', messageId: 'ow-c-late-1', userId: 'user-3', event: 'Came Back' },
          { type: 'identify', messageId: 'ow-c-late-2', userId: 'user-3', traits: { email: 'carol@acme-c.io' } },
          { type: 'page', messageId: 'ow-c-late-3', userId: 'user-3', name: 'Home' },
          { type: 'track', messageId: 'ow-c-late-4', userId: 'bystander', event: 'Stayed' },
        ],
      }),
    });
    expect(res.status).toBe(200);
    // counted as dropped by the sink stage, in the answer and in /metrics, never as accepted
    expect(await res.json()).toEqual({ success: true, accepted: 1, dropped: 3 });
    expect(countsSince(before, await stageCounts(server.adminUrl), ['enrich', 'anonymize', 'sink'])).toEqual({
      enrich: { in: 4, out: 4, dropped: 0, deadLetters: 0, retries: 0 },
      anonymize: { in: 4, out: 4, dropped: 0, deadLetters: 0, retries: 0 },
      sink: { in: 4, out: 1, dropped: 3, deadLetters: 0, retries: 0 },
    });
    const receipt = await eventually(async () => {
      const r = await call('GET', `/v1/admin/requests/${requestId}`);
      return r.body['suppressedEvents'] === 3 ? r.body : undefined;
    }, 30_000, 'three suppressed events counted');
    expect(receipt['status']).toBe('verified');
    expect(await server.analystQuery(`SELECT event_id, user_id FROM events FINAL WHERE tenant_id = 'ow-c'`)).toEqual([{ event_id: 'ow-c-late-4', user_id: 'bystander' }]);
    expect(await grepEverything(['carol@acme-c.io'])).toEqual([]);
  }, 200_000);

  it('an erasure named by the clear user id also reaches the history an anonymizing tenant stored under its pseudonym', async () => {
    const { body } = await call('PUT', '/v1/admin/tenants/ow-d');
    expect((await call('PATCH', '/v1/admin/tenants/ow-d/flags', { anonymizeIdentity: true })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 50)); // received after anonymizeSince
    const res = await fetch(`${server.url}/v1/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${String(body['writeKey'])}:`).toString('base64')}` },
      body: JSON.stringify({ batch: [{ type: 'identify', messageId: 'ow-d-1', userId: 'dora', traits: { email: 'dora@acme-d.io', firstName: 'Dorothea' } }] }),
    });
    expect(res.status).toBe(200);
    const [stored] = (await server.analystQuery(`SELECT user_id, identity_anonymized FROM events WHERE tenant_id = 'ow-d'`)) as { user_id: string; identity_anonymized: number }[];
    expect(stored).toMatchObject({ user_id: expect.stringMatching(/^v1:[0-9a-f]{64}$/), identity_anonymized: 1 });

    const erased = await call('POST', '/v1/admin/tenants/ow-d/erasures', { userIds: ['dora'], mode: 'anonymize' });
    const receipt = await verified(String(erased.body['requestId']));
    expect(receipt).toMatchObject({ commands: 2, rowsRewritten: { events: 1, users: 1 } }); // the clear id and its v1 pseudonym
    expect(await grepEverything(['dora@acme-d.io', 'Dorothea'])).toEqual([]);
    const users = (await server.analystQuery(`SELECT user_id, email FROM users FINAL WHERE tenant_id = 'ow-d'`)) as { user_id: string; email: string }[];
    expect(users).toEqual([{ user_id: stored?.user_id, email: expect.stringMatching(/anonymized/) }]);
  }, 200_000);

  it.each([
    ['PATCH', '/v1/admin/tenants/ow-a/users/user-1', { set: {} }, 400],
    ['PATCH', '/v1/admin/tenants/nobody/users/u', { set: { email: 'x@y.z' } }, 404],
    ['POST', '/v1/admin/tenants/ow-a/erasures', { userIds: ['u'], mode: 'anonymize', deleteEvents: true }, 400],
    ['POST', '/v1/admin/tenants/ow-a/erasures', { userIds: [], mode: 'delete' }, 400],
    ['GET', '/v1/admin/requests/00000000-0000-0000-0000-000000000000', undefined, 404],
    ['GET', '/v1/admin/requests/not-a-uuid', undefined, 400],
  ])('%s %s → %i', async (method, path, body, status) => {
    expect((await call(method, path, body)).status).toBe(status);
  });

  it('needs the admin token', async () => {
    expect((await call('PATCH', '/v1/admin/tenants/ow-a/users/user-1', { set: { email: 'x@y.z' } }, 'Bearer nope')).status).toBe(401);
  });
});
