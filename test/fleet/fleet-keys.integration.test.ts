// Credentials in the fleet: two collector replicas on real Kafka, Redis and the
// ClickHouse gateway. A revoked write key or API key is refused by both within 2 s; the
// operator token works on the admin listener (ADMIN_PORT) and never on the public one.
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually } from '../support/poll.js';
import { sendBatch, startFleet, type Fleet } from '../support/fleet.js';

let fleet: Fleet | undefined;
afterEach(async () => {
  await fleet?.stopAll();
  fleet = undefined;
});

const bearer = (url: string, method: string, path: string, token: string, body?: unknown) =>
  fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });

/** ms until `refused` holds on every url, polled every 50 ms; throws after `limitMs` */
async function msUntilRefusedEverywhere(urls: string[], refused: (url: string) => Promise<boolean>, limitMs: number): Promise<number> {
  const start = Date.now();
  const pending = new Set(urls);
  const refusedEverywhere = async () => {
    for (const u of [...pending]) if (await refused(u)) pending.delete(u);
    return pending.size === 0;
  };
  await eventually(refusedEverywhere, limitMs, 'refused everywhere', 50).catch(() => {
    throw new Error(`still accepted by ${[...pending].join(', ')} after ${limitMs} ms`);
  });
  return Date.now() - start;
}

describe('fleet: credentials (issue 11)', () => {
  it('revoking a write key or an API key is refused by both collector replicas within 2 s; the operator is off the public listener', async () => {
    fleet = await startFleet({ services: ['collector'] });
    const f = fleet;
    await f.start('collector', 'collector-2');
    const publics = [f.collectorUrl(), `http://127.0.0.1:${f.processes.get('collector-2')?.port}`];
    const tenantId = `keys-${f.prefix.slice(1, 9)}`;

    // the operator: admin listener yes, public listener never
    for (const url of publics) {
      expect((await bearer(url, 'PUT', `/v1/admin/tenants/${tenantId}`, f.adminToken)).status).toBe(404);
      expect((await bearer(url, 'GET', `/v1/admin/tenants/${tenantId}/flags`, f.adminToken)).status).toBe(401);
      expect((await bearer(url, 'POST', '/v1/admin/query', f.adminToken, { sql: 'SELECT 1' })).status).toBe(404);
    }
    const created = await f.admin<{ writeKey: string; keyId: string }>('PUT', `/v1/admin/tenants/${tenantId}`);
    expect(created.status).toBe(201);
    const second = await f.admin<{ writeKey: string; keyId: string }>('POST', `/v1/admin/tenants/${tenantId}/write-keys`);
    const apiKey = await f.admin<{ key: string; keyId: string }>('POST', `/v1/admin/tenants/${tenantId}/api-keys`, { name: 'ops', scopes: ['admin'] });
    expect([second.status, apiKey.status]).toEqual([201, 201]);

    // both replicas know every key (pub/sub, at most the store's staleness bound)
    const track = [{ type: 'track', event: 'E', userId: 'u1' }];
    for (const url of publics) {
      await msUntilRefusedEverywhere([url], async (u) => (await sendBatch(u, second.body.writeKey, track)) === 200, 2_000);
      await msUntilRefusedEverywhere([url], async (u) => (await bearer(u, 'GET', `/v1/admin/tenants/${tenantId}/flags`, apiKey.body.key)).status === 200, 2_000);
    }

    // revoke the second write key on replica 2's admin listener: both replicas refuse it within 2 s
    const revokedWrite = await bearer(f.collectorAdminUrl('collector-2'), 'DELETE', `/v1/admin/tenants/${tenantId}/write-keys/${second.body.keyId}`, f.adminToken);
    expect(revokedWrite.status).toBe(204);
    const writeMs = await msUntilRefusedEverywhere(publics, async (u) => (await sendBatch(u, second.body.writeKey, track)) === 401, 2_000);
    for (const url of publics) expect(await sendBatch(url, created.body.writeKey, track)).toBe(200); // the first key still ingests

    // the API key revokes itself on replica 1's public listener
    const revokedApi = await bearer(publics[0] ?? '', 'DELETE', `/v1/admin/tenants/${tenantId}/api-keys/${apiKey.body.keyId}`, apiKey.body.key);
    expect(revokedApi.status).toBe(204);
    const apiMs = await msUntilRefusedEverywhere(publics, async (u) => (await bearer(u, 'GET', `/v1/admin/tenants/${tenantId}/flags`, apiKey.body.key)).status === 401, 2_000);
    console.log(`revocation seen by both replicas: write key ${writeMs} ms, API key ${apiMs} ms`);
    expect(Math.max(writeMs, apiMs)).toBeLessThanOrEqual(2_000);
  });

  it('a read key queries its tenant\'s rows only through the collector and the ClickHouse server; no query writes a file', async () => {
    fleet = await startFleet({ services: ['collector', 'enricher', 'anonymizer', 'sink'] });
    const f = fleet;
    const tag = f.prefix.slice(1, 9);
    const [a, b] = [`sqla-${tag}`, `sqlb-${tag}`];
    for (const t of [a, b]) {
      const created = await f.admin<{ writeKey: string }>('PUT', `/v1/admin/tenants/${t}`);
      expect(await sendBatch(f.collectorUrl(), created.body.writeKey, [{ type: 'track', event: 'E', userId: `${t}-user`, messageId: `${t}-1` }])).toBe(200);
    }
    const read = await f.admin<{ key: string }>('POST', `/v1/admin/tenants/${a}/api-keys`, { name: 'analysts', scopes: ['read'] });
    const query = async (sql: string) => {
      const res = await bearer(f.collectorUrl(), 'POST', `/v1/admin/tenants/${a}/query`, read.body.key, { sql });
      return { status: res.status, body: (await res.json()) as { rows?: Record<string, unknown>[]; error?: string } };
    };
    const own = await eventually(async () => {
      const r = await query('SELECT DISTINCT tenant_id, user_id FROM events');
      return r.body.rows?.length ? r : undefined;
    }, 60_000, 'tenant a\'s event stored');
    expect(own.body.rows).toEqual([{ tenant_id: a, user_id: `${a}-user` }]);
    expect((await query(`SELECT count() AS n FROM events WHERE tenant_id = '${b}' OR 1 = 1`)).body.rows?.map((r) => Number(r['n']))).toEqual([1]);
    expect((await query('SELECT name FROM system.tables')).status).toBe(403);
    expect((await query("SELECT * FROM remote('127.0.0.1', default.events)")).status).toBe(403);

    const target = join(tmpdir(), `tracklane-outfile-${tag}`);
    for (const sql of [`SELECT 1 INTO OUTFILE '${target}'`, `SELECT 1 INTO OUTFILE '${target}' APPEND`, `SELECT 1 INTO OUTFILE '${target}' AND STDOUT`]) {
      expect((await query(sql)).status).toBeGreaterThanOrEqual(400);
      const asOperator = await f.admin('POST', '/v1/admin/query', { sql });
      expect(asOperator.status).toBeGreaterThanOrEqual(400);
      expect(asOperator.status).toBeLessThan(500);
    }
    expect(existsSync(target)).toBe(false);
    const bomb = await f.admin<{ error: string }>('POST', '/v1/admin/query', { sql: 'SELECT length(groupArray(number)) FROM numbers(300000000)' });
    expect(bomb).toMatchObject({ status: 422, body: { error: 'query_limit_exceeded' } });
  });
});
