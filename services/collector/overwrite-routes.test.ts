// The overwrite routes' answers about the compactor: accepted requests (and pending ones asked
// about later) say when no compactor runs; nothing is said when one runs or it is unknown. And
// the receipt route asks whether the caller may see the tenant before anything is written.
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NO_COMPACTOR_WARNING } from '../compactor/compactor-presence.js';
import { EXPIRED_BEFORE_APPLIED, requestReceipt, type ReceiptStore, type RequestReceipt } from '../../libs/compactor/receipts.js';
import type { OverwriteCommand } from '../../libs/events/overwrite-command.js';
import { createMemoryTenantStore } from '../../libs/tenants/tenant-store.js';
import { registerOverwriteRoutes } from './overwrite-routes.js';

let app: FastifyInstance;
let seen: boolean | null;
let submitted: OverwriteCommand[];
let receipt: RequestReceipt;
const REQUEST = '0b7d6a9e-3f55-4c1e-9a44-1c2d3e4f5a6b';

beforeEach(async () => {
  seen = false;
  submitted = [];
  receipt = { requestId: REQUEST, tenantId: 'acme', status: 'pending', commands: 1, rowsRewritten: {}, reason: null, requestedAt: 1, verifiedAt: null, suppressedEvents: 0, copiesExpireBy: null };
  const tenants = createMemoryTenantStore();
  await tenants.createTenant('acme');
  app = Fastify();
  // NOTE: the operator, as the admin plugin's authentication would set it (admin-auth.ts)
  app.decorateRequest('principal', null);
  app.decorateRequest('auditDetails', null);
  app.addHook('onRequest', async (req) => {
    req.principal = { kind: 'operator', keyId: 'operator' };
  });
  registerOverwriteRoutes(app, {
    tenants,
    submit: async (c) => void submitted.push(...c),
    receipt: async () => receipt,
    storedIds: async (_t, _s, ids) => new Set(ids),
    compactorSeen: async () => seen,
  });
  await app.ready();
});
afterEach(() => app.close());

const patch = () => app.inject({ method: 'PATCH', url: '/v1/admin/tenants/acme/users/u1', payload: { set: { email: 'a@b.example' } } });
const erase = () => app.inject({ method: 'POST', url: '/v1/admin/tenants/acme/erasures', payload: { userIds: ['u1'], mode: 'anonymize' } });
const load = () => app.inject({ method: 'POST', url: '/v1/admin/tenants/acme/loads', payload: { subject: 'user', rows: [{ id: 'u1', set: { email: 'a@b.example' } }] } });
const ask = () => app.inject({ method: 'GET', url: `/v1/admin/requests/${REQUEST}` });

describe('overwrite routes without a compactor', () => {
  it('accept the request (it waits in Kafka) and say no compactor runs', async () => {
    for (const send of [patch, erase, load]) {
      const res = await send();
      expect(res.statusCode).toBe(202);
      expect(res.json()).toMatchObject({ requestId: expect.any(String), warning: NO_COMPACTOR_WARNING });
    }
    expect(submitted).toHaveLength(3);
    expect((await ask()).json()).toMatchObject({ status: 'pending', warning: NO_COMPACTOR_WARNING });
  });

  it('say nothing of it once a request is done', async () => {
    receipt = { ...receipt, status: 'verified', verifiedAt: 2 };
    expect((await ask()).json()).not.toHaveProperty('warning');
  });

  it.each([true, null])('say nothing when the compactor is seen or unknown (%s)', async (value) => {
    seen = value;
    for (const send of [patch, erase, load]) expect((await send()).json()).not.toHaveProperty('warning');
    expect((await ask()).json()).not.toHaveProperty('warning');
  });
});

describe('receipt route: who may see a request decides before anything is written', () => {
  const DAY = 24 * 3_600_000;
  let expired: string[];
  let stored: RequestReceipt;
  let other: FastifyInstance;
  // NOTE: a fake of the store's two calls on this path (the real one: receipts.integration.test.ts)
  const store: Pick<ReceiptStore, 'forRequest' | 'expirePending'> = {
    forRequest: async (id) => (id === REQUEST ? stored : undefined),
    expirePending: async (_ttl, opts) => {
      expired.push(opts?.requestId ?? '*');
      stored = { ...stored, status: 'failed', reason: EXPIRED_BEFORE_APPLIED };
      return stored.commands;
    },
  };

  beforeEach(async () => {
    expired = [];
    stored = { ...receipt, requestedAt: Date.now() - 8 * DAY };
    const tenants = createMemoryTenantStore();
    await tenants.createTenant('acme');
    other = Fastify();
    other.decorateRequest('principal', null);
    other.decorateRequest('auditDetails', null);
    // NOTE: a key of the tenant named by the header (as admin-auth.ts would set it), else the operator
    other.addHook('onRequest', async (req) => {
      const tenant = req.headers['x-tenant'];
      req.principal = typeof tenant === 'string' ? { kind: 'api_key', tenantId: tenant, keyId: 'ak_test', scopes: ['read'] } : { kind: 'operator', keyId: 'operator' };
    });
    registerOverwriteRoutes(other, {
      tenants,
      submit: async () => undefined,
      receipt: (id, mayRead) => requestReceipt(store as ReceiptStore, id, { pendingTtlMs: 7 * DAY, copiesHorizonMs: null }, { mayRead }),
      storedIds: async (_t, _s, ids) => new Set(ids),
    });
    await other.ready();
    return () => other.close();
  });
  const askAs = (tenant?: string) => other.inject({ method: 'GET', url: `/v1/admin/requests/${REQUEST}`, ...(tenant ? { headers: { 'x-tenant': tenant } } : {}) });

  it('a key of another tenant: unknown, and its expired pending commands are not failed', async () => {
    const res = await askAs('globex');
    expect(res.statusCode).toBe(404);
    expect(expired).toEqual([]);
    expect(stored.status).toBe('pending');
  });

  it.each([['a key of the tenant', 'acme'], ['the operator', undefined]])('%s: the receipt, its expired commands failed first', async (_name, tenant) => {
    const res = await askAs(tenant);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ status: 'failed', reason: EXPIRED_BEFORE_APPLIED });
    expect(expired).toEqual([REQUEST]);
  });
});

describe('erasures: replaceId', () => {
  const eraseWith = (payload: Record<string, unknown>) => app.inject({ method: 'POST', url: '/v1/admin/tenants/acme/erasures', payload: { userIds: ['u1', 'u2'], ...payload } });

  it.each<[string, Record<string, unknown>, boolean]>([
    ['delete without deleteEvents: on by default', { mode: 'delete' }, true],
    ['delete with deleteEvents: nothing kept to replace', { mode: 'delete', deleteEvents: true }, false],
    ['anonymize: off by default (attributes only)', { mode: 'anonymize' }, false],
    ['anonymize asking for it', { mode: 'anonymize', replaceId: true }, true],
    ['delete declining it', { mode: 'delete', replaceId: false }, false],
  ])('%s', async (_name, payload, replaces) => {
    const res = await eraseWith(payload);
    expect(res.statusCode).toBe(202);
    expect(res.json()).toMatchObject({ replaceId: replaces });
    const ids = submitted.map((c) => c.replacement_id);
    if (!replaces) expect(ids).toEqual([undefined, undefined]);
    else {
      // random and one per user: nothing computes it from the user's id
      for (const id of ids) expect(id).toMatch(/^anon-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(new Set(ids).size).toBe(2);
    }
  });

  it('refuses replaceId with deleteEvents, naming the field', async () => {
    const res = await eraseWith({ mode: 'delete', deleteEvents: true, replaceId: true });
    expect(res.statusCode).toBe(400);
    expect(res.json()['message']).toMatch(/replaceId/);
    expect(submitted).toEqual([]);
  });
});
