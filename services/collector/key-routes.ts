// A tenant's credentials over the admin API: API keys (scoped) and write keys (ingest), each
// created with its secret shown once, listed without secrets, revoked by id. Revocation reaches
// every replica through the tenant store (Redis: within its staleness bound, ≤ 1 s).
import type { FastifyInstance, FastifyReply } from 'fastify';
import { describeIssues } from '../../libs/events/segment-message.js';
import { apiKeyRequestSchema, describeApiKey, KEY_ID_RE, KeyLimitError } from '../../libs/tenants/tenant-keys.js';
import type { TenantStore } from '../../libs/tenants/tenant-store.js';
import { mayGrant, requireAccess } from './admin-auth.js';
import { notFound, tenantIdParam } from './route-params.js';

export interface KeyRouteDeps {
  tenants: TenantStore;
}

export function registerKeyRoutes(admin: FastifyInstance, deps: KeyRouteDeps): void {
  const asAdmin = requireAccess({ scope: 'admin' });

  admin.post('/v1/admin/tenants/:tenantId/api-keys', { preHandler: asAdmin, config: { audit: 'api_key.create' } }, async (req, reply) => {
    const tenantId = tenantIdParam(req, reply);
    if (!tenantId) return reply;
    const parsed = apiKeyRequestSchema.safeParse(req.body ?? {});
    if (!parsed.success) return reply.code(400).send({ error: 'bad_request', message: describeIssues(parsed.error) });
    req.auditDetails = { scopes: parsed.data.scopes.join(',') };
    if (req.principal === null || !mayGrant(req.principal, parsed.data.scopes)) {
      return reply.code(403).send({ error: 'forbidden', message: 'a key cannot grant scopes its creator does not hold' });
    }
    const created = await limited(reply, () => deps.tenants.createApiKey(tenantId, parsed.data));
    if (created === null) return reply;
    if (created === undefined) return notFound(reply, tenantId);
    req.auditDetails = { ...req.auditDetails, keyId: created.entry.keyId };
    return reply.code(201).send({ ...describeApiKey(created.entry), key: created.key });
  });

  admin.get('/v1/admin/tenants/:tenantId/api-keys', { preHandler: asAdmin }, async (req, reply) => {
    const tenantId = tenantIdParam(req, reply);
    if (!tenantId) return reply;
    const tenant = deps.tenants.getTenant(tenantId);
    if (!tenant) return notFound(reply, tenantId);
    return reply.send({ apiKeys: tenant.keys.apiKeys.map(describeApiKey) });
  });

  admin.post('/v1/admin/tenants/:tenantId/write-keys', { preHandler: asAdmin, config: { audit: 'write_key.create' } }, async (req, reply) => {
    const tenantId = tenantIdParam(req, reply);
    if (!tenantId) return reply;
    const created = await limited(reply, () => deps.tenants.createWriteKey(tenantId));
    if (created === null) return reply;
    if (created === undefined) return notFound(reply, tenantId);
    req.auditDetails = { keyId: created.entry.keyId };
    return reply.code(201).send({ keyId: created.entry.keyId, writeKey: created.writeKey, createdAt: new Date(created.entry.createdAt).toISOString() });
  });

  admin.get('/v1/admin/tenants/:tenantId/write-keys', { preHandler: asAdmin }, async (req, reply) => {
    const tenantId = tenantIdParam(req, reply);
    if (!tenantId) return reply;
    const tenant = deps.tenants.getTenant(tenantId);
    if (!tenant) return notFound(reply, tenantId);
    return reply.send({ writeKeys: tenant.keys.writeKeys.map((k) => ({ keyId: k.keyId, createdAt: new Date(k.createdAt).toISOString() })) });
  });

  for (const kind of ['api-keys', 'write-keys'] as const) {
    admin.delete(`/v1/admin/tenants/:tenantId/${kind}/:keyId`, { preHandler: asAdmin, config: { audit: kind === 'api-keys' ? 'api_key.revoke' : 'write_key.revoke' } }, async (req, reply) => {
      const tenantId = tenantIdParam(req, reply);
      if (!tenantId) return reply;
      const { keyId } = req.params as { keyId: string };
      const tenant = deps.tenants.getTenant(tenantId);
      if (!tenant) return notFound(reply, tenantId);
      const list: readonly { keyId: string }[] = kind === 'api-keys' ? tenant.keys.apiKeys : tenant.keys.writeKeys;
      if (!KEY_ID_RE.test(keyId) || !list.some((k) => k.keyId === keyId)) {
        return reply.code(404).send({ error: 'not_found', message: `no ${kind === 'api-keys' ? 'API' : 'write'} key with that id` });
      }
      req.auditDetails = { keyId };
      const outcome = await deps.tenants.revokeKey(tenantId, keyId);
      if (outcome === 'no_tenant') return notFound(reply, tenantId);
      if (outcome === 'no_key') return reply.code(404).send({ error: 'not_found', message: 'no key with that id' });
      return reply.code(204).send();
    });
  }
}

/** Runs `fn`; a KeyLimitError becomes 409 and resolves null (the reply is sent). */
async function limited<T>(reply: FastifyReply, fn: () => Promise<T>): Promise<T | null> {
  try {
    return await fn();
  } catch (err) {
    if (!(err instanceof KeyLimitError)) throw err;
    void reply.code(409).send({ error: 'key_limit', message: err.message });
    return null;
  }
}
