// Access control through the embedded server with its listeners split (ADMIN_PORT), on real chDB:
// the operator token only on the admin listener, a tenant's keys on the public one, and an
// audit row for every admin action and key change that holds no PII and no secret.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../libs/core/logger.js';
import { embeddedConfigSchema } from '../../services/embedded/config.js';
import { startEmbedded, type EmbeddedServer } from '../../services/embedded/embedded-runner.js';
import { CaptureStream } from '../support/capture-stream.js';
import { eventually } from '../support/poll.js';

let server: EmbeddedServer;
let dataDir: string;
const logs = new CaptureStream();

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'tracklane-access-'));
  const config = embeddedConfigSchema.parse({
    PORT: '0',
    ADMIN_PORT: '0',
    TRACKLANE_DATA_DIR: dataDir,
    TRACKLANE_ADMIN_TOKEN: randomBytes(24).toString('base64url'),
    LOG_LEVEL: 'info',
  });
  server = await startEmbedded(config, createLogger({ level: 'info', destination: logs }));
}, 120_000);

afterAll(async () => {
  await server?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

async function call(base: string, method: string, path: string, token: string | null, body?: unknown) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : null) as Record<string, unknown> };
}
const pub = (method: string, path: string, token: string | null, body?: unknown) => call(server.url, method, path, token, body);
const adm = (method: string, path: string, body?: unknown) => call(server.adminUrl, method, path, server.adminToken, body);

describe('listeners', () => {
  it('serve the operator on the admin listener only; tenant keys on both', async () => {
    expect(server.adminUrl).not.toBe(server.url);
    expect((await pub('PUT', '/v1/admin/tenants/ac-a', server.adminToken)).status).toBe(404); // operator routes are not on the public edge
    expect((await pub('GET', '/v1/admin/tenants/ac-a/flags', server.adminToken)).status).toBe(401);
    expect((await pub('POST', '/v1/admin/query', server.adminToken, { sql: 'SELECT 1' })).status).toBe(404);
    const created = await adm('PUT', '/v1/admin/tenants/ac-a');
    expect(created.status).toBe(201);
    const key = await adm('POST', '/v1/admin/tenants/ac-a/api-keys', { name: 'admins', scopes: ['admin'] });
    expect(key.status).toBe(201);
    const secret = String(key.body['key']);
    expect((await pub('GET', '/v1/admin/tenants/ac-a/flags', secret)).status).toBe(200);
    expect((await call(server.adminUrl, 'GET', '/v1/admin/tenants/ac-a/flags', secret)).status).toBe(200);
    expect((await call(server.adminUrl, 'PUT', '/v1/admin/tenants/ac-a', secret)).status).toBe(403);
    // ingestion is not served on the admin listener
    expect((await fetch(`${server.adminUrl}/v1/batch`, { method: 'POST', body: '{}' })).status).toBe(404);
    expect((await fetch(`${server.adminUrl}/healthz`)).status).toBe(200);
  });
});

describe('audit log', () => {
  it('has a row per flag change, erasure, load and key change, without PII or secrets', async () => {
    const created = await adm('PUT', '/v1/admin/tenants/ac-b');
    const writeKey = String(created.body['writeKey']);
    const adminKey = await adm('POST', '/v1/admin/tenants/ac-b/api-keys', { name: 'b admins', scopes: ['admin'] });
    const key = String(adminKey.body['key']);
    const email = 'erin.secret@pii-example.test';
    expect((await pub('PATCH', '/v1/admin/tenants/ac-b/flags', key, { ipPolicy: 'mask', piiTraits: ['favourite_colour'] })).status).toBe(200);
    expect((await pub('PATCH', `/v1/admin/tenants/ac-b/users/${encodeURIComponent(email)}`, key, { set: { email: 'anon@x.test', first_name: 'Erinna' } })).status).toBe(202);
    expect((await pub('POST', '/v1/admin/tenants/ac-b/erasures', key, { userIds: [email, 'user-77'], mode: 'delete', suppress: true })).status).toBe(202);
    expect((await pub('POST', '/v1/admin/tenants/ac-b/loads', key, { subject: 'user', rows: [{ id: email, set: { last_name: 'Lastnamington' } }, { id: 'x' }] })).status).toBe(202);
    const wk = await pub('POST', '/v1/admin/tenants/ac-b/write-keys', key);
    const newWriteKey = String(wk.body['writeKey']);
    expect((await pub('DELETE', `/v1/admin/tenants/ac-b/write-keys/${String(wk.body['keyId'])}`, key)).status).toBe(204);
    const readKey = await adm('POST', '/v1/admin/tenants/ac-b/api-keys', { name: 'b analysts', scopes: ['read'] });
    expect((await pub('DELETE', `/v1/admin/tenants/ac-b/api-keys/${String(readKey.body['keyId'])}`, key)).status).toBe(204);
    // denied: a read-scope action attempted with a revoked key is no action (401, unaudited); a scope miss is audited
    expect((await pub('PATCH', '/v1/admin/tenants/ac-b/flags', String(readKey.body['key']), { ipPolicy: 'full' })).status).toBe(401);

    const expectedActions = ['tenant.create', 'api_key.create', 'flags.update', 'overwrite.user', 'erasure.create', 'load.create', 'write_key.create', 'write_key.revoke', 'api_key.create', 'api_key.revoke'];
    type Row = { action: string; credential_kind: string; key_id: string; outcome: string; status: number; source: string; request_id: string; details: Record<string, string> };
    const rows = await eventually(async () => {
      const r = (await server.analystQuery(`SELECT action, credential_kind, key_id, outcome, status, source, request_id, details FROM audit_log WHERE tenant_id = 'ac-b' ORDER BY at`)) as Row[];
      return r.length >= expectedActions.length ? r : undefined;
    });
    expect(rows.map((r) => r.action)).toEqual(expectedActions);
    const adminKeyId = String(adminKey.body['keyId']);
    expect(rows.map((r) => `${r.credential_kind}:${r.key_id}`)).toEqual([
      'operator:operator', 'operator:operator',
      ...Array(6).fill(`api_key:${adminKeyId}`),
      'operator:operator', `api_key:${adminKeyId}`,
    ]);
    expect(new Set(rows.map((r) => r.outcome))).toEqual(new Set(['ok']));
    for (const r of rows) {
      expect(r.source).toBe('127.0.0.0'); // masked /24
      expect(r.request_id).toMatch(/^[0-9a-f-]{36}$/);
    }
    const erasure = rows.find((r) => r.action === 'erasure.create');
    expect(erasure?.details).toMatchObject({ users: '2', mode: 'delete', suppress: 'true' });
    expect(rows.find((r) => r.action === 'overwrite.user')?.details['subjectIdHash']).toMatch(/^[0-9a-f]{64}$/);
    expect(rows.find((r) => r.action === 'load.create')?.details).toMatchObject({ rows: '2', accepted: '1', rejected: '1' });

    // No PII value, no secret, anywhere in the table or the server's log.
    const everything = JSON.stringify(await server.analystQuery(`SELECT * FROM audit_log`));
    const log = logs.text;
    for (const needle of [email, 'erin.secret', 'anon@x.test', 'Erinna', 'Lastnamington', 'user-77', 'favourite_colour', writeKey, newWriteKey, key, String(readKey.body['key']), server.adminToken, 'b admins']) {
      expect(everything).not.toContain(needle);
      expect(log).not.toContain(needle);
    }
    expect(readFileSync(join(dataDir, 'tenants.json'), 'utf8')).not.toContain(key);
  });

  it('records a denied admin action of an authenticated key', async () => {
    await adm('PUT', '/v1/admin/tenants/ac-c');
    const read = await adm('POST', '/v1/admin/tenants/ac-c/api-keys', { name: 'c analysts', scopes: ['read'] });
    expect((await pub('POST', '/v1/admin/tenants/ac-c/erasures', String(read.body['key']), { userIds: ['u'], mode: 'anonymize' })).status).toBe(403);
    const rows = await eventually(async () => {
      const r = (await server.analystQuery(`SELECT action, outcome, status, key_id FROM audit_log WHERE tenant_id = 'ac-c' AND outcome = 'denied'`)) as { action: string; outcome: string; status: number; key_id: string }[];
      return r.length > 0 ? r : undefined;
    });
    expect(rows).toEqual([{ action: 'erasure.create', outcome: 'denied', status: 403, key_id: String(read.body['keyId']) }]);
  });
});

describe('analyst SQL over HTTP', () => {
  let readA = '';
  const sendEvents = async (writeKey: string, tag: string) => {
    const res = await fetch(`${server.url}/v1/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${writeKey}:`).toString('base64')}` },
      body: JSON.stringify({
        batch: [
          { type: 'identify', messageId: `${tag}-i`, userId: `${tag}-user`, traits: { email: `${tag}@${tag}.example`, firstName: tag } },
          { type: 'page', messageId: `${tag}-p`, userId: `${tag}-user`, name: 'Home', properties: { path: '/home' } },
          { type: 'track', messageId: `${tag}-t`, userId: `${tag}-user`, event: 'Signed Up' },
        ],
      }),
    });
    expect(res.status).toBe(200);
  };
  const query = (token: string, tenant: string, sql: string) => pub('POST', `/v1/admin/tenants/${tenant}/query`, token, { sql });

  beforeAll(async () => {
    const a = await adm('PUT', '/v1/admin/tenants/sql-a');
    const b = await adm('PUT', '/v1/admin/tenants/sql-b');
    await sendEvents(String(a.body['writeKey']), 'alpha');
    await sendEvents(String(b.body['writeKey']), 'bravo');
    readA = String((await adm('POST', '/v1/admin/tenants/sql-a/api-keys', { name: 'a analysts', scopes: ['read'] })).body['key']);
  });

  it('a read key sees its own tenant only, through tables, views, joins, funnels and cohorts', async () => {
    const own = await query(readA, 'sql-a', 'SELECT DISTINCT tenant_id, user_id FROM events ORDER BY user_id');
    expect(own).toEqual({ status: 200, body: { rows: [{ tenant_id: 'sql-a', user_id: 'alpha-user' }] } });
    const everyone = await query(readA, 'sql-a', "SELECT count() AS n FROM events WHERE tenant_id = 'sql-b' OR 1 = 1");
    expect(everyone.body['rows']).toEqual([{ n: 3 }]);
    const joined = await query(readA, 'sql-a', 'SELECT u.email AS email, count() AS n FROM events AS e INNER JOIN users AS u FINAL ON u.user_id = e.user_id GROUP BY email');
    expect(joined.body['rows']).toEqual([{ email: 'alpha@alpha.example', n: 3 }]);
    const funnel = await query(readA, 'sql-a', "SELECT windowFunnel(86400)(toDateTime(timestamp), type = 'identify', type = 'page', type = 'track') AS steps FROM events GROUP BY user_id");
    expect(funnel.body['rows']).toEqual([{ steps: 3 }]);
    const cohort = await query(readA, 'sql-a', "SELECT retention(type = 'identify', type = 'track') AS r FROM events GROUP BY user_id");
    expect(cohort.body['rows']).toEqual([{ r: [1, 1] }]);
    const view = await query(readA, 'sql-a', 'SELECT tenant_id, users FROM daily_active_users');
    expect(view.body['rows']).toEqual([{ tenant_id: 'sql-a', users: 1 }]);
  });

  it.each([
    ['another tenant\'s route', 'sql-b', 'SELECT 1', 404],
    ['an internal table', 'sql-a', 'SELECT * FROM overwrite_values', 403],
    ['system tables', 'sql-a', 'SELECT name FROM system.tables', 403],
    ['a table function', 'sql-a', "SELECT * FROM merge('default', '.*')", 403],
    ['a settings clause', 'sql-a', "SELECT count() FROM events SETTINGS additional_table_filters = {'events': '1'}", 403],
    ['two statements', 'sql-a', 'SELECT 1; DROP TABLE events', 400],
  ])('refuses %s', async (_what, tenant, sql, status) => {
    const res = await query(readA, tenant, sql);
    expect(res.status).toBe(status);
    expect(JSON.stringify(res.body)).not.toContain('bravo');
  });

  it('INTO OUTFILE in any form creates no file, as a tenant or as the operator', async () => {
    const target = join(dataDir, 'outfile-probe');
    for (const sql of [`SELECT 1 INTO OUTFILE '${target}'`, `SELECT 1 INTO OUTFILE '${target}' APPEND`, `SELECT 1 INTO OUTFILE '${target}' TRUNCATE FORMAT CSV`, `SELECT 1 INTO OUTFILE '${target}' AND STDOUT`]) {
      const asTenant = await query(readA, 'sql-a', sql);
      const asOperator = await adm('POST', '/v1/admin/query', { sql });
      expect(asTenant.status).toBeGreaterThanOrEqual(400);
      expect(asTenant.status).toBeLessThan(500);
      expect(asOperator.status).toBeGreaterThanOrEqual(400);
      expect(asOperator.status).toBeLessThan(500);
    }
    expect(existsSync(target)).toBe(false);
    expect(existsSync(`${process.cwd()}/outfile-probe`)).toBe(false);
  });

  it('a memory bomb gets a 4xx within 10 s and the server keeps answering', async () => {
    const started = Date.now();
    const bomb = await adm('POST', '/v1/admin/query', { sql: 'SELECT length(groupArray(number)) FROM numbers(300000000)' });
    expect(bomb.status).toBe(422);
    expect(String(bomb.body['message'])).toMatch(/limit|too many|memory/i);
    expect(Date.now() - started).toBeLessThan(10_000);
    const tenantBomb = await query(readA, 'sql-a', 'SELECT length(groupArray(repeat(a.event_id, 10000000))) FROM events AS a, events AS b, events AS c, events AS d');
    expect(tenantBomb.status).toBe(422);
    expect(Date.now() - started).toBeLessThan(20_000);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    expect((await query(readA, 'sql-a', 'SELECT count() AS n FROM events')).body['rows']).toEqual([{ n: 3 }]);
  });
});
