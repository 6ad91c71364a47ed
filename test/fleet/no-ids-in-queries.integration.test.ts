// During a loader dry run and a fleet erasure, no request
// ClickHouse receives carries the subject's id (or its email) in its URL or its query text —
// lookups by id send the ids as an INSERT's data. The fleet runs against a gateway of this test
// that records every request it receives, from every service.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClickHouse, toNumber, type ClickHouseClient } from '../../libs/clickhouse/client.js';
import { startClickHouseGateway, type CapturedRequest, type ClickHouseGateway } from '../support/clickhouse-gateway.js';
import { spawnTsx } from '../support/child-process.js';
import { eventually } from '../support/poll.js';
import { sendBatch, startFleet, type Fleet } from '../support/fleet.js';

const SERVICE_PASSWORD = randomBytes(12).toString('base64url');
const TESTER_PASSWORD = randomBytes(12).toString('base64url');
let dir = '';
let gateway: ClickHouseGateway;
let ch: ClickHouseClient;
let fleet: Fleet | undefined;
const captured: CapturedRequest[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tracklane-no-ids-'));
  // NOTE: the test's own reads log in as `tester`, so they can be told apart from the services'
  gateway = await startClickHouseGateway({
    port: 0,
    dataDir: join(dir, 'ch'),
    users: { tracklane: SERVICE_PASSWORD, tester: TESTER_PASSWORD },
    onRequest: (r) => captured.push(r),
  });
  ch = createClickHouse({ url: gateway.url, username: 'tester', password: TESTER_PASSWORD });
});

afterAll(async () => {
  await fleet?.stopAll();
  await ch?.close();
  await gateway?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function q<T = Record<string, unknown>>(sql: string): Promise<T[]> {
  return (await ch.query({ query: sql, format: 'JSONEachRow' })).json<T>();
}

async function runLoader(args: string[], env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  const child = spawnTsx('services/cli/main.ts', ['load', ...args], { env: { ...process.env, ...env } });
  const { code } = await child.exited;
  return { code, out: child.output() };
}

describe('no subject id in URLs or query text (issue 12, item 7)', () => {
  it('a loader dry run and an erasure send the ids only as data', async () => {
    fleet = await startFleet({
      partitions: 1,
      services: ['collector', 'enricher', 'anonymizer', 'sink', 'compactor'],
      env: { CLICKHOUSE_URL: gateway.url, CLICKHOUSE_USER: 'tracklane', CLICKHOUSE_PASSWORD: SERVICE_PASSWORD, COMPACTOR_REGISTRY_WAIT_MS: '1500' },
    });
    const f = fleet;
    const tag = randomBytes(5).toString('hex');
    const tenantId = `noids-${tag}`;
    const userId = `erased-user-${tag}`;
    const email = `erased.${tag}@private.example`;
    const absentId = `absent-user-${tag}`;
    const created = await f.admin<{ writeKey: string }>('PUT', `/v1/admin/tenants/${tenantId}`);
    expect(created.status).toBe(201);

    // the sink reads the stored users row of this id before it writes a new version
    expect(await sendBatch(f.collectorUrl(), created.body.writeKey, [
      { type: 'identify', messageId: `i-1-${tag}`, userId, traits: { email, firstName: `First${tag}` } },
      { type: 'track', messageId: `t-1-${tag}`, userId, event: 'Opened' },
      { type: 'identify', messageId: `i-2-${tag}`, userId, traits: { plan: 'pro' } },
    ])).toBe(200);
    await eventually(
      async () => toNumber((await q<{ n: unknown }>(`SELECT count() AS n FROM events WHERE tenant_id = '${tenantId}'`))[0]?.n) === 3,
      90_000,
      'the events stored',
    );
    await eventually(async () => (await q(`SELECT 1 FROM users FINAL WHERE tenant_id = '${tenantId}' AND traits['plan'] != ''`)).length === 1, 60_000, 'the merged users row');

    // the Data Loader's dry run: one stored id, one absent → the server counts one missing
    const csv = join(dir, 'users.csv');
    writeFileSync(csv, `id,last_name\n${userId},Newname\n${absentId},Other\n`);
    const dry = await runLoader(['users', csv, '--tenant', tenantId, '--url', f.collectorAdminUrl(), '--dry-run'], { TRACKLANE_ADMIN_TOKEN: f.adminToken });
    expect(dry.code, dry.out).toBe(0);
    expect(dry.out).toMatch(/\b1 id with no stored user\b/);

    // the erasure, through Kafka and the compactor service, to a verified receipt
    const erased = await f.admin<{ requestId: string }>('POST', `/v1/admin/tenants/${tenantId}/erasures`, { userIds: [userId], mode: 'delete', deleteEvents: true });
    expect(erased.status).toBe(202);
    await eventually(async () => {
      const r = await f.admin(`GET`, `/v1/admin/requests/${erased.body.requestId}`);
      if (r.body['status'] === 'failed') throw new Error(`erasure failed: ${String(r.body['reason'])}`);
      return r.body['status'] === 'verified';
    }, 180_000, 'a verified erasure').catch(async (err: Error) => {
      throw new Error(`${err.message}\n${await f.diagnostics()}`);
    });
    expect(await q(`SELECT event_id FROM events WHERE tenant_id = '${tenantId}'`)).toEqual([]);

    for (const needle of [userId, absentId, email, encodeURIComponent(userId), encodeURIComponent(email)]) {
      const leaks = captured.filter((r) => r.user !== 'tester' && (r.url.includes(needle) || r.queryText.includes(needle)));
      expect(leaks.map((r) => `${r.method} ${r.url.slice(0, 200)} ${r.queryText.slice(0, 200)}`), needle).toEqual([]);
    }
    // the lookups did send the ids — as the data of INSERTs into their temporary tables
    const services = captured.filter((r) => r.user === 'tracklane');
    expect(services.some((r) => /^CREATE TEMPORARY TABLE tracklane_ids_/.test(r.queryText))).toBe(true);
    expect(services.some((r) => r.insertData.includes(userId) && /^INSERT INTO tracklane_ids_/.test(r.queryText))).toBe(true);
    expect(services.some((r) => r.insertData.includes(absentId) && /^INSERT INTO tracklane_ids_/.test(r.queryText))).toBe(true);
  }, 600_000);
});
