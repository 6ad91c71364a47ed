// Admin API (bearer token): tenants, their flags, and a read-only SQL endpoint for
// analysts in embedded mode, where chDB lives inside this process.
import { timingSafeEqual, createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { describeIssues } from '../../libs/events/segment-message.js';
import { flagsPatchSchema } from '../../libs/tenants/flags.js';
import { TENANT_ID_RE, type TenantStore } from '../../libs/tenants/tenant-store.js';
import { registerOverwriteRoutes, type OverwriteDeps } from './overwrite-routes.js';

export interface AdminDeps {
  adminToken: string;
  tenants: TenantStore;
  /** false when no master key is configured: anonymization cannot be switched on */
  canAnonymize: boolean;
  /** runs one read-only statement; rejects with a ClickHouse error message on failure */
  readOnlyQuery: (sql: string) => Promise<unknown[]>;
  /** retroactive overwrites and erasures; the routes exist only where a compactor runs */
  overwrites?: Omit<OverwriteDeps, 'tenants'>;
  now?: () => number;
}

const querySchema = z.object({ sql: z.string().trim().min(1).max(100_000) }).strict();

export function registerAdminRoutes(app: FastifyInstance, deps: AdminDeps): void {
  const now = deps.now ?? Date.now;
  const expected = digest(deps.adminToken);

  app.register(async (admin) => {
    admin.addHook('onRequest', async (req, reply) => {
      if (!authorized(req, expected)) {
        return reply
          .code(401)
          .header('www-authenticate', 'Bearer realm="tracklane-admin"')
          .send({ error: 'unauthorized', message: 'admin routes need Authorization: Bearer <TRACKLANE_ADMIN_TOKEN>' });
      }
    });

    admin.put('/v1/admin/tenants/:tenantId', async (req, reply) => {
      const tenantId = tenantIdParam(req, reply);
      if (!tenantId) return reply;
      const { tenant, created } = await deps.tenants.createTenant(tenantId);
      // NOTE: the fleet's Redis store keeps only key hashes: an existing tenant comes back without its key.
      const body = tenant.writeKey === '' ? { tenantId: tenant.tenantId, created } : { tenantId: tenant.tenantId, writeKey: tenant.writeKey, created };
      return reply.code(created ? 201 : 200).send(body);
    });

    admin.get('/v1/admin/tenants/:tenantId/flags', async (req, reply) => {
      const tenantId = tenantIdParam(req, reply);
      if (!tenantId) return reply;
      const tenant = deps.tenants.getTenant(tenantId);
      if (!tenant) return notFound(reply, tenantId);
      return reply.send({ tenantId, ...tenant.flags });
    });

    admin.patch('/v1/admin/tenants/:tenantId/flags', async (req, reply) => {
      const tenantId = tenantIdParam(req, reply);
      if (!tenantId) return reply;
      const parsed = flagsPatchSchema.safeParse(req.body ?? {});
      if (!parsed.success) {
        return reply.code(400).send({ error: 'bad_request', message: describeIssues(parsed.error) });
      }
      if (parsed.data.anonymizeIdentity === true && !deps.canAnonymize) {
        return reply.code(409).send({
          error: 'master_key_missing',
          message: 'anonymization needs TRACKLANE_MASTER_KEY (at least 32 bytes) in the server environment',
        });
      }
      const flags = await deps.tenants.patchFlags(tenantId, parsed.data, now());
      if (!flags) return notFound(reply, tenantId);
      return reply.send({ tenantId, ...flags });
    });

    if (deps.overwrites) registerOverwriteRoutes(admin, { ...deps.overwrites, tenants: deps.tenants });

    admin.post('/v1/admin/query', async (req, reply) => {
      const parsed = querySchema.safeParse(req.body ?? {});
      if (!parsed.success) {
        return reply.code(400).send({ error: 'bad_request', message: describeIssues(parsed.error) });
      }
      try {
        const rows = await deps.readOnlyQuery(parsed.data.sql);
        return reply.send({ rows });
      } catch (err) {
        return reply.code(400).send({ error: 'query_failed', message: (err as Error).message });
      }
    });
  });
}

function tenantIdParam(req: FastifyRequest, reply: FastifyReply): string | undefined {
  const id = (req.params as { tenantId?: string }).tenantId ?? '';
  if (!TENANT_ID_RE.test(id)) {
    void reply.code(400).send({
      error: 'bad_request',
      message: 'tenantId must be 1-63 characters of a-z, 0-9, "_" or "-", starting with a letter or digit',
    });
    return undefined;
  }
  return id;
}

function notFound(reply: FastifyReply, tenantId: string) {
  return reply.code(404).send({ error: 'not_found', message: `tenant "${tenantId}" does not exist` });
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

function authorized(req: FastifyRequest, expected: Buffer): boolean {
  const auth = req.headers.authorization;
  if (!auth?.startsWith('Bearer ')) return false;
  // NOTE: compare digests so the comparison is constant-time whatever the lengths.
  return timingSafeEqual(digest(auth.slice(7).trim()), expected);
}
