// Acceptance check of issue 16 item 6 on the embedded runner (chDB): a tracking plan in each
// mode, table-driven — which events and properties are stored in `events`, which rows are in
// `violations`, and that no violation row (nor any table, where the plan omitted or blocked it)
// holds an offending value.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toNumber } from '../../libs/clickhouse/client.js';
import type { EmbeddedServer } from '../../services/embedded/embedded-runner.js';
import { startInProcessEmbedded, type InProcessEmbedded } from '../support/in-process-embedded.js';
import { grepEveryColumn } from '../support/grep-tables.js';
import { eventually } from '../support/poll.js';

let e2e: InProcessEmbedded;
let server: EmbeddedServer;

beforeAll(async () => {
  e2e = await startInProcessEmbedded();
  server = e2e.server;
}, 120_000);

afterAll(() => e2e?.stop());

const admin = (method: string, path: string, body?: unknown) => e2e.admin(method, path, body);

const rows = async <T = Record<string, unknown>>(sql: string): Promise<T[]> => (await server.analystQuery(sql)) as T[];

const plan = (mode: string, unplanned: string) => ({
  mode,
  unplanned,
  events: {
    'Order Completed': { type: 'object', additionalProperties: false, required: ['total'], properties: { total: { type: 'number' }, currency: { enum: ['EUR', 'USD'] } } },
  },
  traits: { type: 'object', properties: { plan: { enum: ['free', 'pro'] } } },
});

/** distinctive values per tenant: none may appear in `violations`; where omitted or blocked, nowhere */
const needles = (tag: string) => ({ currency: `GBP-${tag}-cur`, email: `${tag}-mail@example.com`, campaign: `camp-${tag}`, plan: `plan-${tag}` });

function batch(tag: string) {
  const n = needles(tag);
  return [
    { type: 'track', messageId: `${tag}-ok`, userId: 'u1', event: 'Order Completed', properties: { total: 10, currency: 'EUR' } },
    { type: 'track', messageId: `${tag}-bad`, userId: 'u1', event: 'Order Completed', properties: { total: 12, currency: n.currency, email: n.email } },
    { type: 'track', messageId: `${tag}-unplanned`, userId: 'u1', event: 'Newsletter Opened', properties: { campaign: n.campaign } },
    { type: 'identify', messageId: `${tag}-identify`, userId: 'u1', traits: { plan: n.plan, company: 'Acme' } },
    { type: 'page', messageId: `${tag}-page`, userId: 'u1', name: 'Pricing', properties: { anything: 'goes' } },
  ];
}

type Stored = Record<string, string[]>;
interface Case {
  mode: 'flag' | 'omit' | 'block';
  unplanned: 'allow' | 'flag' | 'block';
  /** event id suffix → its stored property (or, for identify, trait) names */
  stored: Stored;
  /** violation rows as (event id suffix, action, rule, property) */
  violations: [string, string, string, string][];
  /** needles that must be nowhere at all */
  gone: (keyof ReturnType<typeof needles>)[];
  dropped: number;
}

const CASES: Case[] = [
  {
    mode: 'flag',
    unplanned: 'flag',
    stored: { ok: ['currency', 'total'], bad: ['currency', 'email', 'total'], unplanned: ['campaign'], identify: ['company', 'plan'], page: ['anything'] },
    violations: [
      ['bad', 'flagged', '#/additionalProperties', '/properties/email'],
      ['bad', 'flagged', '#/properties/currency/enum', '/properties/currency'],
      ['identify', 'flagged', '#/properties/plan/enum', '/traits/plan'],
      ['unplanned', 'flagged', 'unplanned', ''],
    ],
    gone: [],
    dropped: 0,
  },
  {
    mode: 'omit',
    unplanned: 'allow',
    stored: { ok: ['currency', 'total'], bad: ['total'], unplanned: ['campaign'], identify: ['company'], page: ['anything'] },
    violations: [
      ['bad', 'omitted', '#/additionalProperties', '/properties/email'],
      ['bad', 'omitted', '#/properties/currency/enum', '/properties/currency'],
      ['identify', 'omitted', '#/properties/plan/enum', '/traits/plan'],
    ],
    gone: ['currency', 'email', 'plan'],
    dropped: 0,
  },
  {
    mode: 'block',
    unplanned: 'block',
    stored: { ok: ['currency', 'total'], page: ['anything'] },
    violations: [
      ['bad', 'blocked', '#/additionalProperties', '/properties/email'],
      ['bad', 'blocked', '#/properties/currency/enum', '/properties/currency'],
      ['identify', 'blocked', '#/properties/plan/enum', '/traits/plan'],
      ['unplanned', 'blocked', 'unplanned', ''],
    ],
    gone: ['currency', 'email', 'campaign', 'plan'],
    dropped: 3,
  },
];

describe('tracking plans, end to end (embedded)', () => {
  const tag = randomBytes(4).toString('hex');
  const tenantOf = (mode: string) => `plan-${mode}-${tag}`;

  beforeAll(async () => {
    // every mode's tenant gets its plan and its batch first; the checks below then poll once
    for (const c of CASES) {
      const tenant = tenantOf(c.mode);
      const created = await admin('PUT', `/v1/admin/tenants/${tenant}`);
      expect(created.status).toBe(201);
      expect((await admin('PUT', `/v1/admin/tenants/${tenant}/tracking-plan`, plan(c.mode, c.unplanned))).status).toBe(200);
      const res = await fetch(`${server.url}/v1/batch`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${String(created.body['writeKey'])}:`).toString('base64')}` },
        body: JSON.stringify({ batch: batch(`${c.mode}${tag}`) }),
      });
      const answer = (await res.json()) as Record<string, unknown>;
      expect(res.status).toBe(200);
      expect(answer['accepted']).toBe(5 - c.dropped);
      expect(answer['dropped'] ?? 0).toBe(c.dropped);
    }
  }, 60_000);

  it.each(CASES)('$mode (unplanned $unplanned): the events and properties stored', async (c) => {
    const tenant = tenantOf(c.mode);
    const prefix = `${c.mode}${tag}-`;
    const got = await rows<{ event_id: string; properties: Record<string, string>; traits: Record<string, string> }>(
      `SELECT event_id, properties, traits FROM events_with_traits WHERE tenant_id = '${tenant}' ORDER BY event_id`,
    );
    const stored: Stored = Object.fromEntries(got.map((r) => [r.event_id.slice(prefix.length), Object.keys(r.event_id.endsWith('-identify') ? r.traits : r.properties).sort()]));
    expect(stored).toEqual(c.stored);
  });

  it.each(CASES)('$mode: the violations recorded, without values', async (c) => {
    const tenant = tenantOf(c.mode);
    const prefix = `${c.mode}${tag}-`;
    const got = await eventually(async () => {
      const r = await rows<Record<string, unknown>>(`SELECT * FROM violations WHERE tenant_id = '${tenant}' ORDER BY event_id, rule`);
      return r.length >= c.violations.length ? r : undefined;
    }, 15_000, `${c.mode} violations`);
    expect(got.map((r) => [String(r['event_id']).slice(prefix.length), r['action'], r['rule'], r['property']])).toEqual(c.violations);
    for (const r of got) {
      expect(toNumber(r['plan_version'])).toBe(1);
      expect(r['event_type']).toBe(String(r['event_id']).endsWith('-identify') ? 'identify' : 'track');
      expect(String(r['reason']).length).toBeGreaterThan(0);
    }
    // a tenant's analysts see their own violations only (the engine's row filter)
    expect(await server.tenantQuery(tenant, 'SELECT DISTINCT tenant_id FROM violations')).toEqual([{ tenant_id: tenant }]);
    // no column of any violation row holds an offending value
    const text = JSON.stringify(got);
    for (const needle of Object.values(needles(`${c.mode}${tag}`))) expect(text).not.toContain(needle);
  });

  it('what a plan omitted or blocked is stored nowhere; /metrics counts the violations', async () => {
    const gone = CASES.flatMap((c) => c.gone.map((k) => needles(`${c.mode}${tag}`)[k]));
    expect(await grepEveryColumn((sql) => rows(sql), gone)).toEqual([]);
    // and the values the flag mode kept are where they belong: the search can find them
    const kept = needles(`flag${tag}`);
    expect(await grepEveryColumn((sql) => rows(sql), [kept.email])).toEqual(expect.arrayContaining(['events.properties']));
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    for (const [action, n] of [['flagged', 4], ['omitted', 3], ['blocked', 4]] as const) {
      expect(metrics).toMatch(new RegExp(`tracklane_plan_violations_total\\{action="${action}"[^}]*\\} ${n}\\b`));
    }
  });

  it('a plan with a backtracking-only pattern is refused with where it is', async () => {
    const tenant = tenantOf('flag');
    const res = await admin('PUT', `/v1/admin/tenants/${tenant}/tracking-plan`, { mode: 'flag', events: { E: { type: 'object', properties: { a: { type: 'string', pattern: '^(\\w+)\\1$' } } } } });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: 'invalid_plan', path: '/events/E/properties/a/pattern' });
    expect((await admin('GET', `/v1/admin/tenants/${tenant}/tracking-plan`)).body).toMatchObject({ version: 1, mode: 'flag' });
  });
});
