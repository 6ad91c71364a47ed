// The admin API: tenants, flags, credentials, analyst SQL, overwrites. Which routes a listener
// serves and which credentials it accepts (DESIGN.md §8):
// - `public` (the fleet's PORT): the tenant routes, tenant API keys only — never the operator;
// - `admin` (ADMIN_PORT, cluster-internal): every route, the operator token and tenant keys;
// - `combined` (embedded default, one port): every route, every credential.
// Every admin-scope action and key change is written to the audit log.
import type { FastifyInstance } from 'fastify';
import type { AuditLog } from '../../libs/audit/audit-log.js';
import { describeIssues } from '../../libs/events/segment-message.js';
import { adminFlagsPatchSchema, KEY_FIELDS } from '../../libs/tenants/flags.js';
import type { TenantStore } from '../../libs/tenants/tenant-store.js';
import { authenticateHook, createAuthenticator, createFailureLimiter, requireAccess, type FailureLimiter } from './admin-auth.js';
import { registerExportRoutes } from './export-routes.js';
import { registerHistoryTranslationRoutes, type HistoryTranslationDeps } from './history-translation-routes.js';
import { registerKeyRoutes } from './key-routes.js';
import { registerOverwriteRoutes, type OverwriteDeps } from './overwrite-routes.js';
import { registerPreferenceRoutes, type PreferenceDeps } from './preference-routes.js';
import { registerPseudonymKeyRoutes, type PseudonymKeyDeps } from './pseudonym-key-routes.js';
import { registerQueryRoutes, type AnalystQueries } from './query-routes.js';
import { registerTrackingPlanRoutes, type TrackingPlanDeps } from './tracking-plan-routes.js';
import { notFound, tenantIdParam } from './route-params.js';

export type AdminListener = 'combined' | 'public' | 'admin';

export interface AdminDeps {
  adminToken: string;
  tenants: TenantStore;
  /** false when no master key is configured: anonymization cannot be switched on */
  canAnonymize: boolean;
  /** analyst SQL: tenant-isolated for tenant keys, bounded for everyone */
  analyst: AnalystQueries;
  /** concurrent analyst queries per credential (a tenant key, or the operator) */
  maxConcurrentQueriesPerKey?: number;
  /** retroactive overwrites and erasures; the routes exist only where a compactor runs */
  overwrites?: Omit<OverwriteDeps, 'tenants'>;
  /** opt-in translation of a tenant's history to pseudonyms (issue 15 item 2); the route exists only where a compactor runs */
  historyTranslation?: Omit<HistoryTranslationDeps, 'tenants'>;
  /** pseudonym key versions: rotation and shredding (the routes exist everywhere) */
  pseudonymKeys?: Omit<PseudonymKeyDeps, 'tenants'>;
  /** per-user tracking preferences (trackUsage); the routes exist where the collector holds them */
  preferences?: Omit<PreferenceDeps, 'tenants'>;
  /** tenants' tracking plans (issue 16 item 6); the routes exist where a plan store is given */
  trackingPlans?: Omit<TrackingPlanDeps, 'tenants'>;
  /** where admin actions are recorded; absent: nowhere (a fleet collector without ClickHouse) */
  audit?: AuditLog;
  /** shared by every listener of one process, so the brake counts all of an address's failures */
  failures?: FailureLimiter;
  now?: () => number;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** the audit log's action name of a route; unset: not audited */
    audit?: string;
  }
  interface FastifyRequest {
    /** what a handler adds to its audit row: counts, ids, keyed hashes — never values */
    auditDetails: Record<string, string> | null;
  }
}

export function registerAdminRoutes(app: FastifyInstance, deps: AdminDeps, listener: AdminListener = 'combined'): void {
  const now = deps.now ?? Date.now;
  const failures = deps.failures ?? createFailureLimiter();
  const authenticate = createAuthenticator({ operatorToken: listener === 'public' ? null : deps.adminToken, tenants: deps.tenants });
  const operatorRoutes = listener !== 'public';

  app.register(async (admin) => {
    admin.decorateRequest('principal', null);
    admin.decorateRequest('auditDetails', null);
    admin.addHook('onRequest', authenticateHook(authenticate, failures));
    admin.addHook('onResponse', async (req, reply) => {
      const action = req.routeOptions.config.audit;
      const principal = req.principal;
      if (action === undefined || principal === null || deps.audit === undefined) return;
      const { requestId, ...details } = req.auditDetails ?? {};
      await deps.audit.record({
        at: now(),
        tenantId: (req.params as { tenantId?: string }).tenantId ?? details['tenantId'] ?? '',
        credentialKind: principal.kind,
        keyId: principal.keyId,
        action,
        requestId: requestId ?? req.id,
        status: reply.statusCode,
        source: req.ip,
        details,
      });
    });

    if (operatorRoutes) {
      admin.put('/v1/admin/tenants/:tenantId', { preHandler: requireAccess({ operator: true }), config: { audit: 'tenant.create' } }, async (req, reply) => {
        const tenantId = tenantIdParam(req, reply);
        if (!tenantId) return reply;
        const { tenant, created, writeKey } = await deps.tenants.createTenant(tenantId);
        // NOTE: a key's secret exists only in the answer that creates it: an existing tenant comes back without one.
        const first = tenant.keys.writeKeys[0];
        if (created && writeKey !== undefined && first !== undefined) {
          req.auditDetails = { keyId: first.keyId };
          return reply.code(201).send({ tenantId, created, writeKey, keyId: first.keyId });
        }
        return reply.code(200).send({ tenantId, created });
      });
    }

    admin.get('/v1/admin/tenants/:tenantId/flags', { preHandler: requireAccess({ scope: 'admin' }) }, async (req, reply) => {
      const tenantId = tenantIdParam(req, reply);
      if (!tenantId) return reply;
      const tenant = deps.tenants.getTenant(tenantId);
      if (!tenant) return notFound(reply, tenantId);
      return reply.send({ tenantId, ...tenant.flags });
    });

    admin.patch('/v1/admin/tenants/:tenantId/flags', { preHandler: requireAccess({ scope: 'admin' }), config: { audit: 'flags.update' } }, async (req, reply) => {
      const tenantId = tenantIdParam(req, reply);
      if (!tenantId) return reply;
      const keyField = KEY_FIELDS.find((f) => typeof req.body === 'object' && req.body !== null && Object.hasOwn(req.body, f));
      if (keyField !== undefined) {
        return reply.code(400).send({ error: 'bad_request', message: `${keyField} is not a flag to set: rotate with POST /v1/admin/tenants/${tenantId}/pseudonym-keys, shred with DELETE …/pseudonym-keys/{version}` });
      }
      const parsed = adminFlagsPatchSchema.safeParse(req.body ?? {});
      if (!parsed.success) {
        return reply.code(400).send({ error: 'bad_request', message: describeIssues(parsed.error) });
      }
      // NOTE: flag names only; values such as piiTraits could name what a tenant deems sensitive.
      req.auditDetails = { fields: Object.keys(parsed.data).sort().join(',') };
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

    registerKeyRoutes(admin, { tenants: deps.tenants });
    registerQueryRoutes(admin, { analyst: deps.analyst, operatorRoutes, maxConcurrentPerKey: deps.maxConcurrentQueriesPerKey ?? 2 });
    if (deps.overwrites) registerOverwriteRoutes(admin, { ...deps.overwrites, tenants: deps.tenants });
    if (deps.historyTranslation) registerHistoryTranslationRoutes(admin, { now, ...deps.historyTranslation, tenants: deps.tenants });
    registerPseudonymKeyRoutes(admin, { ...deps.pseudonymKeys, tenants: deps.tenants, now });
    if (deps.preferences) registerPreferenceRoutes(admin, { now, ...deps.preferences, tenants: deps.tenants });
    registerExportRoutes(admin, deps);
    if (deps.trackingPlans) registerTrackingPlanRoutes(admin, { now, ...deps.trackingPlans, tenants: deps.tenants });
  });
}
