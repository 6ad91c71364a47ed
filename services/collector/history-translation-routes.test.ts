// The translation route: refused while the tenant does not anonymize (409), for an unknown
// tenant (404) or a body it does not understand (400); otherwise one pending receipt, 202 with its
// request id, and a warning when no compactor runs. A read key may not ask (access-matrix style).
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TranslationReceipt } from '../../libs/compactor/translation-receipts.js';
import { createMemoryTenantStore, type TenantStore } from '../../libs/tenants/tenant-store.js';
import { NO_COMPACTOR_FOR_TRANSLATION, registerHistoryTranslationRoutes } from './history-translation-routes.js';

let app: FastifyInstance;
let tenants: TenantStore;
let requested: TranslationReceipt[];
let seen: boolean | null;
let scope: 'operator' | 'read';

beforeEach(async () => {
  requested = [];
  seen = true;
  scope = 'operator';
  tenants = createMemoryTenantStore();
  await tenants.createTenant('acme');
  app = Fastify();
  app.decorateRequest('principal', null);
  app.decorateRequest('auditDetails', null);
  app.addHook('onRequest', async (req) => {
    req.principal = scope === 'operator' ? { kind: 'operator', keyId: 'operator' } : { kind: 'api_key', keyId: 'ak_1', tenantId: 'acme', scopes: ['read'] };
  });
  registerHistoryTranslationRoutes(app, { tenants, request: async (r) => void requested.push(r), compactorSeen: async () => seen, now: () => 5_000 });
  await app.ready();
});
afterEach(() => app.close());

const post = (tenant = 'acme', payload?: object) => app.inject({ method: 'POST', url: `/v1/admin/tenants/${tenant}/pseudonymize-history`, ...(payload ? { payload } : {}) });

describe('POST /v1/admin/tenants/:tenantId/pseudonymize-history', () => {
  it('409 while the tenant does not anonymize; nothing requested', async () => {
    const res = await post();
    expect(res.statusCode).toBe(409);
    expect(res.json()).toMatchObject({ error: 'anonymization_off' });
    expect(requested).toEqual([]);
  });

  it('404 for an unknown tenant, 400 for a bad id or an unknown body field', async () => {
    expect((await post('nobody')).statusCode).toBe(404);
    expect((await post('Bad Id!')).statusCode).toBe(400);
    await tenants.patchFlags('acme', { anonymizeIdentity: true }, 1_000);
    expect((await post('acme', { tenantWide: true })).statusCode).toBe(400);
  });

  it('202 with the request id of one pending receipt stamped with the opt-in instant', async () => {
    await tenants.patchFlags('acme', { anonymizeIdentity: true }, 1_000);
    const res = await post();
    expect(res.statusCode).toBe(202);
    const { requestId } = res.json<{ requestId: string }>();
    expect(res.json()).not.toHaveProperty('warning');
    expect(requested).toEqual([expect.objectContaining({ request_id: requestId, tenant_id: 'acme', status: 'pending', anonymize_since: tenants.get('acme')?.anonymizeSince, requested_at: 5_000, attempts: 0 })]);
  });

  it('says when no compactor runs (the request waits for one)', async () => {
    seen = false;
    await tenants.patchFlags('acme', { anonymizeIdentity: true }, 1_000);
    expect((await post()).json()).toMatchObject({ warning: NO_COMPACTOR_FOR_TRANSLATION });
  });

  it('a read key may not ask', async () => {
    scope = 'read';
    await tenants.patchFlags('acme', { anonymizeIdentity: true }, 1_000);
    expect((await post()).statusCode).toBe(403);
    expect(requested).toEqual([]);
  });
});
