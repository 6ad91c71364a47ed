// Issue 15, acceptance 1 on the embedded server (chDB): rotate, then shred version 1. Afterwards
// no code path produces a version-1 pseudonym (key ring, compactor, restart), new events use
// version 2, the shred receipt is verified, and no copy of the wrapped key is left in the data
// dir or ClickHouse.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toNumber } from '../../libs/clickhouse/client.js';
import { createLogger } from '../../libs/core/logger.js';
import { embeddedConfigSchema } from '../../services/embedded/config.js';
import { startEmbedded, type EmbeddedServer } from '../../services/embedded/embedded-runner.js';
import { eventually } from '../support/poll.js';

let server: EmbeddedServer;
let dataDir: string;
const masterKey = `base64:${randomBytes(32).toString('base64')}`;
const adminToken = randomBytes(24).toString('base64url');
const TENANT = 'pk-a';

const start = () => startEmbedded(embeddedConfigSchema.parse({ PORT: '0', TRACKLANE_DATA_DIR: dataDir, TRACKLANE_ADMIN_TOKEN: adminToken, TRACKLANE_MASTER_KEY: masterKey }), createLogger({ level: 'silent' }));

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'tracklane-keys-'));
  server = await start();
}, 120_000);

afterAll(async () => {
  await server?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

async function call(method: string, path: string, body?: unknown, auth = `Bearer ${adminToken}`) {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: auth, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function send(writeKey: string, messages: object[]) {
  const res = await fetch(`${server.url}/v1/batch`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${writeKey}:`).toString('base64')}` },
    body: JSON.stringify({ batch: messages }),
  });
  expect(res.status).toBe(200);
}

const storedIds = (eventIds: string[]) =>
  eventually(async () => {
    const rows = (await server.analystQuery(`SELECT event_id, user_id FROM events FINAL WHERE tenant_id = '${TENANT}' AND event_id IN (${eventIds.map((e) => `'${e}'`).join(',')})`)) as { event_id: string; user_id: string }[];
    return rows.length === eventIds.length ? new Map(rows.map((r) => [r.event_id, r.user_id])) : undefined;
  }, 30_000, 'events stored');

/** Every file under `dir` whose bytes contain `needle` (raw or as base64 text). */
function filesHolding(dir: string, needle: Buffer): string[] {
  const hits: string[] = [];
  const b64 = Buffer.from(needle.toString('base64'));
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      else if (st.isFile()) {
        const bytes = readFileSync(p);
        if (bytes.includes(needle) || bytes.includes(b64)) hits.push(p);
      }
    }
  };
  walk(dir);
  return hits;
}

const wrappedInFile = (version: number): string | undefined => {
  const file = JSON.parse(readFileSync(join(dataDir, 'pseudonym-keys.json'), 'utf8')) as { keys: Record<string, Record<string, string>> };
  return file.keys[TENANT]?.[String(version)];
};

describe('pseudonym keys: rotation and shredding (embedded)', () => {
  it('rotate, shred version 1: no version-1 pseudonym from any path, new events on version 2, receipt verified, no copy left', async () => {
    const created = await call('PUT', `/v1/admin/tenants/${TENANT}`);
    const writeKey = String(created.body['writeKey']);
    expect((await call('PATCH', `/v1/admin/tenants/${TENANT}/flags`, { anonymizeIdentity: true })).status).toBe(200);
    const listed = await call('GET', `/v1/admin/tenants/${TENANT}/pseudonym-keys`);
    expect(listed.body).toMatchObject({ current: 1, versions: [{ version: 1, origin: 'stored', state: 'current' }] });

    await send(writeKey, [{ type: 'identify', messageId: 'k1', userId: 'ada@example.com', traits: { plan: 'pro' } }]);
    const v1 = (await storedIds(['k1'])).get('k1');
    expect(v1).toMatch(/^v1:[0-9a-f]{64}$/);
    const wrappedV1 = wrappedInFile(1);
    expect(wrappedV1).toBeDefined();
    const wrappedBytes = Buffer.from(String(wrappedV1), 'base64');
    const [copied] = (await server.analystQuery(`SELECT count() AS n FROM pseudonym_keys WHERE tenant_id = '${TENANT}' AND version = 1`)) as { n: unknown }[];
    expect(toNumber(copied?.n)).toBe(1);

    // key fields are not flags to PATCH
    const patchKey = await call('PATCH', `/v1/admin/tenants/${TENANT}/flags`, { keyVersion: 7 });
    expect(patchKey.status).toBe(400);
    expect(String(patchKey.body['message'])).toMatch(/pseudonym-keys/);

    const rotated = await call('POST', `/v1/admin/tenants/${TENANT}/pseudonym-keys`);
    expect(rotated.status).toBe(201);
    expect(rotated.body['version']).toBe(2);
    await send(writeKey, [{ type: 'track', messageId: 'k2', userId: 'ada@example.com', event: 'Report Exported' }]);
    const v2 = (await storedIds(['k2'])).get('k2');
    expect(v2).toMatch(/^v2:[0-9a-f]{64}$/);

    // refusals: the current version, a confirm that does not repeat the version, a version that does not exist
    expect((await call('DELETE', `/v1/admin/tenants/${TENANT}/pseudonym-keys/2`, { confirm: 2 })).body['error']).toBe('current_version');
    expect((await call('DELETE', `/v1/admin/tenants/${TENANT}/pseudonym-keys/1`, { confirm: 2 })).status).toBe(400);
    expect((await call('DELETE', `/v1/admin/tenants/${TENANT}/pseudonym-keys/1`)).status).toBe(400);
    expect((await call('DELETE', `/v1/admin/tenants/${TENANT}/pseudonym-keys/9`, { confirm: 9 })).status).toBe(404);

    const shred = await call('DELETE', `/v1/admin/tenants/${TENANT}/pseudonym-keys/1`, { confirm: 1 });
    expect(shred.status).toBe(200);
    expect(shred.body).toMatchObject({ version: 1, status: 'verified', destroyed: { 'data dir': 1, clickhouse: 1 }, remaining: [], verifiedAt: expect.any(Number) });
    expect((shred.body['outsideCopies'] as string[]).length).toBeGreaterThan(0);
    // idempotent: the same receipt again
    expect((await call('DELETE', `/v1/admin/tenants/${TENANT}/pseudonym-keys/1`, { confirm: 1 })).body).toMatchObject({ status: 'verified' });
    expect((await call('GET', `/v1/admin/tenants/${TENANT}/pseudonym-keys/1`)).body).toMatchObject({ state: 'shredded', shred: { status: 'verified' } });

    // no copy: not in the key file, not in ClickHouse (rows or parts on disk), no file of the data dir holds it
    expect(wrappedInFile(1)).toBeUndefined();
    const [left] = (await server.analystQuery(`SELECT count() AS n FROM pseudonym_keys WHERE tenant_id = '${TENANT}' AND version = 1`)) as { n: unknown }[];
    expect(toNumber(left?.n)).toBe(0);
    expect(filesHolding(dataDir, wrappedBytes)).toEqual([]);

    // new events: version 2; an erasure of the user still verifies (version 1 is skipped, not a failure)
    await send(writeKey, [{ type: 'track', messageId: 'k3', userId: 'ada@example.com', event: 'Report Exported' }]);
    expect((await storedIds(['k3'])).get('k3')).toBe(v2);
    const erasure = await call('POST', `/v1/admin/tenants/${TENANT}/erasures`, { userIds: ['ada@example.com'], mode: 'anonymize' });
    expect(erasure.status).toBe(202);
    const erased = await eventually(async () => {
      const r = await call('GET', `/v1/admin/requests/${String(erasure.body['requestId'])}`);
      if (r.body['status'] === 'failed') throw new Error(`erasure failed: ${String(r.body['reason'])}`);
      return r.body['status'] === 'verified' ? r.body : undefined;
    }, 120_000, 'the erasure verified');
    // the receipt says which versions' history it could not reach
    expect(erased['shreddedKeyVersions']).toEqual([1]);

    // after a restart: version 2's key is the same one, version 1 is still refused
    await server.stop();
    server = await start();
    await send(writeKey, [{ type: 'track', messageId: 'k4', userId: 'ada@example.com', event: 'Report Exported' }]);
    expect((await storedIds(['k4'])).get('k4')).toBe(v2);
    // the subject's export finds its history under version 2 only: version 1's is unlinkable now
    const exported = await fetch(`${server.url}/v1/admin/tenants/${TENANT}/users/${encodeURIComponent('ada@example.com')}/export`, { headers: { authorization: `Bearer ${adminToken}` } });
    expect(exported.status).toBe(200);
    const lines = (await exported.text()).split('\n').filter(Boolean).map((l) => JSON.parse(l) as { kind: string; event_id?: string; user_id?: string });
    expect(lines.filter((l) => l.kind === 'event').map((l) => [l.event_id, l.user_id]).sort()).toEqual([['k2', v2], ['k3', v2], ['k4', v2]]);
    expect((await call('GET', `/v1/admin/tenants/${TENANT}/pseudonym-keys`)).body).toMatchObject({
      current: 2,
      versions: [
        { version: 1, state: 'shredded', shred: { status: 'verified' } },
        { version: 2, state: 'current' },
      ],
    });
  }, 240_000);

  it('tenants cannot read the key tables through the query API', async () => {
    await call('PUT', '/v1/admin/tenants/pk-b');
    const key = await call('POST', '/v1/admin/tenants/pk-b/api-keys', { name: 'analysts', scopes: ['read'] });
    for (const table of ['pseudonym_keys', 'pseudonym_key_shreds']) {
      const r = await call('POST', '/v1/admin/tenants/pk-b/query', { sql: `SELECT * FROM ${table}` }, `Bearer ${String(key.body['key'])}`);
      expect(r.status, table).toBe(403);
      expect(r.body['error']).toBe('query_not_allowed');
      expect(String(r.body['message'])).toMatch(/not available to tenants/);
    }
  });
});
