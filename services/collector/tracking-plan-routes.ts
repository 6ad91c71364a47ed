// A tenant's tracking plan over the admin API (issue 16 item 6): PUT replaces it (validated,
// bounded and compiled before it is stored: a problem is a 400 naming its JSON pointer in the
// body), GET reads it with its version, DELETE removes it. Admin scope; PUT and DELETE audited
// with counts only (event names and schemas may say what a tenant tracks).
import type { FastifyInstance } from 'fastify';
import { planProblem } from '../../libs/plans/plan-compiler.js';
import { planBoundsProblem, pointerSegment, trackingPlanSchema, type PlanProblem, type StoredPlan } from '../../libs/plans/plan-schema.js';
import type { PlanStore } from '../../libs/plans/plan-store.js';
import type { TenantStore } from '../../libs/tenants/tenant-store.js';
import { requireAccess } from './admin-auth.js';
import { notFound, tenantIdParam } from './route-params.js';

export interface TrackingPlanDeps {
  tenants: TenantStore;
  plans: PlanStore;
  now?: () => number;
}

const ROUTE = '/v1/admin/tenants/:tenantId/tracking-plan';

export function registerTrackingPlanRoutes(admin: FastifyInstance, deps: TrackingPlanDeps): void {
  const now = deps.now ?? Date.now;

  admin.put(ROUTE, { preHandler: requireAccess({ scope: 'admin' }), config: { audit: 'tracking_plan.update' } }, async (req, reply) => {
    const tenantId = tenantIdParam(req, reply);
    if (tenantId === undefined) return reply;
    const bounds = planBoundsProblem(req.body);
    if (bounds) return badPlan(bounds);
    const parsed = trackingPlanSchema.safeParse(req.body ?? {});
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return badPlan({ path: (issue?.path ?? []).map((p) => `/${pointerSegment(String(p))}`).join(''), message: issue?.message ?? 'invalid plan' });
    }
    if (deps.tenants.getTenant(tenantId) === undefined) return notFound(reply, tenantId);
    const problem = await planProblem(parsed.data);
    if (problem) return badPlan(problem);
    const stored = await deps.plans.put(tenantId, parsed.data, now());
    req.auditDetails = auditOf(stored);
    return reply.send(answer(tenantId, stored));

    function badPlan(p: PlanProblem) {
      return reply.code(400).send({ error: 'invalid_plan', path: p.path, message: p.path === '' ? p.message : `${p.path}: ${p.message}` });
    }
  });

  admin.get(ROUTE, { preHandler: requireAccess({ scope: 'admin' }) }, async (req, reply) => {
    const tenantId = tenantIdParam(req, reply);
    if (tenantId === undefined) return reply;
    if (deps.tenants.getTenant(tenantId) === undefined) return notFound(reply, tenantId);
    const stored = deps.plans.get(tenantId);
    if (stored === undefined) return reply.code(503).header('retry-after', '1').send({ error: 'unavailable', message: 'tracking plans are not loaded yet; retry shortly' });
    if (stored === null) return reply.code(404).send({ error: 'no_plan', message: `tenant "${tenantId}" has no tracking plan` });
    return reply.send(answer(tenantId, stored));
  });

  admin.delete(ROUTE, { preHandler: requireAccess({ scope: 'admin' }), config: { audit: 'tracking_plan.delete' } }, async (req, reply) => {
    const tenantId = tenantIdParam(req, reply);
    if (tenantId === undefined) return reply;
    if (deps.tenants.getTenant(tenantId) === undefined) return notFound(reply, tenantId);
    if (!(await deps.plans.remove(tenantId))) return reply.code(404).send({ error: 'no_plan', message: `tenant "${tenantId}" has no tracking plan` });
    return reply.code(204).send();
  });
}

function answer(tenantId: string, s: StoredPlan) {
  return { tenantId, version: s.version, updatedAt: s.updatedAt, ...s.plan };
}

/** counts and modes only */
function auditOf(s: StoredPlan): Record<string, string> {
  return { version: String(s.version), mode: s.plan.mode, unplanned: s.plan.unplanned, events: String(Object.keys(s.plan.events).length), traits: s.plan.traits === undefined ? 'no' : 'yes' };
}
