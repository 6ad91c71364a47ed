// Issue 15, acceptance 2 on the embedded server (chDB): a tenant that opted in to anonymization
// asks for its history to be translated; once the receipt is verified, a search of every
// String/Map/Array column of every table finds none of the clear ids it sent before the opt-in,
// the rewritten rows carry the current version's pseudonym (the anonymizer's own, read back from
// events sent after the opt-in), identity_anonymized = 1 and key_version; another tenant's clear
// ids are untouched; an erasure afterwards still reaches the translated history; a request
// accepted before a crash runs at the next start.
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClickHouse, toNumber } from '../../libs/clickhouse/client.js';
import { createTranslationReceipts, pendingTranslation } from '../../libs/compactor/translation-receipts.js';
import { deadLetterPayload, insertDeadLetters } from '../../libs/clickhouse/tables/dead-letters.js';
import { createLogger } from '../../libs/core/logger.js';
import { embeddedConfigSchema } from '../../services/embedded/config.js';
import { startEmbedded, type EmbeddedServer } from '../../services/embedded/embedded-runner.js';
import { grepEveryColumn } from '../support/grep-tables.js';
import { eventually } from '../support/poll.js';

let server: EmbeddedServer;
let dataDir: string;
const adminToken = randomBytes(24).toString('base64url');
const masterKey = `base64:${randomBytes(32).toString('base64')}`;
const start = () =>
  startEmbedded(embeddedConfigSchema.parse({ PORT: '0', TRACKLANE_DATA_DIR: dataDir, TRACKLANE_ADMIN_TOKEN: adminToken, TRACKLANE_MASTER_KEY: masterKey }), createLogger({ level: 'silent' }));

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'tracklane-history-'));
  server = await start();
}, 120_000);

afterAll(async () => {
  await server?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

async function call(method: string, path: string, body?: unknown) {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${adminToken}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function send(writeKey: string, batch: object[]) {
  const res = await fetch(`${server.url}/v1/batch`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${writeKey}:`).toString('base64')}` },
    body: JSON.stringify({ batch }),
  });
  expect(res.status).toBe(200);
}

const q = <T,>(sql: string) => server.analystQuery(sql) as Promise<T[]>;
interface EventRow { event_id: string; user_id: string | null; previous_id: string | null; identity_anonymized: number; key_version: number }
const events = (tenant: string) => q<EventRow>(`SELECT event_id, user_id, previous_id, identity_anonymized, key_version FROM events FINAL WHERE tenant_id = '${tenant}' ORDER BY event_id`);
const stored = (tenant: string, n: number) => eventually(async () => ((await events(tenant)).length >= n ? events(tenant) : undefined), 30_000, `${n} events of ${tenant}`);

const receiptOf = (requestId: string) =>
  eventually(async () => {
    const r = await call('GET', `/v1/admin/requests/${requestId}`);
    if (r.body['status'] === 'failed') throw new Error(`request failed: ${String(r.body['reason'])}`);
    return r.body['status'] === 'verified' ? r.body : undefined;
  }, 120_000, 'the request verified');

const A = 'hist-a';
const B = 'hist-b';
// clear ids A sends before its opt-in (user ids, an alias's previous id, a PII trait's value)
const ALICE = 'alice.hist@example.com';
const BOB = 'bob-hist-42';
const OLD_ID = 'legacy-crm-7781';
const ALICE_PHONE = '+44 7700 900123';
const CAROL = 'carol.other@example.com';

describe('opt-in translation of history (embedded)', () => {
  it('translates a tenant\'s pre-opt-in ids everywhere, leaves another tenant alone, and later erasures still reach them', async () => {
    const keyA = String((await call('PUT', `/v1/admin/tenants/${A}`)).body['writeKey']);
    const keyB = String((await call('PUT', `/v1/admin/tenants/${B}`)).body['writeKey']);
    expect((await call('PATCH', `/v1/admin/tenants/${A}/flags`, { piiTraits: ['phone'] })).status).toBe(200);

    // before the opt-in: clear ids in events, snapshots, users, an alias's previous_id, a dead letter
    await send(keyA, [
      { type: 'identify', messageId: 'a1', userId: ALICE, traits: { email: ALICE, phone: ALICE_PHONE, plan: 'pro' } },
      { type: 'track', messageId: 'a2', userId: ALICE, event: 'Report Exported' },
      { type: 'alias', messageId: 'a3', userId: BOB, previousId: OLD_ID },
      { type: 'identify', messageId: 'a4', userId: BOB, traits: { plan: 'free' } },
      { type: 'page', messageId: 'a5', anonymousId: 'device-1', name: 'Home' },
    ]);
    await send(keyB, [{ type: 'identify', messageId: 'b1', userId: CAROL, traits: { email: CAROL, phone: '+1 555 0100' } }]);
    await stored(A, 5);
    await stored(B, 1);
    const poisonA = deadLetterPayload({ input: { tenant_id: A, user_id: ALICE, type: 'track' } });
    const poisonB = deadLetterPayload({ input: { tenant_id: B, user_id: CAROL, type: 'track' } });
    await insertDeadLetters(server.clickhouse, [
      { tenant_id: A, received_at: Date.now() - 1_000, stage: 'enrich', reason: 'poison', event_id: 'dl-a', payload: poisonA, error: 'bad record' },
      { tenant_id: B, received_at: Date.now() - 1_000, stage: 'enrich', reason: 'poison', event_id: 'dl-b', payload: poisonB, error: 'bad record' },
    ]);

    // not while the tenant does not anonymize
    expect((await call('POST', `/v1/admin/tenants/${A}/pseudonymize-history`)).status).toBe(409);
    expect((await call('POST', '/v1/admin/tenants/no-such/pseudonymize-history')).status).toBe(404);

    const flags = await call('PATCH', `/v1/admin/tenants/${A}/flags`, { anonymizeIdentity: true });
    const since = Number(flags.body['anonymizeSince']);
    await eventually(() => Date.now() > since + 50, 10_000, 'the opt-in stamp passed');
    // after the opt-in: the anonymizer's own pseudonyms of both users, and of the phone trait
    await send(keyA, [
      { type: 'identify', messageId: 'p1', userId: ALICE, traits: { phone: ALICE_PHONE, plan: 'team' } },
      { type: 'track', messageId: 'p2', userId: BOB, event: 'Signed In' },
      { type: 'track', messageId: 'p3', userId: OLD_ID, event: 'Signed In' },
    ]);
    const after = new Map((await stored(A, 8)).map((e) => [e.event_id, e]));
    const pseudonymOf = (eventId: string): string => String(after.get(eventId)?.user_id);
    const pAlice = pseudonymOf('p1');
    const pBob = pseudonymOf('p2');
    const pOld = pseudonymOf('p3');
    expect(pAlice).toMatch(/^v1:[0-9a-f]{64}$/);
    const [hashedPhone] = await q<{ v: string }>(`SELECT traits['phone'] AS v FROM identify_snapshots FINAL WHERE tenant_id = '${A}' AND event_id = 'p1'`);
    expect(hashedPhone?.v).toMatch(/^"v1:[0-9a-f]{64}"$/);
    // the pre-opt-in history is still in clear
    expect(await grepEveryColumn(q, [ALICE])).not.toEqual([]);

    const accepted = await call('POST', `/v1/admin/tenants/${A}/pseudonymize-history`);
    expect(accepted.status).toBe(202);
    const requestId = String(accepted.body['requestId']);
    const receipt = await receiptOf(requestId);
    expect(receipt).toMatchObject({ kind: 'pseudonymize-history', tenantId: A, keyVersion: 1, anonymizeSince: since, reason: null });
    expect(receipt['rowsRewritten']).toMatchObject({ events: 5, identify_snapshots: 2, users: 2, dead_letters_deleted: 1 });

    // acceptance 2: no clear id of A sent before the opt-in in any String/Map/Array column of any table
    expect(await grepEveryColumn(q, [ALICE, BOB, OLD_ID, ALICE_PHONE])).toEqual([]);
    const mutations = await q<{ n: unknown }>(`SELECT count() AS n FROM system.mutations WHERE position(command, '${ALICE}') > 0 OR position(command, '${OLD_ID}') > 0`);
    expect(toNumber(mutations[0]?.n)).toBe(0);
    // the lookup tables (Join/Set, not searchable) are emptied
    const lookups = await q<{ n: unknown }>(`SELECT sum(total_rows) AS n FROM system.tables WHERE database = 'default' AND name LIKE 'overwrite_translation_%'`);
    expect(toNumber(lookups[0]?.n)).toBe(0);

    // the rewritten rows: the current version's pseudonym, identity_anonymized = 1, key_version = 1
    const rows = new Map((await events(A)).map((e) => [e.event_id, e]));
    const want = (user_id: string | null, previous_id: string | null = null) => ({ user_id, previous_id, identity_anonymized: 1, key_version: 1 });
    expect(rows.get('a1')).toMatchObject(want(pAlice));
    expect(rows.get('a2')).toMatchObject(want(pAlice));
    expect(rows.get('a3')).toMatchObject(want(pBob, pOld));
    expect(rows.get('a4')).toMatchObject(want(pBob));
    expect(rows.get('a5')).toMatchObject(want(null));
    const snaps = await q<{ event_id: string; user_id: string; phone: string; email: string }>(
      `SELECT event_id, user_id, traits['phone'] AS phone, traits['email'] AS email FROM identify_snapshots FINAL WHERE tenant_id = '${A}' ORDER BY event_id`,
    );
    expect(snaps.find((s) => s.event_id === 'a1')).toMatchObject({ user_id: pAlice, phone: hashedPhone?.v });
    // users: re-keyed, merged with the pseudonym's row (first seen before the opt-in), no clear row
    const users = await q<{ user_id: string; phone: string | null; identity_anonymized: number; first_seen: string; plan: string }>(
      `SELECT user_id, phone, identity_anonymized, toString(first_seen) AS first_seen, traits['plan'] AS plan FROM users FINAL WHERE tenant_id = '${A}' ORDER BY user_id`,
    );
    expect(users.map((u) => u.user_id).sort()).toEqual([pAlice, pBob].sort());
    const alice = users.find((u) => u.user_id === pAlice);
    expect(alice).toMatchObject({ identity_anonymized: 1, plan: '"team"', phone: JSON.parse(String(hashedPhone?.v)) });
    const [firstA1] = await q<{ t: string }>(`SELECT toString(received_at) AS t FROM events FINAL WHERE tenant_id = '${A}' AND event_id = 'a1'`);
    expect(String(alice?.first_seen) <= String(firstA1?.t)).toBe(true);

    // another tenant: untouched
    expect(await events(B)).toMatchObject([{ event_id: 'b1', user_id: CAROL, identity_anonymized: 0, key_version: 0 }]);
    expect(await q(`SELECT user_id, email FROM users FINAL WHERE tenant_id = '${B}'`)).toEqual([{ user_id: CAROL, email: CAROL }]);
    expect(await q(`SELECT event_id FROM dead_letters WHERE tenant_id IN ('${A}', '${B}')`)).toEqual([{ event_id: 'dl-b' }]);

    // run again: nothing left to do, verified again
    const again = await call('POST', `/v1/admin/tenants/${A}/pseudonymize-history`);
    expect((await receiptOf(String(again.body['requestId'])))['rowsRewritten']).toMatchObject({ events: 0, users: 0 });

    // an erasure afterwards finds the translated history under the pseudonym
    const erasure = await call('POST', `/v1/admin/tenants/${A}/erasures`, { userIds: [ALICE], mode: 'delete', deleteEvents: true });
    expect(erasure.status).toBe(202);
    await receiptOf(String(erasure.body['requestId']));
    const left = await q<{ n: unknown }>(`SELECT count() AS n FROM events WHERE tenant_id = '${A}' AND user_id = '${pAlice}'`);
    expect(toNumber(left[0]?.n)).toBe(0);
    expect((await q(`SELECT user_id FROM users FINAL WHERE tenant_id = '${A}' AND user_id = '${pAlice}'`)).length).toBe(0);
  }, 300_000);

  it('a request accepted before a crash runs at the next start (its pending receipt is its journal)', async () => {
    const flags = await call('PATCH', `/v1/admin/tenants/${B}/flags`, { anonymizeIdentity: true });
    const since = Number(flags.body['anonymizeSince']);
    await server.stop();
    // NOTE: written while no server runs, as if it had crashed right after accepting the request
    const requestId = randomUUID();
    const ch = createClickHouse({ dataDir: join(dataDir, 'clickhouse') });
    try {
      await createTranslationReceipts(ch).writePending(pendingTranslation(requestId, B, since, Date.now()));
    } finally {
      await ch.close();
    }
    server = await start();
    expect(await receiptOf(requestId)).toMatchObject({ kind: 'pseudonymize-history', tenantId: B, rowsRewritten: { events: 1, users: 1, dead_letters_deleted: 1 } });
    expect(await grepEveryColumn(q, [CAROL])).toEqual([]);
    expect(await events(B)).toMatchObject([{ event_id: 'b1', user_id: expect.stringMatching(/^v1:[0-9a-f]{64}$/), identity_anonymized: 1, key_version: 1 }]);
  }, 180_000);
});
