// Issue 11 through the embedded server with its listeners split (ADMIN_PORT), on real chDB:
// the operator token only on the admin listener, a tenant's keys on the public one, and an
// audit row for every admin action and key change that holds no PII and no secret.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../libs/core/logger.js';
import { embeddedConfigSchema } from '../../services/embedded/config.js';
import { startEmbedded, type EmbeddedServer } from '../../services/embedded/embedded-runner.js';
import { CaptureStream } from '../support/capture-stream.js';
import { eventually } from '../support/embedded-process.js';

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
