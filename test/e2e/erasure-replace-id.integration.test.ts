// Issue 15 item 3 through the embedded server (acceptance check 3): an erasure that replaces the
// subject's id. `delete` without deleteEvents keeps the user's events — sent in clear before its
// tenant anonymized, and under a pseudonym after — counted under one random id, and neither its
// clear id nor its pseudonym is left in any table, in system.mutations, or in the logs.
// `anonymize` with replaceId moves the user's scrubbed row to the new id.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toNumber } from '../../libs/clickhouse/client.js';
import { createLogger } from '../../libs/core/logger.js';
import { embeddedConfigSchema } from '../../services/embedded/config.js';
import { startEmbedded, type EmbeddedServer } from '../../services/embedded/embedded-runner.js';
import { CaptureStream } from '../support/capture-stream.js';
import { grepEveryColumn } from '../support/grep-tables.js';
import { eventually } from '../support/poll.js';

let server: EmbeddedServer;
let dataDir: string;
const logs = new CaptureStream();
const NEW_ID = /^anon-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'tracklane-replace-id-'));
  const config = embeddedConfigSchema.parse({
    PORT: '0',
    TRACKLANE_DATA_DIR: dataDir,
    TRACKLANE_ADMIN_TOKEN: randomBytes(24).toString('base64url'),
    TRACKLANE_MASTER_KEY: `base64:${randomBytes(32).toString('base64')}`,
  });
  server = await startEmbedded(config, createLogger({ level: 'debug', destination: logs }));
}, 120_000);

afterAll(async () => {
  await server?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

async function call(method: string, path: string, body?: unknown) {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${server.adminToken}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function send(writeKey: string, batch: Record<string, unknown>[]): Promise<void> {
  const res = await fetch(`${server.url}/v1/batch`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${writeKey}:`).toString('base64')}` },
    body: JSON.stringify({ batch }),
  });
  expect(res.status).toBe(200);
}

async function verified(requestId: string) {
  return eventually(async () => {
    const r = await call('GET', `/v1/admin/requests/${requestId}`);
    if (r.body['status'] === 'failed') throw new Error(`request failed: ${String(r.body['reason'])}`);
    return r.body['status'] === 'verified' ? r.body : undefined;
  }, 150_000, 'a verified receipt');
}

const rows = <T,>(sql: string) => server.analystQuery(sql) as Promise<T[]>;

/** Every place an id could be left: every column of every table, the mutations' texts, the lookup tables, the logs. */
async function whereFound(needles: readonly string[]): Promise<string[]> {
  const hits = await grepEveryColumn(rows, needles);
  for (const needle of needles) {
    const [m] = await rows<{ n: unknown }>(`SELECT count() AS n FROM system.mutations WHERE position(command, '${needle}') > 0`);
    if (toNumber(m?.n) > 0) hits.push(`system.mutations: ${needle}`);
    if (logs.text.includes(needle)) hits.push(`logs: ${needle}`);
  }
  const lookups = await rows<{ name: string; total_rows: unknown }>(
    `SELECT name, total_rows FROM system.tables WHERE database = currentDatabase() AND engine IN ('Set', 'Join')`,
  );
  for (const t of lookups) if (toNumber(t.total_rows) > 0) hits.push(`${t.name}: ${toNumber(t.total_rows)} rows`);
  return hits;
}

describe('erasures that replace the subject’s id (embedded)', () => {
  it('delete without deleteEvents: events kept under one new id, no clear id or pseudonym left anywhere', async () => {
    const TENANT = 'rp-a';
    const ERIN = 'erin.example@acme-rp.io';
    const { body } = await call('PUT', `/v1/admin/tenants/${TENANT}`);
    const writeKey = String(body['writeKey']);
    // history in clear (before anonymization), and an alias of someone else naming Erin as the previous id
    await send(writeKey, [
      { type: 'identify', messageId: 'rp-1', userId: ERIN, traits: { email: ERIN, firstName: 'Erinna' } },
      { type: 'track', messageId: 'rp-2', userId: ERIN, event: 'Report Exported' },
      { type: 'page', messageId: 'rp-3', userId: ERIN, name: 'Home' },
      { type: 'alias', messageId: 'rp-4', userId: 'erin-new-login', previousId: ERIN },
      { type: 'track', messageId: 'rp-5', userId: 'gina', event: 'Report Exported' },
    ]);
    expect((await call('PATCH', `/v1/admin/tenants/${TENANT}/flags`, { anonymizeIdentity: true })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 50)); // received after anonymizeSince: under the pseudonym
    await send(writeKey, [
      { type: 'identify', messageId: 'rp-6', userId: ERIN, traits: { firstName: 'Erinna' } },
      { type: 'track', messageId: 'rp-7', userId: ERIN, event: 'Report Shared' },
    ]);
    const pseudonyms = await rows<{ user_id: string }>(`SELECT DISTINCT user_id FROM events WHERE tenant_id = '${TENANT}' AND identity_anonymized = 1 AND event_id IN ('rp-6', 'rp-7')`);
    expect(pseudonyms).toEqual([{ user_id: expect.stringMatching(/^v1:[0-9a-f]{64}$/) }]);
    const PSEUDONYM = pseudonyms[0]?.user_id ?? '';

    const erased = await call('POST', `/v1/admin/tenants/${TENANT}/erasures`, { userIds: [ERIN], mode: 'delete' });
    expect(erased).toMatchObject({ status: 202, body: { replaceId: true, users: 1 } });
    const receipt = await verified(String(erased.body['requestId']));
    // the clear id (4 events: its own 3 and the alias naming it) and its pseudonym (2 events)
    expect(receipt).toMatchObject({ status: 'verified', commands: 2, rowsRewritten: { ids_replaced: 5, users: 2 } });

    const events = await rows<{ event_id: string; user_id: string | null; previous_id: string | null }>(
      `SELECT event_id, user_id, previous_id FROM events FINAL WHERE tenant_id = '${TENANT}' ORDER BY event_id`,
    );
    const newId = events.find((e) => e.event_id === 'rp-1')?.user_id ?? '';
    expect(newId).toMatch(NEW_ID);
    // counted under one id: every event kept, Erin's under the new one, everyone else's as sent
    expect(events).toEqual([
      { event_id: 'rp-1', user_id: newId, previous_id: null },
      { event_id: 'rp-2', user_id: newId, previous_id: null },
      { event_id: 'rp-3', user_id: newId, previous_id: null },
      { event_id: 'rp-4', user_id: 'erin-new-login', previous_id: newId },
      { event_id: 'rp-5', user_id: 'gina', previous_id: null },
      { event_id: 'rp-6', user_id: newId, previous_id: null },
      { event_id: 'rp-7', user_id: newId, previous_id: null },
    ]);
    expect(toNumber((await rows<{ n: unknown }>(`SELECT uniqExact(user_id) AS n FROM events FINAL WHERE tenant_id = '${TENANT}' AND user_id LIKE 'anon-%'`))[0]?.n)).toBe(1);
    // the identify snapshots moved with their events; the deleted user has no row under any id
    expect(await rows(`SELECT event_id, user_id FROM identify_snapshots FINAL WHERE tenant_id = '${TENANT}' ORDER BY event_id`)).toEqual([
      { event_id: 'rp-1', user_id: newId },
      { event_id: 'rp-6', user_id: newId },
    ]);
    expect(await rows(`SELECT user_id FROM users FINAL WHERE tenant_id = '${TENANT}' AND user_id NOT IN ('gina', 'erin-new-login')`)).toEqual([]);
    // the new id was kept (sealed) only until verified
    expect(await rows(`SELECT sealed FROM replaced_ids FINAL WHERE tenant_id = '${TENANT}'`)).toEqual([{ sealed: '' }, { sealed: '' }]);

    expect(logs.text).toContain('overwrite batch verified'); // the logs searched are the server's
    expect(await whereFound([ERIN, PSEUDONYM, PSEUDONYM.slice(3), 'Erinna'])).toEqual([]);
    // NOTE: the search finds what it looks for: the bystander is still there
    expect(await grepEveryColumn(rows, ['gina'])).not.toEqual([]);
  }, 240_000);

  it('anonymize with replaceId moves the user’s scrubbed row to its new id; without it the id stays', async () => {
    const TENANT = 'rp-b';
    const { body } = await call('PUT', `/v1/admin/tenants/${TENANT}`);
    await send(String(body['writeKey']), [
      { type: 'identify', messageId: 'rb-1', userId: 'hal@acme-rb.io', traits: { email: 'hal@acme-rb.io', firstName: 'Halbert', plan: 'pro' } },
      { type: 'identify', messageId: 'rb-2', userId: 'ivy', traits: { email: 'ivy@acme-rb.io', firstName: 'Ivyanne' } },
    ]);
    const replaced = await call('POST', `/v1/admin/tenants/${TENANT}/erasures`, { userIds: ['hal@acme-rb.io'], mode: 'anonymize', replaceId: true });
    const kept = await call('POST', `/v1/admin/tenants/${TENANT}/erasures`, { userIds: ['ivy'], mode: 'anonymize' });
    expect([replaced.body['replaceId'], kept.body['replaceId']]).toEqual([true, false]);
    expect(await verified(String(replaced.body['requestId']))).toMatchObject({ rowsRewritten: { ids_replaced: 1, users: 1 } });
    await verified(String(kept.body['requestId']));

    const users = await rows<{ user_id: string; email: string; first_name: string | null; plan: string | undefined }>(
      `SELECT user_id, email, first_name, traits['plan'] AS plan FROM users FINAL WHERE tenant_id = '${TENANT}' ORDER BY user_id`,
    );
    expect(users).toEqual([
      { user_id: expect.stringMatching(NEW_ID), email: expect.stringMatching(/@anonymized\.invalid$/), first_name: null, plan: '"pro"' },
      { user_id: 'ivy', email: expect.stringMatching(/@anonymized\.invalid$/), first_name: null, plan: '' },
    ]);
    expect(await rows(`SELECT user_id FROM events FINAL WHERE tenant_id = '${TENANT}' ORDER BY event_id`)).toEqual([{ user_id: users[0]?.user_id }, { user_id: 'ivy' }]);
    expect(await whereFound(['hal@acme-rb.io', 'Halbert'])).toEqual([]);
  }, 240_000);
});
