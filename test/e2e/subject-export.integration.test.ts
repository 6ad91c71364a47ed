// Subject access export (issue 15, item 4) on the embedded server (chDB): a tenant records a user
// in clear, switches anonymization on and records more, then overwrites and erases; the export
// of that user returns both parts of its history, its profile, its account and every receipt
// about it — and nothing of another user, whatever id is asked for (others' pseudonyms, ids that
// differ by a character, quotes, percent signs, blanks).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toNumber } from '../../libs/clickhouse/client.js';
import { createLogger } from '../../libs/core/logger.js';
import { embeddedConfigSchema } from '../../services/embedded/config.js';
import { startEmbedded, type EmbeddedServer } from '../../services/embedded/embedded-runner.js';
import { spawnTsx } from '../support/child-process.js';
import { eventually } from '../support/poll.js';

type Line = Record<string, unknown> & { kind: string };

const TAG = randomBytes(4).toString('hex');
const TENANT = `exp-${TAG}`;
const OTHER_TENANT = `exp-other-${TAG}`;
const USER = `alice-${TAG}`;
/** ids a careless query would mix up with USER's */
const LOOKALIKES = [`${USER}0`, `Alice-${TAG}`, `alice-${TAG.slice(0, 7)}`, `${USER}%`, `${USER}'`, `${USER}"; --`, `${USER}/x`];
const NEIGHBOUR = LOOKALIKES[0] as string;
const ACCOUNT = `acct-${TAG}`;

const MASTER_KEY = `base64:${randomBytes(32).toString('base64')}`;
let server: EmbeddedServer;
let dataDir: string;
let writeKey: string;
let otherWriteKey: string;
let adminKey: string;
let readKey: string;
let otherAdminKey: string;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'tracklane-export-'));
  const config = embeddedConfigSchema.parse({
    PORT: '0',
    TRACKLANE_DATA_DIR: dataDir,
    TRACKLANE_ADMIN_TOKEN: randomBytes(24).toString('base64url'),
    TRACKLANE_MASTER_KEY: MASTER_KEY,
  });
  server = await startEmbedded(config, createLogger({ level: 'silent' }));
  writeKey = String((await operator('PUT', `/v1/admin/tenants/${TENANT}`)).body['writeKey']);
  otherWriteKey = String((await operator('PUT', `/v1/admin/tenants/${OTHER_TENANT}`)).body['writeKey']);
  adminKey = String((await operator('POST', `/v1/admin/tenants/${TENANT}/api-keys`, { name: 'admins', scopes: ['admin'] })).body['key']);
  readKey = String((await operator('POST', `/v1/admin/tenants/${TENANT}/api-keys`, { name: 'analysts', scopes: ['read'] })).body['key']);
  otherAdminKey = String((await operator('POST', `/v1/admin/tenants/${OTHER_TENANT}/api-keys`, { name: 'admins', scopes: ['admin'] })).body['key']);
}, 120_000);

afterAll(async () => {
  await server?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

async function call(token: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}
const operator = (method: string, path: string, body?: unknown) => call(server.adminToken, method, path, body);

async function send(key: string, batch: unknown[]): Promise<void> {
  const res = await fetch(`${server.url}/v1/batch`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${key}:`).toString('base64')}`, 'content-type': 'application/json' },
    body: JSON.stringify({ batch }),
  });
  expect(res.status).toBe(200);
  expect(((await res.json()) as { accepted: number }).accepted).toBe(batch.length);
}

/** the export as its raw path segment (already encoded) asks for it */
async function exportRaw(token: string, tenantId: string, encodedUserId: string): Promise<{ status: number; type: string | null; lines: Line[] }> {
  const res = await fetch(`${server.url}/v1/admin/tenants/${tenantId}/users/${encodedUserId}/export`, { headers: { authorization: `Bearer ${token}` } });
  const text = await res.text();
  const lines = res.status === 200 ? text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Line) : [];
  return { status: res.status, type: res.headers.get('content-type'), lines };
}
const exportOf = (userId: string, token = adminKey, tenantId = TENANT) => exportRaw(token, tenantId, encodeURIComponent(userId));

const ofKind = (lines: Line[], kind: string) => lines.filter((l) => l.kind === kind);
const eventIds = (lines: Line[]) => ofKind(lines, 'event').map((l) => String(l['event_id'])).sort();

async function storedCount(where: string, params: Record<string, unknown>): Promise<number> {
  const rs = await server.clickhouse.query({ query: `SELECT count() AS n FROM events FINAL WHERE ${where}`, query_params: params, format: 'JSONEachRow' });
  return toNumber((await rs.json<{ n: unknown }>())[0]?.n ?? 0);
}

async function verified(requestId: string): Promise<void> {
  await eventually(
    async () => {
      const r = await operator('GET', `/v1/admin/requests/${requestId}`);
      if (r.body['status'] === 'failed') throw new Error(`request failed: ${String(r.body['reason'])}`);
      return r.body['status'] === 'verified';
    },
    150_000,
    `request ${requestId} verified`,
  );
}

/** the ids sent per user, in clear and after the switch */
const sent = { clear: [] as string[], pseudonymized: [] as string[], neighbour: [] as string[] };
let neighbourPseudonym = '';
let userPseudonym = '';

describe('subject access export (embedded)', () => {
  it('records a user in clear, then pseudonymized, overwrites and erases it', async () => {
    const clear = [
      { type: 'identify', messageId: `c-id-${TAG}`, userId: USER, traits: { email: `alice.${TAG}@example.org`, firstName: 'Alice', plan: 'pro' } },
      { type: 'group', messageId: `c-gr-${TAG}`, userId: USER, groupId: ACCOUNT, traits: { name: 'Acme' } },
      { type: 'track', messageId: `c-tr-${TAG}`, userId: USER, event: 'Report Exported', properties: { format: 'csv' } },
      { type: 'page', messageId: `c-pg-${TAG}`, userId: USER, name: 'Home' },
    ];
    sent.clear.push(...clear.map((m) => m.messageId));
    const lookalikes = LOOKALIKES.map((id, i) => ({ type: 'track', messageId: `l-${i}-${TAG}`, userId: id, event: 'Lookalike' }));
    sent.neighbour.push(...lookalikes.map((m) => m.messageId));
    await send(writeKey, [...clear, ...lookalikes]);
    // the same id in another tenant is another person
    await send(otherWriteKey, [{ type: 'track', messageId: `o-1-${TAG}`, userId: USER, event: 'Elsewhere' }]);

    const flags = await call(adminKey, 'PATCH', `/v1/admin/tenants/${TENANT}/flags`, { anonymizeIdentity: true });
    expect(flags.status).toBe(200);
    const since = Number(flags.body['anonymizeSince']);
    await eventually(() => Date.now() > since + 5, 10_000, 'anonymizeSince passed');

    const later = [
      { type: 'identify', messageId: `p-id-${TAG}`, userId: USER, traits: { firstName: 'Alice', plan: 'enterprise' } },
      { type: 'track', messageId: `p-tr-${TAG}`, userId: USER, event: 'Dashboard Viewed' },
    ];
    sent.pseudonymized.push(...later.map((m) => m.messageId));
    await send(writeKey, [...later, { type: 'track', messageId: `n-p-${TAG}`, userId: NEIGHBOUR, event: 'Pseudonymized neighbour' }]);
    sent.neighbour.push(`n-p-${TAG}`);

    const pseudonymOf = async (eventId: string) => {
      const rs = await server.clickhouse.query({
        query: 'SELECT user_id FROM events FINAL WHERE tenant_id = {t:String} AND event_id = {e:String} AND identity_anonymized = 1',
        query_params: { t: TENANT, e: eventId },
        format: 'JSONEachRow',
      });
      return String((await rs.json<{ user_id: string }>())[0]?.user_id ?? '');
    };
    userPseudonym = await pseudonymOf(`p-tr-${TAG}`);
    neighbourPseudonym = await pseudonymOf(`n-p-${TAG}`);
    expect(userPseudonym).toMatch(/^v1:[0-9a-f]{64}$/);
    expect(neighbourPseudonym).toMatch(/^v1:[0-9a-f]{64}$/);
    expect(await storedCount('tenant_id = {t:String}', { t: TENANT })).toBe(sent.clear.length + sent.pseudonymized.length + sent.neighbour.length);

    const overwrite = await call(adminKey, 'PATCH', `/v1/admin/tenants/${TENANT}/users/${encodeURIComponent(USER)}`, { set: { plan: 'free' } });
    expect(overwrite.status).toBe(202);
    // an erasure of the user and of its neighbour in one request: one command (and receipt) each
    const erasure = await call(adminKey, 'POST', `/v1/admin/tenants/${TENANT}/erasures`, { userIds: [USER, NEIGHBOUR], mode: 'anonymize' });
    expect(erasure.status).toBe(202);
    await verified(String(overwrite.body['requestId']));
    await verified(String(erasure.body['requestId']));
  }, 240_000);

  it("returns all of the user's history, clear and pseudonymized, its profile, account and receipts — and nothing of another user", async () => {
    const { status, type, lines } = await exportOf(USER);
    expect(status).toBe(200);
    expect(type).toMatch(/^application\/x-ndjson/);
    expect(lines.at(-1)?.kind).toBe('summary');
    expect(ofKind(lines, 'summary')).toHaveLength(1);

    expect(eventIds(lines)).toEqual([...sent.clear, ...sent.pseudonymized].sort());
    for (const e of ofKind(lines, 'event')) {
      expect(e['tenant_id']).toBe(TENANT);
      expect([USER, userPseudonym]).toContain(e['user_id']);
      expect(e['storedAs']).toBe(e['user_id'] === USER ? 'clear' : 'pseudonym');
      // the erasure scrubbed the identify traits everywhere; the export shows what is stored
      expect(JSON.stringify(e)).not.toContain(`alice.${TAG}@example.org`);
    }
    // an identify's trait snapshot (kept in identify_snapshots) comes with its event, as the overwrite left it
    expect(ofKind(lines, 'event').find((e) => e['event_id'] === `p-id-${TAG}`)?.['traits']).toMatchObject({ plan: '"free"' });

    const profiles = ofKind(lines, 'profile');
    expect(profiles.map((p) => [p['user_id'], p['storedAs']]).sort()).toEqual([[USER, 'clear'], [userPseudonym, 'pseudonym']].sort());
    const clearProfile = profiles.find((p) => p['storedAs'] === 'clear');
    expect(clearProfile).toMatchObject({ first_name: null, account_id: ACCOUNT });
    expect(String(clearProfile?.['email'])).toMatch(/@anonymized\.invalid$/);
    expect(ofKind(lines, 'account').map((a) => a['account_id'])).toEqual([ACCOUNT]);

    // the overwrite and the user's erasure command, each with the compactor's command for the pseudonym
    const receipts = ofKind(lines, 'receipt');
    expect(receipts.map((r) => r['mode']).sort()).toEqual(['anonymize', 'anonymize', 'overwrite', 'overwrite']);
    expect(receipts.every((r) => r['status'] === 'verified' && r['subject'] === 'user')).toBe(true);
    expect(receipts.map((r) => String(r['request_id']).replace(/^[0-9a-f-]{36}/, '')).sort()).toEqual(['', '/0', '/0/p1', '/p1']);

    expect(lines.at(-1)).toMatchObject({
      kind: 'summary',
      tenantId: TENANT,
      userId: USER,
      profiles: 2,
      accounts: 1,
      events: sent.clear.length + sent.pseudonymized.length,
      eventsStoredAs: { clear: sent.clear.length, pseudonym: sent.pseudonymized.length },
      receipts: 4,
      pseudonyms: 1,
    });
    // nothing of the lookalikes, the neighbour, or the same id in the other tenant
    const text = JSON.stringify(lines);
    for (const id of [...sent.neighbour, `o-1-${TAG}`, neighbourPseudonym]) expect(text).not.toContain(id);
  });

  it("asked for another user's pseudonym, or for lookalike ids, returns nothing of the user", async () => {
    const asPseudonym = await exportOf(neighbourPseudonym);
    expect(asPseudonym.status).toBe(200);
    // the neighbour's pseudonymized rows are not stored in clear under that string, and its alias receipt is not this id's
    expect(asPseudonym.lines).toHaveLength(1);
    expect(asPseudonym.lines[0]).toMatchObject({ kind: 'summary', profiles: 0, accounts: 0, events: 0, receipts: 0 });
    const ownPseudonym = await exportOf(userPseudonym);
    expect(ownPseudonym.lines).toHaveLength(1);
    expect(ownPseudonym.lines[0]).toMatchObject({ kind: 'summary', events: 0, receipts: 0 });

    for (const [i, id] of LOOKALIKES.entries()) {
      const { status, lines } = await exportOf(id);
      expect(status, id).toBe(200);
      const own = id === NEIGHBOUR ? [`l-${i}-${TAG}`, `n-p-${TAG}`] : [`l-${i}-${TAG}`];
      expect(eventIds(lines), id).toEqual(own.sort());
      for (const e of ofKind(lines, 'event')) expect([id, neighbourPseudonym]).toContain(e['user_id']);
      expect(JSON.stringify(lines), id).not.toContain(`c-tr-${TAG}`);
      expect(ofKind(lines, 'receipt').length, id).toBe(id === NEIGHBOUR ? 2 : 0);
    }
    // blanks are not trimmed away: only the exact id is the subject
    for (const raw of [`${encodeURIComponent(USER)}%20`, `%20${encodeURIComponent(USER)}`, encodeURIComponent(USER.toUpperCase())]) {
      const { status, lines } = await exportRaw(adminKey, TENANT, raw);
      expect(status, raw).toBe(200);
      expect(lines, raw).toHaveLength(1);
      expect(lines[0], raw).toMatchObject({ kind: 'summary', events: 0, profiles: 0, receipts: 0 });
    }
  });

  it('answers only to the tenant admin or the operator, for an existing tenant and a valid id', async () => {
    expect((await exportOf(USER, server.adminToken)).lines.at(-1)).toMatchObject({ kind: 'summary', events: sent.clear.length + sent.pseudonymized.length });
    expect((await exportOf(USER, readKey)).status).toBe(403);
    expect((await exportOf(USER, otherAdminKey)).status).toBe(404);
    expect((await exportOf(USER, 'tlk_not-a-key')).status).toBe(401);
    expect((await exportOf(USER, otherAdminKey, OTHER_TENANT)).lines.at(-1)).toMatchObject({ kind: 'summary', events: 1, receipts: 0 });
    expect((await exportRaw(adminKey, TENANT, 'x'.repeat(129))).status).toBe(400);
    expect((await exportRaw(adminKey, `no-such-${TAG}`, 'u1')).status).toBe(404);
  });

  it('writes every export to the audit log under the keyed subject hash, never the id', async () => {
    const rows = await eventually(async () => {
      const rs = await server.clickhouse.query({
        query: "SELECT action, status, outcome, key_id, details FROM audit_log WHERE tenant_id = {t:String} AND action = 'export.user' ORDER BY at",
        query_params: { t: TENANT },
        format: 'JSONEachRow',
      });
      const found = await rs.json<{ action: string; status: number; outcome: string; key_id: string; details: Record<string, string> }>();
      return found.length >= 3 ? found : undefined;
    }, 20_000, 'audit rows of the exports');
    const first = rows[0];
    expect(first?.details['subjectIdHash']).toMatch(/^[0-9a-f]{64}$/);
    expect(first?.details).toMatchObject({ complete: 'true', events: String(sent.clear.length + sent.pseudonymized.length), receipts: '4' });
    expect(rows.some((r) => r.status === 403 && r.outcome === 'denied')).toBe(true);
    const text = JSON.stringify(rows);
    for (const id of [USER, userPseudonym, neighbourPseudonym, ...LOOKALIKES]) expect(text).not.toContain(id);
  });

  it('`tracklane export user` writes the same records from the data dir, with counts on stderr', async () => {
    const api = (await exportOf(USER)).lines;
    // NOTE: chDB opens a data dir in one process at a time: the CLI reads it once the server is gone
    await server.stop();
    const out = join(dataDir, 'export.ndjson');
    // NOTE: the shared services' settings (the global setup exports CLICKHOUSE_URL …) must not point it elsewhere
    const env = { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(CLICKHOUSE_|REDIS_|TRACKLANE_)/.test(k))), TRACKLANE_DATA_DIR: dataDir, LOG_LEVEL: 'silent' };
    const cli = spawnTsx('services/cli/main.ts', ['export', 'user', USER, '--tenant', TENANT, '--out', out], { env: { ...env, TRACKLANE_MASTER_KEY: MASTER_KEY } });
    const { code } = await cli.exited;
    expect(code, cli.output()).toBe(0);
    expect(cli.output()).toMatch(new RegExp(`exported ${sent.clear.length + sent.pseudonymized.length} events \\(${sent.clear.length} in clear, ${sent.pseudonymized.length} pseudonymized\\), 2 profiles, 1 accounts, 4 receipts: done`));
    expect(statSync(out).mode & 0o777).toBe(0o600);
    const lines = readFileSync(out, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Line);
    const withoutTime = (ls: Line[]) => ls.map((l) => (l.kind === 'summary' ? { ...l, exportedAt: 0 } : l));
    expect(withoutTime(lines)).toEqual(withoutTime(api));

    // a tenant that does not exist, and pseudonymized history without the master key, are usage errors
    const bad = spawnTsx('services/cli/main.ts', ['export', 'user', USER, '--tenant', TENANT], { env });
    expect((await bad.exited).code).toBe(2);
    expect(bad.output()).toContain('TRACKLANE_MASTER_KEY is required');
  }, 120_000);
});
