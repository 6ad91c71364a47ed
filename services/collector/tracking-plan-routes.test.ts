// The tracking plan routes: PUT validates (bounds, shape, ajv strict, linear-time patterns) and
// answers 400 naming where; stores with a growing version; GET and DELETE; unknown tenants 404;
// a read key may not; the audit details are counts, never schemas or event names.
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createMemoryPlanStore, type PlanStore } from '../../libs/plans/plan-store.js';
import { createMemoryTenantStore, type TenantStore } from '../../libs/tenants/tenant-store.js';
import { registerTrackingPlanRoutes } from './tracking-plan-routes.js';

let app: FastifyInstance;
let tenants: TenantStore;
let plans: PlanStore;
let scope: 'operator' | 'read';
let audited: (Record<string, string> | null)[];

beforeEach(async () => {
  scope = 'operator';
  audited = [];
  tenants = createMemoryTenantStore();
  await tenants.createTenant('acme');
  plans = createMemoryPlanStore();
  app = Fastify();
  app.decorateRequest('principal', null);
  app.decorateRequest('auditDetails', null);
  app.addHook('onRequest', async (req) => {
    req.principal = scope === 'operator' ? { kind: 'operator', keyId: 'operator' } : { kind: 'api_key', keyId: 'ak_1', tenantId: 'acme', scopes: ['read'] };
  });
  app.addHook('onResponse', async (req) => void audited.push(req.auditDetails));
  registerTrackingPlanRoutes(app, { tenants, plans, now: () => 5_000 });
  await app.ready();
});
afterEach(() => app.close());

const URL = (t = 'acme') => `/v1/admin/tenants/${t}/tracking-plan`;
const put = (payload: unknown, t = 'acme') => app.inject({ method: 'PUT', url: URL(t), payload: payload as object });
const PLAN = {
  mode: 'omit',
  unplanned: 'flag',
  events: { 'Order Completed': { type: 'object', properties: { total: { type: 'number' }, coupon: { type: 'string', pattern: '^[A-Z]{4}$' } } } },
  traits: { type: 'object', properties: { plan: { enum: ['free', 'pro'] } } },
};

describe('PUT /v1/admin/tenants/:tenantId/tracking-plan', () => {
  it('stores the plan with version 1, then 2; GET reads it back', async () => {
    const first = await put(PLAN);
    expect(first.statusCode).toBe(200);
    expect(first.json()).toEqual({ tenantId: 'acme', version: 1, updatedAt: 5_000, ...PLAN });
    expect((await put({ ...PLAN, mode: 'block' })).json()).toMatchObject({ version: 2, mode: 'block' });
    const got = await app.inject({ method: 'GET', url: URL() });
    expect(got.statusCode).toBe(200);
    expect(got.json()).toMatchObject({ version: 2, mode: 'block', unplanned: 'flag' });
    expect(plans.get('acme')?.version).toBe(2);
    expect(audited[0]).toEqual({ version: '1', mode: 'omit', unplanned: 'flag', events: '1', traits: 'yes' });
    expect(JSON.stringify(audited)).not.toContain('Order Completed');
  });

  it('defaults: unplanned allow, no events', async () => {
    expect((await put({ mode: 'flag' })).json()).toEqual({ tenantId: 'acme', version: 1, updatedAt: 5_000, mode: 'flag', unplanned: 'allow', events: {} });
  });

  it.each([
    { what: 'an unknown mode', body: { mode: 'warn' }, path: '/mode' },
    { what: 'an unknown field', body: { mode: 'flag', rules: [] }, path: '' },
    { what: 'an event schema that is not an object', body: { mode: 'flag', events: { E: 'string' } }, path: '/events/E' },
    { what: 'a backreference', body: { mode: 'flag', events: { E: { type: 'object', properties: { a: { type: 'string', pattern: '^(a)\\1$' } } } } }, path: '/events/E/properties/a/pattern' },
    { what: 'a lookahead in traits', body: { mode: 'flag', traits: { type: 'object', properties: { a: { type: 'string', pattern: '(?=x)' } } } }, path: '/traits/properties/a/pattern' },
    { what: 'an unknown keyword (strict)', body: { mode: 'flag', events: { E: { type: 'object', propertees: {} } } }, path: '/events/E' },
    { what: 'an invalid type', body: { mode: 'flag', events: { E: { type: 'object', properties: { a: { type: 'text' } } } } }, path: '/events/E/properties/a/type' },
    { what: 'a schema nested too deep', body: { mode: 'flag', events: { E: JSON.parse(`${'{"type":"object","properties":{"p":'.repeat(14)}{}${'}}'.repeat(14)}`) as object } }, path: /^\/events\/E(\/properties\/p)+(\/properties)?$/ },
  ])('400 for $what, naming where', async ({ body, path }) => {
    const res = await put(body);
    expect(res.statusCode).toBe(400);
    const answer = res.json<{ error: string; path: string; message: string }>();
    expect(answer.error).toBe('invalid_plan');
    if (typeof path === 'string') expect(answer.path).toBe(path);
    else expect(answer.path).toMatch(path);
    expect(plans.get('acme')).toBeNull();
  });

  it('404 for an unknown tenant, 400 for a bad id, 403 for a read key', async () => {
    expect((await put(PLAN, 'nobody')).statusCode).toBe(404);
    expect((await put(PLAN, 'Bad Id!')).statusCode).toBe(400);
    scope = 'read';
    expect((await put(PLAN)).statusCode).toBe(403);
    expect((await app.inject({ method: 'GET', url: URL() })).statusCode).toBe(403);
    expect(plans.get('acme')).toBeNull();
  });
});

describe('GET and DELETE', () => {
  it('404 without a plan; DELETE removes it (204), then 404', async () => {
    expect((await app.inject({ method: 'GET', url: URL() })).json()).toMatchObject({ error: 'no_plan' });
    await put(PLAN);
    expect((await app.inject({ method: 'DELETE', url: URL() })).statusCode).toBe(204);
    expect(plans.get('acme')).toBeNull();
    expect((await app.inject({ method: 'DELETE', url: URL() })).statusCode).toBe(404);
    // a plan PUT after a removal gets a version never used before
    expect((await put(PLAN)).json()).toMatchObject({ version: 3 });
  });

  it('503 while the store has not loaded plans yet', async () => {
    const unknown: PlanStore = { ...plans, get: () => undefined };
    const other = Fastify();
    other.decorateRequest('principal', null);
    other.decorateRequest('auditDetails', null);
    other.addHook('onRequest', async (req) => void (req.principal = { kind: 'operator', keyId: 'operator' }));
    registerTrackingPlanRoutes(other, { tenants, plans: unknown });
    const res = await other.inject({ method: 'GET', url: URL() });
    expect(res.statusCode).toBe(503);
    await other.close();
  });
});
