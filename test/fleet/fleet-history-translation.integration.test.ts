// Issue 15, acceptance 2 in the fleet: the collector (no master key) records the translation
// request as a pending receipt, the compactor (master key, lease) polls for it and translates the
// tenant's pre-opt-in history to its current key version (after a rotation). The receipt the
// collector serves says verified; no column of any table holds a clear id the tenant sent before
// its opt-in, nor did any URL or statement text sent to ClickHouse; another tenant is untouched.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createClickHouse, type ClickHouseClient } from '../../libs/clickhouse/client.js';
import { startClickHouseGateway, type CapturedRequest, type ClickHouseGateway } from '../support/clickhouse-gateway.js';
import { grepEveryColumn } from '../support/grep-tables.js';
import { eventually } from '../support/poll.js';
import { sendBatch, startFleet, type Fleet } from '../support/fleet.js';

// NOTE: a ClickHouse gateway of this test's own, recording every request, so the test can also
// tell that no clear id was ever in a URL or a statement's text (as no-ids-in-queries does)
const SERVICE_PASSWORD = randomBytes(12).toString('base64url');
const TESTER_PASSWORD = randomBytes(12).toString('base64url');
let dir = '';
let gateway: ClickHouseGateway;
let ch: ClickHouseClient;
let fleet: Fleet | undefined;
const captured: CapturedRequest[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tracklane-fleet-history-'));
  gateway = await startClickHouseGateway({ port: 0, dataDir: join(dir, 'ch'), users: { tracklane: SERVICE_PASSWORD, tester: TESTER_PASSWORD }, onRequest: (r) => captured.push(r) });
  ch = createClickHouse({ url: gateway.url, username: 'tester', password: TESTER_PASSWORD });
});
afterAll(async () => {
  await ch?.close();
  await gateway?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});
afterEach(async () => {
  await fleet?.stopAll();
  fleet = undefined;
});

async function q<T = Record<string, unknown>>(sql: string, params: Record<string, unknown> = {}): Promise<T[]> {
  return (await ch.query({ query: sql, query_params: params, format: 'JSONEachRow' })).json<T>();
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('fleet: opt-in translation of history (issue 15, check 2)', () => {
  it('the compactor translates the pre-opt-in history the collector was asked for; the receipt is verified', async () => {
    fleet = await startFleet({
      partitions: 1,
      services: ['collector', 'enricher', 'anonymizer', 'sink', 'compactor'],
      env: { CLICKHOUSE_URL: gateway.url, CLICKHOUSE_USER: 'tracklane', CLICKHOUSE_PASSWORD: SERVICE_PASSWORD, COMPACTOR_REGISTRY_WAIT_MS: '1500' },
    });
    const f = fleet;
    const run = f.prefix.slice(1, 9);
    const tenantId = `ht-${run}`;
    const other = `hu-${run}`;
    const alice = `alice-${run}@example.com`;
    const oldId = `crm-${run}-77`;
    const carol = `carol-${run}@example.com`;
    const writeKey = (await f.admin<{ writeKey: string }>('PUT', `/v1/admin/tenants/${tenantId}`)).body.writeKey;
    const otherKey = (await f.admin<{ writeKey: string }>('PUT', `/v1/admin/tenants/${other}`)).body.writeKey;
    const events = (t: string) =>
      q<{ event_id: string; user_id: string | null; previous_id: string | null; identity_anonymized: number; key_version: number }>(
        'SELECT event_id, user_id, previous_id, identity_anonymized, key_version FROM events FINAL WHERE tenant_id = {t:String} ORDER BY event_id',
        { t },
      );
    const stored = (t: string, n: number) => eventually(async () => ((await events(t)).length >= n ? events(t) : undefined), 60_000, `${n} events of ${t}`);

    expect(await sendBatch(f.collectorUrl(), writeKey, [
      { type: 'identify', messageId: 'a1', userId: alice, traits: { plan: 'pro' } },
      { type: 'alias', messageId: 'a2', userId: alice, previousId: oldId },
    ])).toBe(200);
    expect(await sendBatch(f.collectorUrl(), otherKey, [{ type: 'identify', messageId: 'b1', userId: carol, traits: { plan: 'pro' } }])).toBe(200);
    await stored(tenantId, 2);
    await stored(other, 1);

    expect((await f.admin('POST', `/v1/admin/tenants/${tenantId}/pseudonymize-history`)).status).toBe(409);
    const flipped = await f.admin<{ anonymizeSince: number }>('PATCH', `/v1/admin/tenants/${tenantId}/flags`, { anonymizeIdentity: true });
    await sleep(Math.max(0, flipped.body.anonymizeSince - Date.now()) + 100);
    // a rotation first: the history goes to the CURRENT version (2), not the opt-in's
    const rotated = await f.admin<{ version: number; since: number }>('POST', `/v1/admin/tenants/${tenantId}/pseudonym-keys`);
    expect(rotated.body.version).toBe(2);
    await sleep(Math.max(0, rotated.body.since - Date.now()) + 100);
    expect(await sendBatch(f.collectorUrl(), writeKey, [{ type: 'track', messageId: 'p1', userId: alice, event: 'E' }, { type: 'track', messageId: 'p2', userId: oldId, event: 'E' }])).toBe(200);
    const after = new Map((await stored(tenantId, 4)).map((e) => [e.event_id, e]));
    const pAlice = String(after.get('p1')?.user_id);
    const pOld = String(after.get('p2')?.user_id);
    expect(pAlice).toMatch(/^v2:[0-9a-f]{64}$/);

    const accepted = await f.admin<{ requestId: string }>('POST', `/v1/admin/tenants/${tenantId}/pseudonymize-history`);
    expect(accepted.status).toBe(202);
    const receipt = await eventually(async () => {
      const r = await f.admin<Record<string, unknown>>('GET', `/v1/admin/requests/${accepted.body.requestId}`);
      if (r.body['status'] === 'failed') throw new Error(`translation failed: ${String(r.body['reason'])}`);
      return r.body['status'] === 'verified' ? r.body : undefined;
    }, 120_000, 'a verified translation receipt');
    expect(receipt).toMatchObject({ kind: 'pseudonymize-history', tenantId, keyVersion: 2, rowsRewritten: { events: 2, users: 1 } });

    expect(await grepEveryColumn(<T,>(sql: string) => q<T>(sql), [alice, oldId])).toEqual([]);
    const rows = new Map((await events(tenantId)).map((e) => [e.event_id, e]));
    expect(rows.get('a1')).toMatchObject({ user_id: pAlice, identity_anonymized: 1, key_version: 2 });
    expect(rows.get('a2')).toMatchObject({ user_id: pAlice, previous_id: pOld, identity_anonymized: 1, key_version: 2 });
    expect(await q('SELECT user_id FROM users FINAL WHERE tenant_id = {t:String}', { t: tenantId })).toEqual([{ user_id: pAlice }]);
    expect(await events(other)).toMatchObject([{ event_id: 'b1', user_id: carol, identity_anonymized: 0 }]);
    // the compactor never logged a clear id, and no service sent one in a URL or a statement's text
    for (const p of f.processes.values()) if (p.name === 'compactor') expect(p.output()).not.toContain(alice);
    for (const needle of [alice, oldId, encodeURIComponent(alice)]) {
      const leaks = captured.filter((r) => r.user !== 'tester' && (r.url.includes(needle) || r.queryText.includes(needle)));
      expect(leaks.map((r) => `${r.method} ${r.url.slice(0, 200)} ${r.queryText.slice(0, 200)}`), needle).toEqual([]);
    }
    // the translation's lookup tables did get them — as INSERT data
    expect(captured.some((r) => r.user === 'tracklane' && /^INSERT INTO overwrite_translation_ids\b/.test(r.queryText) && r.insertData.includes(alice))).toBe(true);
  }, 300_000);
});
