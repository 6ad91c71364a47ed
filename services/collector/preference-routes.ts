// Per-user tracking preferences over the admin API (issue 16 item 4, PX's `trackUsage`):
// PUT …/users/{userId}/preferences `{ "trackUsage": false }` stops storing that user's later
// events (dropped at the collector and counted as `tracking_off`), `true` resumes; GET reads it
// back. The audit row names the user by its keyed hash only.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { TrackingPreferences } from '../../libs/collection/tracking-preferences.js';
import { describeIssues } from '../../libs/events/segment-message.js';
import { checkSubjectId, SubjectIdError } from '../../libs/privacy/subject-export.js';
import type { SubjectHash } from '../../libs/privacy/subject-hash.js';
import type { TenantStore } from '../../libs/tenants/tenant-store.js';
import { requireAccess } from './admin-auth.js';
import { notFound, tenantIdParam } from './route-params.js';

export interface PreferenceDeps {
  tenants: TenantStore;
  preferences: TrackingPreferences;
  subjectHash: SubjectHash;
  now?: () => number;
}

export const PREFERENCES_ROUTE = '/v1/admin/tenants/:tenantId/users/:userId/preferences';

const bodySchema = z.object({ trackUsage: z.boolean() }).strict();

export function registerPreferenceRoutes(admin: FastifyInstance, deps: PreferenceDeps): void {
  const now = deps.now ?? Date.now;
  /** the tenant and the user id (trimmed, as events' ids are), or undefined once answered */
  const subjectOf = (req: FastifyRequest, reply: FastifyReply): { tenantId: string; userId: string } | undefined => {
    const tenantId = tenantIdParam(req, reply);
    if (!tenantId) return undefined;
    if (!deps.tenants.getTenant(tenantId)) return void notFound(reply, tenantId);
    try {
      const userId = checkSubjectId((req.params as { userId: string }).userId.trim());
      req.auditDetails = { subjectIdHash: deps.subjectHash(tenantId, userId) };
      return { tenantId, userId };
    } catch (err) {
      if (err instanceof SubjectIdError) return void reply.code(400).send({ error: 'bad_request', message: err.message });
      throw err;
    }
  };

  admin.get(PREFERENCES_ROUTE, { preHandler: requireAccess({ scope: 'admin' }) }, async (req, reply) => {
    const subject = subjectOf(req, reply);
    if (!subject) return reply;
    return reply.send({ tenantId: subject.tenantId, ...(await deps.preferences.get(subject.tenantId, subject.userId)) });
  });

  admin.put(PREFERENCES_ROUTE, { preHandler: requireAccess({ scope: 'admin' }), config: { audit: 'preferences.update' } }, async (req, reply) => {
    const body = bodySchema.safeParse(req.body ?? {});
    if (!body.success) return reply.code(400).send({ error: 'bad_request', message: describeIssues(body.error) });
    const subject = subjectOf(req, reply);
    if (!subject) return reply;
    if (req.auditDetails) req.auditDetails['trackUsage'] = String(body.data.trackUsage);
    return reply.send({ tenantId: subject.tenantId, ...(await deps.preferences.set(subject.tenantId, subject.userId, body.data.trackUsage, now())) });
  });
}
