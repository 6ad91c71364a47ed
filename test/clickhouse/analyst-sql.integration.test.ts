// Analyst SQL (libs/clickhouse/analyst-sql.ts) on real chDB, two ways: the embedded engine of this
// process, and a ClickHouse server's HTTP interface (the test gateway, in process on the same
// data dir — the fleet path). Tenant A attacks; tenant B and the internal tables hold markers
// that must never come back; no statement may create a file.
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FUNCTION_ALLOW_LISTS } from '../../libs/clickhouse/analyst-functions.js';
import { tenantFilterSetting } from '../../libs/clickhouse/analyst-settings.js';
import { ANALYST_TABLES, createAnalystSql, DEFAULT_QUERY_LIMITS, QueryRejectedError, type AnalystSql } from '../../libs/clickhouse/analyst-sql.js';
import { toNumber } from '../../libs/clickhouse/client.js';
import { splitStatements } from '../../libs/clickhouse/migrate.js';
import { startClickHouseGateway, type ClickHouseGateway } from '../support/clickhouse-gateway.js';
import { queryRows, uniqueTenant, useTestClickHouse } from '../support/chdb.js';

const ch = useTestClickHouse();
const A = uniqueTenant('a');
const B = uniqueTenant('b');
const MARKERS = [B, 'B_SECRET', 'INTERNAL_SECRET', '0001_events.sql'];
const outDir = mkdtempSync(join(tmpdir(), 'tracklane-analyst-out-'));
// a file in the working directory, which chDB's default database would read by its bare name
const probeName = `analyst_probe_${randomUUID().slice(0, 8)}`;
const relOut = `analyst-out-${randomUUID().slice(0, 8)}.txt`;

let embedded: AnalystSql;
let gateway: ClickHouseGateway;
let http: ClickHouseClient;
let viaHttp: AnalystSql;

const day1 = '2026-05-10';
const day2 = '2026-05-11';
interface Ev {
  id: string;
  type: string;
  event?: string;
  user?: string | null;
  anon?: string;
  session: string;
  path?: string;
  country?: string | null;
  account?: string | null;
  at: string;
}
const eventsA: Ev[] = [
  { id: 'a1', type: 'page', user: 'u1', anon: 'an1', session: 's1', path: '/pricing', country: 'GB', account: 'acc-1', at: `${day1} 09:00:00` },
  { id: 'a2', type: 'track', event: 'Signup', user: 'u1', anon: 'an1', session: 's1', country: 'GB', account: 'acc-1', at: `${day1} 09:05:00` },
  { id: 'a3', type: 'page', user: 'u1', anon: 'an1', session: 's2', path: '/', country: 'GB', account: 'acc-1', at: `${day2} 10:00:00` },
  { id: 'a4', type: 'page', user: 'u2', anon: 'an2', session: 's3', path: '/pricing', country: 'US', at: `${day1} 11:00:00` },
  { id: 'a5', type: 'page', user: null, anon: 'an3', session: 's4', path: '/', country: null, at: `${day1} 12:00:00` },
];
// B reuses A's user ids and days, so a leak would also change A's numbers
const eventsB: Ev[] = [
  { id: 'b1', type: 'page', event: 'B_SECRET', user: 'u1', anon: 'bn1', session: 's1', path: '/b-secret', country: 'DE', account: 'acc-9', at: `${day1} 09:01:00` },
  { id: 'b2', type: 'page', user: 'u2', anon: 'bn2', session: 's3', path: '/pricing', country: 'DE', at: `${day1} 11:01:00` },
  { id: 'b3', type: 'track', event: 'Signup', user: 'u2', anon: 'bn2', session: 's3', country: 'DE', at: `${day1} 11:02:00` },
  { id: 'b4', type: 'page', user: 'u2', anon: 'bn2', session: 's5', path: '/', country: 'DE', at: `${day2} 08:00:00` },
];

async function seed(client: ClickHouseClient): Promise<void> {
  const ev = (tenant: string, e: Ev): Record<string, unknown> => ({
    tenant_id: tenant,
    event_id: `${tenant}-${e.id}`,
    type: e.type,
    event: e.event ?? null,
    user_id: e.user ?? null,
    anonymous_id: e.anon ?? null,
    session_id: e.session,
    account_id: e.account ?? null,
    timestamp: e.at,
    client_ts: e.at,
    received_at: e.at,
    path: e.path ?? null,
    geo_country: e.country ?? null,
    properties: tenant === B ? { note: 'B_SECRET' } : { note: 'A_VISIBLE' },
  });
  await client.insert({ table: 'events', format: 'JSONEachRow', values: [...eventsA.map((e) => ev(A, e)), ...eventsB.map((e) => ev(B, e))] });
  // trait snapshots: A's for a1; B's for b1 and one under A's event id a2 (the join must not cross tenants)
  const snapshot = (tenant: string, eventId: string, plan: string): Record<string, unknown> => ({
    tenant_id: tenant, event_id: eventId, type: 'identify', user_id: 'u1', timestamp: `${day1} 09:00:00`, client_ts: `${day1} 09:00:00`, received_at: `${day1} 09:00:00`, traits: { plan },
  });
  await client.insert({ table: 'identify_snapshots', format: 'JSONEachRow', values: [snapshot(A, `${A}-a1`, 'A_VISIBLE'), snapshot(B, `${B}-b1`, 'B_SECRET'), snapshot(B, `${A}-a2`, 'B_SECRET')] });
  const user = (t: string, id: string, email: string): Record<string, unknown> => ({ tenant_id: t, user_id: id, email, name: t === B ? 'B_SECRET' : 'A_VISIBLE', version: 1, first_seen: `${day1} 09:00:00`, last_seen: `${day2} 10:00:00`, updated_at: `${day2} 10:00:00` });
  await client.insert({ table: 'users', format: 'JSONEachRow', values: [user(A, 'u1', 'u1@a.test'), user(A, 'u2', 'u2@a.test'), user(B, 'u1', 'u1@B_SECRET.test'), user(B, 'u2', 'u2@B_SECRET.test')] });
  await client.insert({ table: 'accounts', format: 'JSONEachRow', values: [{ tenant_id: A, account_id: 'acc-1', name: 'A_VISIBLE', source: 'group', version: 1 }, { tenant_id: B, account_id: 'acc-9', name: 'B_SECRET', source: 'group', version: 1 }] });
  await client.insert({ table: 'dead_letters', format: 'JSONEachRow', values: [{ tenant_id: A, received_at: `${day1} 09:00:00`, stage: 'validate', reason: 'A_VISIBLE', payload: '{}' }, { tenant_id: B, received_at: `${day1} 09:00:00`, stage: 'validate', reason: 'bad', payload: '{"email":"B_SECRET"}' }] });
  await client.insert({ table: 'overwrite_requests', format: 'JSONEachRow', values: [{ request_id: `req-${A}`, tenant_id: A, subject: 'user', subject_id_hash: 'h-a', mode: 'overwrite', status: 'applied', requested_at: `${day1} 09:00:00`, version: 1 }, { request_id: 'req-B', tenant_id: B, subject: 'user', subject_id_hash: 'h-b', mode: 'overwrite', status: 'applied', reason: 'B_SECRET', requested_at: `${day1} 09:00:00`, version: 1 }] });
  await client.insert({
    table: 'audit_log',
    format: 'JSONEachRow',
    values: [
      { at: `${day1} 09:00:00`, tenant_id: A, credential_kind: 'tenant_key', key_id: 'k-a', action: 'key.create', request_id: 'r1', outcome: 'ok', status: 200, source: '10.0.0.0/24' },
      { at: `${day1} 09:00:00`, tenant_id: B, credential_kind: 'tenant_key', key_id: 'B_SECRET', action: 'key.create', request_id: 'r2', outcome: 'ok', status: 200, source: '10.0.1.0/24' },
      { at: `${day1} 09:00:00`, tenant_id: '', credential_kind: 'operator', key_id: 'INTERNAL_SECRET', action: 'tenant.create', request_id: 'r3', outcome: 'ok', status: 201, source: '10.0.2.0/24' },
    ],
  });
  // internal tables, for A and B alike: a tenant may read none of them
  await client.insert({ table: 'overwrite_values', format: 'JSONEachRow', values: [A, B].map((t) => ({ request_id: `req-${t}`, tenant_id: t, subject: 'user', id: 'u1', attr: 'email', new_value: 'INTERNAL_SECRET', mode: 'overwrite', requested_at: `${day1} 09:00:00` })) });
  await client.insert({ table: 'suppressions', format: 'JSONEachRow', values: [A, B].map((t) => ({ tenant_id: t, subject_id_hash: 'INTERNAL_SECRET', request_id: `req-${t}`, requested_at: `${day1} 09:00:00` })) });
  await client.command({ query: `INSERT INTO overwrite_join VALUES ('user', '${A}', 'u1', {'email': 'INTERNAL_SECRET'}, [], '${day1} 09:00:00')` });
  await client.command({ query: `INSERT INTO overwrite_keys VALUES ('user', '${A}', 'u1')` });
}

beforeAll(async () => {
  await seed(ch().client);
  writeFileSync(join(process.cwd(), probeName), 'INTERNAL_SECRET\n');
  writeFileSync(join(process.cwd(), `${probeName}.csv`), 'INTERNAL_SECRET,1\n');
  embedded = await createAnalystSql({ engine: 'chdb', dataDir: ch().dataDir });
  // NOTE: one chDB engine per process: the gateway serves this file's own data dir over HTTP
  gateway = await startClickHouseGateway({ port: 0, dataDir: ch().dataDir });
  http = createClient({ url: gateway.url, request_timeout: 60_000, log: { level: ClickHouseLogLevel.OFF } });
  viaHttp = await createAnalystSql({ engine: 'server', tenantClient: http, operatorClient: http });
});

afterAll(async () => {
  await embedded?.close?.();
  await viaHttp?.close?.();
  await http?.close();
  await gateway?.close();
  for (const f of [probeName, `${probeName}.csv`, relOut]) rmSync(join(process.cwd(), f), { force: true });
  rmSync(outDir, { recursive: true, force: true });
});

async function outcome(p: Promise<unknown[]>): Promise<{ rows: Record<string, unknown>[] } | { err: unknown }> {
  try {
    return { rows: (await p) as Record<string, unknown>[] };
  } catch (err) {
    return { err };
  }
}

function expectRejected(o: { rows: Record<string, unknown>[] } | { err: unknown }, what: string): QueryRejectedError {
  expect('err' in o, `${what}: expected a refusal, got ${JSON.stringify('rows' in o ? o.rows : null).slice(0, 300)}`).toBe(true);
  const err = (o as { err: unknown }).err;
  expect(err, `${what}: ${String(err)}`).toBeInstanceOf(QueryRejectedError);
  const e = err as QueryRejectedError;
  expect(e.status).toBeGreaterThanOrEqual(400);
  expect(e.status).toBeLessThan(500);
  expect(e.message.length).toBeLessThan(600);
  return e;
}

function expectOnlyA(rows: Record<string, unknown>[], what: string): void {
  const text = JSON.stringify(rows);
  for (const m of MARKERS) expect(text.includes(m), `${what}: leaked ${m}: ${text.slice(0, 300)}`).toBe(false);
  for (const r of rows) if ('tenant_id' in r) expect(r.tenant_id, what).toBe(A);
}

const nums = (rows: Record<string, unknown>[], ...keys: string[]): Record<string, unknown>[] =>
  rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, keys.includes(k) ? toNumber(v) : v])));

type TenantWant = 'rows' | 'refused' | 'not_allowed';
type OperatorWant = 'ok' | 'refused';
// {A}, {B}: tenant ids; {file}: a path in a temp dir; {rel}: a relative path (the working dir)
const ADVERSARIAL: { sql: string; tenant: TenantWant; operator: OperatorWant }[] = [
  { sql: "SELECT tenant_id, event_id, properties FROM events WHERE tenant_id = '{B}'", tenant: 'rows', operator: 'ok' },
  { sql: "SELECT tenant_id, event, properties FROM events WHERE tenant_id = '{B}' OR 1 = 1", tenant: 'rows', operator: 'ok' },
  { sql: 'SELECT tenant_id, event_id FROM events UNION ALL SELECT tenant_id, email FROM users', tenant: 'rows', operator: 'ok' },
  { sql: "SELECT * FROM (SELECT tenant_id, name FROM users) AS sub WHERE sub.tenant_id = '{B}'", tenant: 'rows', operator: 'ok' },
  { sql: "SELECT tenant_id, user_id FROM users WHERE user_id IN (SELECT user_id FROM events WHERE tenant_id = '{B}')", tenant: 'rows', operator: 'ok' },
  { sql: 'SELECT e.tenant_id, u.tenant_id AS ut, u.email FROM events AS e JOIN users AS u ON e.user_id = u.user_id', tenant: 'rows', operator: 'ok' },
  { sql: 'SELECT e.tenant_id, u.email FROM events AS e CROSS JOIN users AS u', tenant: 'rows', operator: 'ok' },
  { sql: 'WITH suppressions AS (SELECT * FROM events) SELECT * FROM suppressions', tenant: 'not_allowed', operator: 'ok' },
  { sql: 'WITH events AS (SELECT tenant_id, email FROM users) SELECT * FROM events', tenant: 'rows', operator: 'ok' },
  { sql: 'WITH x AS (SELECT * FROM overwrite_values) SELECT * FROM x', tenant: 'not_allowed', operator: 'ok' },
  { sql: "SELECT * FROM daily_active_users WHERE tenant_id = '{B}'", tenant: 'rows', operator: 'ok' },
  { sql: 'SELECT * FROM sessions', tenant: 'rows', operator: 'ok' },
  { sql: 'SELECT tenant_id, event, properties FROM events FINAL', tenant: 'rows', operator: 'ok' },
  { sql: 'SELECT tenant_id, email, name FROM default.users FINAL', tenant: 'rows', operator: 'ok' },
  { sql: 'SELECT "tenant_id", `name` FROM "default"."accounts"', tenant: 'rows', operator: 'ok' },
  { sql: 'SELECT tenant_id, reason, payload FROM `default`.`dead_letters`', tenant: 'rows', operator: 'ok' },
  { sql: 'SeLeCt tenant_id, reason FrOm overwrite_requests', tenant: 'rows', operator: 'ok' },
  { sql: 'SELECT * FROM EVENTS', tenant: 'refused', operator: 'refused' },
  { sql: 'SELECT tenant_id, key_id FROM audit_log', tenant: 'rows', operator: 'ok' },
  { sql: "SELECT tenant_id, key_id FROM audit_log WHERE tenant_id = ''", tenant: 'rows', operator: 'ok' },
  { sql: "SELECT tenant_id FROM events /* ; SELECT * FROM overwrite_values */ -- INTO OUTFILE '{file}'", tenant: 'rows', operator: 'ok' },
  { sql: "SELECT 1 /* hidden */ INTO /**/ OUTFILE '{file}'", tenant: 'not_allowed', operator: 'refused' },
  { sql: 'SELECT name FROM system.tables', tenant: 'not_allowed', operator: 'ok' },
  { sql: 'SELECT * FROM system.parts', tenant: 'not_allowed', operator: 'ok' },
  { sql: 'SELECT * FROM system.query_log', tenant: 'not_allowed', operator: 'refused' },
  { sql: 'SELECT * FROM system.one', tenant: 'not_allowed', operator: 'ok' },
  { sql: 'SELECT * FROM INFORMATION_SCHEMA.tables', tenant: 'not_allowed', operator: 'ok' },
  { sql: 'SELECT * FROM information_schema.columns', tenant: 'not_allowed', operator: 'ok' },
  { sql: "SELECT * FROM merge('default', '.*')", tenant: 'not_allowed', operator: 'refused' },
  { sql: "SELECT * FROM remote('127.0.0.1', default.events)", tenant: 'not_allowed', operator: 'refused' },
  { sql: "SELECT * FROM cluster('default', default.events)", tenant: 'not_allowed', operator: 'refused' },
  { sql: "SELECT * FROM file('/etc/hostname', 'LineAsString')", tenant: 'not_allowed', operator: 'refused' },
  { sql: "SELECT * FROM url('http://127.0.0.1:1/x', 'LineAsString')", tenant: 'not_allowed', operator: 'refused' },
  { sql: "SELECT * FROM s3('http://127.0.0.1:1/bucket/x.csv')", tenant: 'not_allowed', operator: 'refused' },
  { sql: 'SELECT * FROM numbers(10)', tenant: 'not_allowed', operator: 'ok' },
  { sql: 'SELECT * FROM view(SELECT * FROM overwrite_values)', tenant: 'not_allowed', operator: 'refused' },
  { sql: "SELECT file('/etc/hostname')", tenant: 'not_allowed', operator: 'refused' },
  { sql: "SELECT dictGet('some_dict', 'x', toUInt64(1))", tenant: 'not_allowed', operator: 'refused' },
  { sql: "SELECT joinGet('default.overwrite_join', 'repl', 'user', '{A}', 'u1')", tenant: 'not_allowed', operator: 'ok' },
  { sql: "SELECT count() FROM events WHERE ('user', tenant_id, user_id) IN overwrite_keys", tenant: 'not_allowed', operator: 'ok' },
  { sql: 'SELECT arrayJoin((SELECT groupArray(new_value) FROM overwrite_values)) AS v', tenant: 'not_allowed', operator: 'ok' },
  { sql: 'SELECT arrayJoin((SELECT groupArray(tenant_id) FROM events)) AS tenant_id', tenant: 'rows', operator: 'ok' },
  // an error oracle over an internal table must fail before the analyzer evaluates it
  { sql: 'SELECT (SELECT throwIf(count() > 0) FROM suppressions)', tenant: 'not_allowed', operator: 'refused' },
  { sql: 'SELECT * FROM overwrite_values', tenant: 'not_allowed', operator: 'ok' },
  { sql: 'SELECT * FROM default.suppressions', tenant: 'not_allowed', operator: 'ok' },
  { sql: 'SELECT * FROM suppressed_events', tenant: 'not_allowed', operator: 'ok' },
  { sql: 'SELECT * FROM tracklane_migrations', tenant: 'not_allowed', operator: 'ok' },
  { sql: 'SELECT * FROM overwrite_values AS events', tenant: 'not_allowed', operator: 'ok' },
  { sql: 'SELECT tenant_id, email FROM users AS events', tenant: 'rows', operator: 'ok' },
  { sql: 'SELECT e.tenant_id FROM events AS e, overwrite_values AS o', tenant: 'not_allowed', operator: 'ok' },
  { sql: "SELECT * FROM events SETTINGS additional_table_filters = {'events': '1'}", tenant: 'not_allowed', operator: 'refused' },
  { sql: 'SELECT 1 SETTINGS readonly = 0', tenant: 'not_allowed', operator: 'refused' },
  { sql: 'SELECT * FROM (SELECT tenant_id FROM events SETTINGS max_result_rows = 1000000)', tenant: 'not_allowed', operator: 'refused' },
  { sql: 'SELECT 1; DROP TABLE events', tenant: 'refused', operator: 'refused' },
  { sql: 'SELECT 1; SELECT 2', tenant: 'refused', operator: 'refused' },
  { sql: "SELECT 1 INTO OUTFILE '{file}'", tenant: 'not_allowed', operator: 'refused' },
  { sql: "SELECT 1 INTO OUTFILE '{file}' APPEND", tenant: 'not_allowed', operator: 'refused' },
  { sql: "SELECT 1 INTO OUTFILE '{file}' TRUNCATE", tenant: 'not_allowed', operator: 'refused' },
  { sql: "SELECT 1 INTO OUTFILE '{file}.gz' COMPRESSION 'gzip' LEVEL 3", tenant: 'not_allowed', operator: 'refused' },
  { sql: "SELECT 1 INTO OUTFILE '{file}' AND STDOUT FORMAT CSV", tenant: 'not_allowed', operator: 'refused' },
  { sql: "SELECT tenant_id FROM events INTO OUTFILE '{rel}'", tenant: 'not_allowed', operator: 'refused' },
  { sql: "SELECT 1 FROM INFILE '{file}'", tenant: 'refused', operator: 'refused' },
  { sql: "INSERT INTO events (tenant_id, event_id) FROM INFILE '{file}' FORMAT CSV", tenant: 'not_allowed', operator: 'refused' },
  { sql: 'SELECT tenant_id FROM events FORMAT CSV', tenant: 'not_allowed', operator: 'refused' },
  { sql: 'SET max_result_rows = 1', tenant: 'not_allowed', operator: 'refused' },
  { sql: 'SHOW TABLES', tenant: 'not_allowed', operator: 'refused' },
  { sql: 'DESCRIBE TABLE overwrite_values', tenant: 'not_allowed', operator: 'refused' },
  { sql: 'EXPLAIN SELECT * FROM overwrite_values', tenant: 'not_allowed', operator: 'refused' },
  { sql: "INSERT INTO events (tenant_id, event_id) VALUES ('{B}', 'injected')", tenant: 'not_allowed', operator: 'refused' },
  { sql: 'ALTER TABLE events DELETE WHERE 1', tenant: 'not_allowed', operator: 'refused' },
  { sql: 'DROP TABLE events', tenant: 'not_allowed', operator: 'refused' },
  { sql: 'SELECT {x:String}', tenant: 'refused', operator: 'refused' },
  { sql: 'SELECT * FROM `/etc/hostname`', tenant: 'not_allowed', operator: 'refused' },
  { sql: `SELECT * FROM ${probeName}`, tenant: 'refused', operator: 'refused' },
  { sql: `SELECT * FROM \`${probeName}.csv\``, tenant: 'not_allowed', operator: 'refused' },
  { sql: 'SELECT * APPLY toString FROM events', tenant: 'not_allowed', operator: 'refused' },
  { sql: 'SELECT 1 AS `a)\n    Function file (children 1`, 2', tenant: 'not_allowed', operator: 'refused' },
  { sql: "SELECT hasColumnInTable('default', 'overwrite_values', 'new_value')", tenant: 'not_allowed', operator: 'ok' },
  { sql: "SELECT getSetting('additional_table_filters')", tenant: 'not_allowed', operator: 'ok' },
  { sql: 'SELECT _part, tenant_id FROM events', tenant: 'rows', operator: 'ok' },
  { sql: "SELECT tenant_id FROM events PREWHERE tenant_id = '{B}'", tenant: 'rows', operator: 'ok' },
  { sql: "SELECT tenant_id FROM events EXCEPT SELECT '{B}'", tenant: 'rows', operator: 'ok' },
  { sql: 'SELECT count() AS n, uniqExact(e.tenant_id) AS t FROM events AS e GLOBAL JOIN users AS u USING (user_id)', tenant: 'rows', operator: 'ok' },
];

const PATHS = [
  { name: 'embedded chDB', sql: (): AnalystSql => embedded },
  { name: 'server over HTTP (gateway)', sql: (): AnalystSql => viaHttp },
];

const fill = (sql: string): string =>
  sql.replaceAll('{A}', A).replaceAll('{B}', B).replaceAll('{file}', join(outDir, 'out.txt')).replaceAll('{rel}', relOut);

function assertNoFiles(): void {
  expect(readdirSync(outDir)).toEqual([]);
  expect(existsSync(join(process.cwd(), relOut))).toBe(false);
  expect(existsSync(join(process.cwd(), 'out.txt'))).toBe(false);
}

// NOTE: first in the file: maxRSS is the process's peak, so no earlier statement may have set it
describe('analyst SQL: process memory under a bomb (embedded)', () => {
  it('peak RSS stays near baseline + the memory bound', async () => {
    await embedded.operatorQuery('SELECT count() FROM numbers(1000)');
    const baseline = process.memoryUsage().rss;
    const bound = DEFAULT_QUERY_LIMITS.maxMemoryBytes;
    const t0 = Date.now();
    for (const q of ['SELECT length(groupArray(number)) FROM numbers(90000000)', 'SELECT length(groupArray(number)) FROM numbers(300000000)']) {
      expectRejected(await outcome(embedded.operatorQuery(q)), q);
    }
    expectRejected(await outcome(embedded.tenantQuery(A, 'SELECT length(groupArray(repeat(a.event_id, 1000000))) FROM events AS a, events AS b, events AS c, events AS d')), 'tenant bomb');
    const elapsed = Date.now() - t0;
    const peak = process.resourceUsage().maxRSS * 1024;
    const mib = (n: number): number => Math.round(n / 1024 / 1024);
    console.log(`analyst bombs: ${elapsed} ms; RSS baseline ${mib(baseline)} MiB, peak ${mib(peak)} MiB, bound ${mib(bound)} MiB`);
    // NOTE: the margin covers the allocator's slack around the one refused allocation (measured:
    // ≈ 200 MiB over the bound); without the bound this statement grows the process by GBs
    expect(peak).toBeLessThan(baseline + bound + 512 * 1024 * 1024);
    expect(await embedded.operatorQuery('SELECT 1 AS x')).toEqual([{ x: 1 }]);
  });

  it('overhead of the checks per tenant statement (measured, for the record)', async () => {
    const q = 'SELECT count() AS n FROM events';
    for (let i = 0; i < 5; i++) await embedded.tenantQuery(A, q);
    const n = 40;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await embedded.tenantQuery(A, q);
    const perQuery = (performance.now() - t0) / n;
    const r0 = performance.now();
    for (let i = 0; i < n; i++) await queryRows(ch().client, `${q} WHERE tenant_id = {t:String}`, { t: A });
    const raw = (performance.now() - r0) / n;
    console.log(`tenant statement: ${perQuery.toFixed(2)} ms through analyst SQL vs ${raw.toFixed(2)} ms as a plain query`);
    expect(perQuery).toBeLessThan(250);
  });
});

describe.each(PATHS)('analyst SQL, $name', ({ sql }) => {
  it(`refuses or confines ${ADVERSARIAL.length} adversarial statements of tenant A; no file is created`, async () => {
    expect(ADVERSARIAL.length).toBeGreaterThanOrEqual(30);
    const confined: string[] = [];
    for (const c of ADVERSARIAL) {
      const q = fill(c.sql);
      const o = await outcome(sql().tenantQuery(A, q));
      if (c.tenant === 'rows') {
        expect('rows' in o, `${q}: ${'err' in o ? String(o.err) : ''}`).toBe(true);
        expectOnlyA((o as { rows: Record<string, unknown>[] }).rows, q);
        confined.push(q);
      } else {
        const e = expectRejected(o, q);
        if (c.tenant === 'not_allowed') expect(e.code, `${q}: ${e.message}`).toBe('query_not_allowed');
      }
      assertNoFiles();
    }
    expect(confined.length).toBeGreaterThan(10);
    // the data the filters hid is there: the operator sees B
    const b = await sql().operatorQuery(`SELECT count() AS n FROM events WHERE tenant_id = '${B}'`);
    expect(toNumber((b[0] as { n: unknown }).n)).toBe(eventsB.length);
    // and nothing was written
    const after = await sql().operatorQuery(`SELECT count() AS n FROM events WHERE event_id = 'injected'`);
    expect(toNumber((after[0] as { n: unknown }).n)).toBe(0);
    const tables = await sql().operatorQuery("SELECT name FROM system.tables WHERE database = 'default' AND name = 'events'");
    expect(tables).toHaveLength(1);
  });

  it('runs the same statements as the operator where legitimate, and refuses the rest', async () => {
    for (const c of ADVERSARIAL) {
      const q = fill(c.sql);
      const o = await outcome(sql().operatorQuery(q));
      if (c.operator === 'ok') expect('rows' in o, `${q}: ${'err' in o ? String(o.err) : ''}`).toBe(true);
      else expectRejected(o, q);
      assertNoFiles();
    }
    const b = await sql().operatorQuery(`SELECT DISTINCT tenant_id FROM events WHERE tenant_id IN ('${A}', '${B}') ORDER BY tenant_id`);
    expect(b.map((r) => (r as { tenant_id: string }).tenant_id)).toEqual([A, B].sort());
  });

  it('every shipped view answers A with exactly what the operator sees for A', async () => {
    const views = ['daily_active_users', 'sessions', 'top_pages', 'events_by_account', 'events_by_country'];
    for (const v of views) {
      const mine = await sql().tenantQuery(A, `SELECT * FROM ${v} ORDER BY ALL`);
      expect(mine.length, v).toBeGreaterThan(0);
      expectOnlyA(mine as Record<string, unknown>[], v);
      const truth = await sql().operatorQuery(`SELECT * FROM ${v} WHERE tenant_id = '${A}' ORDER BY ALL`);
      expect(mine, v).toEqual(truth);
    }
    for (const from of ['events_with_traits', 'identify_snapshots FINAL']) {
      const mine = await sql().tenantQuery(A, `SELECT * FROM ${from} ORDER BY event_id`);
      expect(mine.length, from).toBeGreaterThan(0);
      expectOnlyA(mine as Record<string, unknown>[], from);
      const truth = await sql().operatorQuery(`SELECT * FROM ${from} WHERE tenant_id = '${A}' ORDER BY event_id`);
      expect(mine, from).toEqual(truth);
    }
    const joined = await sql().tenantQuery(A, "SELECT event_id, traits FROM events_with_traits WHERE notEmpty(traits) ORDER BY event_id");
    expect(joined).toEqual([{ event_id: `${A}-a1`, traits: { plan: 'A_VISIBLE' } }]);
    const dau = await sql().tenantQuery(A, 'SELECT day, users FROM daily_active_users ORDER BY day');
    expect(nums(dau as Record<string, unknown>[], 'users')).toEqual([
      { day: day1, users: 3 }, // u1, u2, an3
      { day: day2, users: 1 },
    ]);
  });

  it('a windowFunnel funnel, a retention() cohort, users × events, a window function, a CTE and UNION', async () => {
    const funnel = await sql().tenantQuery(
      A,
      `SELECT user_id, windowFunnel(86400)(toDateTime(timestamp), type = 'page' AND path = '/pricing', type = 'track' AND event = 'Signup') AS level
       FROM events FINAL WHERE user_id IS NOT NULL GROUP BY user_id ORDER BY user_id`,
    );
    expect(nums(funnel as Record<string, unknown>[], 'level')).toEqual([
      { user_id: 'u1', level: 2 },
      { user_id: 'u2', level: 1 }, // B's u2 signed up; A's did not
    ]);
    const cohort = await sql().tenantQuery(
      A,
      `SELECT sum(r[1]) AS day0, sum(r[2]) AS day1 FROM (
         SELECT user_id, retention(toDate(timestamp) = toDate('${day1}'), toDate(timestamp) = toDate('${day2}')) AS r
         FROM events FINAL WHERE user_id IS NOT NULL GROUP BY user_id)`,
    );
    expect(nums(cohort as Record<string, unknown>[], 'day0', 'day1')).toEqual([{ day0: 2, day1: 1 }]);
    const joined = await sql().tenantQuery(
      A,
      'SELECT u.email AS email, count() AS n FROM users AS u FINAL INNER JOIN events AS e FINAL ON e.user_id = u.user_id GROUP BY email ORDER BY email',
    );
    expect(nums(joined as Record<string, unknown>[], 'n')).toEqual([
      { email: 'u1@a.test', n: 3 },
      { email: 'u2@a.test', n: 1 },
    ]);
    const windowed = await sql().tenantQuery(A, "SELECT event_id, row_number() OVER (PARTITION BY user_id ORDER BY timestamp) AS n FROM events WHERE user_id = 'u1' ORDER BY timestamp");
    expect(nums(windowed as Record<string, unknown>[], 'n')).toEqual([1, 2, 3].map((n, i) => ({ event_id: `${A}-a${i + 1}`, n })));
    const cte = await sql().tenantQuery(A, "WITH pages AS (SELECT user_id, path FROM events WHERE type = 'page') SELECT path, count() AS n FROM pages GROUP BY path ORDER BY path");
    expect(nums(cte as Record<string, unknown>[], 'n')).toEqual([
      { path: '/', n: 2 },
      { path: '/pricing', n: 2 },
    ]);
    const union = await sql().tenantQuery(A, "SELECT * FROM (SELECT 'events' AS t, count() AS n FROM events UNION ALL SELECT 'users' AS t, count() AS n FROM users FINAL) ORDER BY t");
    expect(nums(union as Record<string, unknown>[], 'n')).toEqual([
      { t: 'events', n: eventsA.length },
      { t: 'users', n: 2 },
    ]);
    const combinators = await sql().tenantQuery(
      A,
      `SELECT countIf(type = 'page') AS pages, uniqExactIf(user_id, type = 'page') AS page_users, sumArray([1, 2]) AS s,
              uniqMerge(st) AS merged, avgOrNull(toUInt8(0)) AS a, groupArrayDistinct(geo_country) AS c
       FROM events, (SELECT uniqState(user_id) AS st FROM events) AS sub`,
    );
    expect(nums(combinators as Record<string, unknown>[], 'pages', 'page_users', 's', 'merged')).toEqual([
      { pages: 4 * 1, page_users: 2, s: 3 * eventsA.length, merged: 2, a: 0, c: expect.arrayContaining(['GB', 'US']) as unknown },
    ]);
  });

  it('an unknown function is refused by name; a bad column is a 4xx with the engine message', async () => {
    const e = expectRejected(await outcome(sql().tenantQuery(A, 'SELECT addressToSymbol(1)')), 'addressToSymbol');
    expect(e.message).toMatch(/function addressToSymbol is not allowed/);
    const bad = expectRejected(await outcome(sql().tenantQuery(A, 'SELECT no_such_column FROM events')), 'no_such_column');
    expect(bad.code).toBe('query_failed');
    expect(bad.message).toMatch(/no_such_column/);
    const big = expectRejected(await outcome(sql().tenantQuery(A, `SELECT ${'1 + '.repeat(40_000)}1`)), 'huge SQL');
    expect(big.status).toBe(413);
  });

  it('bounds the answer: more rows than max_result_rows is a 4xx, not a truncated result', async () => {
    const e = expectRejected(
      await outcome(sql().tenantQuery(A, `SELECT a.event_id FROM events AS a, events AS b, events AS c, events AS d, events AS e, events AS f`)),
      'result rows',
    );
    expect(eventsA.length ** 6).toBeGreaterThan(DEFAULT_QUERY_LIMITS.maxResultRows);
    expect(e.code).toBe('query_limit_exceeded');
  });

  it('a memory bomb over events (tenant) and over numbers() (operator) gets a 4xx within 10 s; the next query works', async () => {
    for (const [who, run] of [
      ['tenant', () => sql().tenantQuery(A, 'SELECT length(groupArray(repeat(a.event_id, 1000000))) FROM events AS a, events AS b, events AS c, events AS d')],
      ['operator rows', () => sql().operatorQuery('SELECT length(groupArray(number)) FROM numbers(300000000)')],
      ['operator memory', () => sql().operatorQuery('SELECT length(groupArray(number)) FROM numbers(90000000)')],
    ] as const) {
      const t0 = Date.now();
      const e = expectRejected(await outcome(run()), who);
      expect(e.code, `${who}: ${e.message}`).toBe('query_limit_exceeded');
      expect(Date.now() - t0, who).toBeLessThanOrEqual(10_000);
    }
    expect(await sql().tenantQuery(A, 'SELECT count() AS n FROM events').then((r) => toNumber((r[0] as { n: unknown }).n))).toBe(eventsA.length);
  });
});

describe('analyst SQL: admission', () => {
  it('refuses an invalid tenant id before the engine sees anything', async () => {
    for (const id of [`${A}' OR 1=1 --`, '', 'A', '../x']) {
      const e = expectRejected(await outcome(embedded.tenantQuery(id, 'SELECT 1')), id);
      expect(e.code).toBe('query_invalid');
    }
  });

  it('bounds statements in flight: beyond the queue a 429, then service resumes', async () => {
    const tight = await createAnalystSql({ engine: 'chdb', dataDir: ch().dataDir, maxConcurrent: 1, maxQueued: 0 });
    try {
      const slow = tight.operatorQuery('SELECT count() AS n FROM numbers(60000000) WHERE sipHash64(number) % 7 = 0');
      const e = expectRejected(await outcome(tight.operatorQuery('SELECT 1')), 'queued');
      expect(e.status).toBe(429);
      expect(e.code).toBe('query_limit_exceeded');
      expect(await slow).toHaveLength(1);
      expect(await tight.operatorQuery('SELECT 1 AS x')).toEqual([{ x: 1 }]);
    } finally {
      await tight.close?.();
    }
    await expect(tight.operatorQuery('SELECT 1')).rejects.toThrow(/closed/);
  });
});

describe('analyst SQL: what the engine enforces', () => {
  it('every analyst table and view has a tenant_id column', async () => {
    const rows = await queryRows<{ table: string }>(
      ch().client,
      "SELECT table FROM system.columns WHERE database = 'default' AND name = 'tenant_id' AND table IN {t:Array(String)} ORDER BY table",
      { t: [...ANALYST_TABLES] },
    );
    expect(rows.map((r) => r.table)).toEqual([...ANALYST_TABLES].sort());
  });

  it('every allow-listed function exists in this engine', async () => {
    const rows = await queryRows<{ name: string }>(ch().client, 'SELECT name FROM system.functions');
    const known = new Set(rows.map((r) => r.name.toLowerCase()));
    const tableFns = new Set((await queryRows<{ name: string }>(ch().client, 'SELECT name FROM system.table_functions')).map((r) => r.name));
    const missing = [...FUNCTION_ALLOW_LISTS.scalar, ...FUNCTION_ALLOW_LISTS.aggregate, ...FUNCTION_ALLOW_LISTS.operator].filter((f) => !known.has(f.toLowerCase()));
    // operators and syntax the parser produces but that are not functions of their own
    expect(missing.filter((f) => !['lambda', 'exists', 'untuple', 'caseWithoutExpression', 'grouping', 'uniqTheta'].includes(f))).toEqual([]);
    expect(FUNCTION_ALLOW_LISTS.operatorTableFunctions.filter((f) => !tableFns.has(f))).toEqual([]);
  });

  it("a tenant's filter holds through views, CTEs, subqueries, joins, IN, UNION, aliases, default. and FINAL", async () => {
    // the filter setting alone, applied by the engine on a read-only session: every path to events
    const filters = tenantFilterSetting(A);
    const s = await import('chdb').then((m) => new m.Session(ch().dataDir));
    try {
      await s.queryAsync(`SET additional_table_filters = '${filters.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}', readonly = 1`);
      const forms = [
        'SELECT DISTINCT tenant_id FROM events',
        'SELECT DISTINCT tenant_id FROM default.events AS x FINAL',
        'SELECT DISTINCT tenant_id FROM (SELECT * FROM events)',
        'WITH c AS (SELECT * FROM events) SELECT DISTINCT tenant_id FROM c',
        'SELECT DISTINCT e.tenant_id FROM events AS e JOIN users AS u ON e.user_id = u.user_id',
        'SELECT DISTINCT u.tenant_id FROM users AS u WHERE u.user_id IN (SELECT user_id FROM events)',
        'SELECT DISTINCT tenant_id FROM events UNION DISTINCT SELECT tenant_id FROM users',
        'SELECT DISTINCT tenant_id FROM daily_active_users',
        'SELECT DISTINCT tenant_id FROM events_by_country',
        'SELECT (SELECT groupUniqArray(tenant_id) FROM events) AS tenant_id',
      ];
      for (const f of forms) {
        const text = (await s.queryAsync(f, { format: 'JSONEachRow' })).text();
        expect(text, f).toContain(A);
        expect(text, f).not.toContain(B);
      }
      const count = JSON.parse((await s.queryAsync('SELECT count() AS n FROM events', { format: 'JSONEachRow' })).text()) as { n: number };
      expect(count.n).toBe(eventsA.length);
      await expect(s.queryAsync("SELECT 1 SETTINGS additional_table_filters = {'events': '1'}")).rejects.toThrow(/READONLY|readonly/);
    } finally {
      s.close();
    }
  });
});

describe('schemas/clickhouse-server/analyst-user.sql', () => {
  const text = readFileSync(new URL('../../schemas/clickhouse-server/analyst-user.sql', import.meta.url), 'utf8');
  const statements = splitStatements(text);

  it('every statement parses in the real engine (formatQuery: parsed, never executed)', async () => {
    expect(statements.length).toBeGreaterThan(5);
    for (const st of statements) {
      const [row] = await queryRows<{ f: string }>(ch().client, 'SELECT formatQuery({q:String}) AS f', { q: st });
      expect(row?.f, st).toBeTruthy();
    }
  });

  it('grants SELECT on exactly the analyst tables and views, and nothing else', async () => {
    const canonical: string[] = [];
    for (const st of statements) canonical.push((await queryRows<{ f: string }>(ch().client, 'SELECT formatQuery({q:String}) AS f', { q: st }))[0]?.f ?? '');
    const grants = canonical.filter((s) => /^GRANT /.test(s));
    const selectOn = grants.flatMap((g) => {
      const m = /^GRANT SELECT ON default\.([A-Za-z_]+) TO tracklane_analyst_reader$/.exec(g);
      return m?.[1] ? [m[1]] : [];
    });
    expect(selectOn.sort()).toEqual([...ANALYST_TABLES].sort());
    // the only other grant is the role to the user
    expect(grants.filter((g) => !/^GRANT SELECT ON /.test(g))).toEqual(['GRANT tracklane_analyst_reader TO tracklane_analyst']);
    expect(canonical).toContain('REVOKE ALL ON *.* FROM tracklane_analyst_reader');
    expect(canonical).toContain('REVOKE ALL ON *.* FROM tracklane_analyst');
    expect(canonical.join('\n')).not.toMatch(/\b(?:SOURCES|FILE|URL|REMOTE|S3|dictGet|TEMPORARY|ALL ON \*\.\* TO)\b/i);
  });

  it('the profile is readonly with the default limits; only what Tracklane sends per request is changeable', async () => {
    const [row] = await queryRows<{ f: string }>(ch().client, 'SELECT formatQuery({q:String}) AS f', { q: statements.find((s) => /SETTINGS PROFILE OR REPLACE/.test(s)) ?? '' });
    const profile = row?.f ?? '';
    const l = DEFAULT_QUERY_LIMITS;
    for (const part of [
      'readonly = 1,',
      `max_memory_usage = ${l.maxMemoryBytes},`,
      `max_rows_to_read = ${l.maxRowsToRead},`,
      `max_bytes_to_read = ${l.maxBytesToRead},`,
      `max_result_rows = ${l.maxResultRows} MAX 1000000 CHANGEABLE_IN_READONLY`,
      `max_result_bytes = ${l.maxResultBytes} MAX 268435456 CHANGEABLE_IN_READONLY`,
      `max_execution_time = ${l.maxExecutionSeconds},`,
      'additional_table_filters CHANGEABLE_IN_READONLY',
    ]) {
      expect(profile).toContain(part);
    }
    expect(profile.match(/CHANGEABLE_IN_READONLY/g)).toHaveLength(3);
  });
});
