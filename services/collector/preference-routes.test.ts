// The tracking preference routes: PUT then GET reads it back, 400 for a body or id it does not
// understand, 404 for an unknown tenant, 403 for a read key; the audit row names the user by hash.
import Fastify, { type FastifyInstance } from 'fastify';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openFileTrackingPreferences, type TrackingPreferences } from '../../libs/collection/tracking-preferences.js';
import { subjectHasher } from '../../libs/privacy/subject-hash.js';
import { createMemoryTenantStore } from '../../libs/tenants/tenant-store.js';
import { registerPreferenceRoutes } from './preference-routes.js';

const subjectHash = subjectHasher(Buffer.alloc(32, 9));
let app: FastifyInstance;
let dir: string;
let preferences: TrackingPreferences;
let scope: 'operator' | 'read';
let audited: Record<string, string> | null;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tl-pref-routes-'));
  preferences = await openFileTrackingPreferences(join(dir, 'prefs.json'), subjectHash);
  scope = 'operator';
  audited = null;
  const tenants = createMemoryTenantStore();
  await tenants.createTenant('acme');
  app = Fastify({ routerOptions: { maxParamLength: 512 } });
  app.decorateRequest('principal', null);
  app.decorateRequest('auditDetails', null);
  app.addHook('onRequest', async (req) => {
    req.principal = scope === 'operator' ? { kind: 'operator', keyId: 'operator' } : { kind: 'api_key', keyId: 'ak_1', tenantId: 'acme', scopes: ['read'] };
  });
  app.addHook('onResponse', async (req) => {
    audited = req.auditDetails;
  });
  registerPreferenceRoutes(app, { tenants, preferences, subjectHash, now: () => 7_000 });
  await app.ready();
});
afterEach(async () => {
  await app.close();
  await rm(dir, { recursive: true, force: true });
});

const url = (tenant = 'acme', user = 'ann%40acme.com') => `/v1/admin/tenants/${tenant}/users/${user}/preferences`;
const put = (payload: unknown, tenant?: string, user?: string) => app.inject({ method: 'PUT', url: url(tenant, user), payload: payload as object });

describe('…/users/:userId/preferences', () => {
  it('PUT switches tracking off, GET reads it back, PUT true switches it on again', async () => {
    expect((await app.inject({ method: 'GET', url: url() })).json()).toEqual({ tenantId: 'acme', trackUsage: true, updatedAt: null });
    const off = await put({ trackUsage: false });
    expect(off.statusCode).toBe(200);
    expect(off.json()).toEqual({ tenantId: 'acme', trackUsage: false, updatedAt: 7_000 });
    expect(audited).toEqual({ subjectIdHash: subjectHash('acme', 'ann@acme.com'), trackUsage: 'false' });
    expect(preferences.tracked('acme', 'ann@acme.com')).toBe(false);
    expect((await app.inject({ method: 'GET', url: url() })).json()).toMatchObject({ trackUsage: false });
    await put({ trackUsage: true });
    expect(preferences.tracked('acme', 'ann@acme.com')).toBe(true);
  });

  it.each([
    ['no body field', {}],
    ['a string', { trackUsage: 'false' }],
    ['an unknown field', { trackUsage: false, forever: true }],
  ])('400 for %s; nothing changes', async (_name, body) => {
    const res = await put(body);
    expect(res.statusCode).toBe(400);
    expect(res.json().message).toMatch(/trackUsage|forever|Unrecognized/);
    expect(preferences.tracked('acme', 'ann@acme.com')).toBe(true);
  });

  it('400 for a user id over 128 characters, 404 for an unknown tenant, 403 for a read key', async () => {
    expect((await put({ trackUsage: false }, 'acme', 'x'.repeat(129))).statusCode).toBe(400);
    expect((await put({ trackUsage: false }, 'nobody')).statusCode).toBe(404);
    scope = 'read';
    expect((await put({ trackUsage: false })).statusCode).toBe(403);
    expect((await app.inject({ method: 'GET', url: url() })).statusCode).toBe(403);
  });
});
