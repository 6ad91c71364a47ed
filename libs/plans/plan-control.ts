// The tracking plan as a collection control (libs/collection/controls.ts): each event of a
// tenant with a plan is judged (plan-judge.ts), kept, kept without its offending properties, or
// dropped (`plan_blocked`); its violations go to the violation writer and to /metrics.
// Compiled plans are cached per (tenant, version); a tenant whose plan is not known yet (the
// fleet before its first load) or cannot be compiled gets a retry, never an unjudged pass: an
// `omit` plan may be what keeps unplanned (e.g. personal) properties out of storage.
import { LRUCache } from 'lru-cache';
import type { CollectedEvent, CollectionControl, ControlVerdicts } from '../collection/controls.js';
import type { ViolationRow } from '../clickhouse/tables/violations.js';
import type { Logger } from '../core/logger.js';
import type { Tenant } from '../tenants/tenant-store.js';
import { compilePlan, PlanCompileError, type CompiledPlan } from './plan-compiler.js';
import { judgeEvent } from './plan-judge.js';
import type { PlanMetrics } from './plan-metrics.js';
import type { PlanStore } from './plan-store.js';
import type { ViolationSink } from './violation-writer.js';

export const PLAN_BLOCKED = 'plan_blocked';

export interface PlanControlOptions {
  plans: Pick<PlanStore, 'get'>;
  violations: ViolationSink;
  logger: Logger;
  metrics?: PlanMetrics;
  /** compiled plans held at once (least recently used dropped first); default 1,000 */
  maxCompiled?: number;
}

type Compiled = { version: number; plan: CompiledPlan | null };

export function createPlanControl(opts: PlanControlOptions): CollectionControl {
  const cache = new LRUCache<string, Compiled>({ max: opts.maxCompiled ?? 1_000 });

  function compiledFor(tenantId: string, version: number, plan: Parameters<typeof compilePlan>[0]): CompiledPlan | null {
    const hit = cache.get(tenantId);
    if (hit?.version === version) return hit.plan;
    const r = compilePlan(plan, version, { lazy: true });
    if (!r.ok) {
      // NOTE: only when a stored plan no longer compiles (e.g. a newer store record): told once per version
      opts.logger.error({ tenantId, planVersion: version, path: r.problem.path }, 'stored tracking plan does not compile: its events are answered retry');
    }
    const entry = { version, plan: r.ok ? r.plan : null };
    cache.set(tenantId, entry);
    return entry.plan;
  }

  // NOTE: an event schema of a stored plan that no longer compiles: told once per (tenant, version)
  const told = new LRUCache<string, true>({ max: 1_000 });
  function noteUncompilable(tenantId: string, version: number, err: PlanCompileError): void {
    const key = `${tenantId}\u0000${version}`;
    if (told.has(key)) return;
    told.set(key, true);
    opts.logger.error({ tenantId, planVersion: version, path: err.problem.path }, 'stored tracking plan does not compile: those events are answered retry');
  }

  return {
    name: 'tracking-plan',
    apply(tenant: Tenant, events: readonly CollectedEvent[]): ControlVerdicts {
      const stored = opts.plans.get(tenant.tenantId);
      if (stored === null) return { kept: [...events], dropped: [], retry: [] };
      const plan = stored === undefined ? null : compiledFor(tenant.tenantId, stored.version, stored.plan);
      if (plan === null) {
        const reason = stored === undefined ? 'tracking plan not loaded' : 'tracking plan does not compile';
        opts.metrics?.retries.inc({ reason: stored === undefined ? 'not_loaded' : 'not_compiled' }, events.length);
        return { kept: [], dropped: [], retry: events.map((e) => ({ eventId: e.event.event_id, reason })) };
      }
      const out: ControlVerdicts = { kept: [], dropped: [], retry: [] };
      const rows: ViolationRow[] = [];
      for (const c of events) {
        let j: ReturnType<typeof judgeEvent>;
        try {
          j = judgeEvent(plan, c.event);
        } catch (err) {
          if (!(err instanceof PlanCompileError)) throw err;
          noteUncompilable(tenant.tenantId, plan.version, err);
          opts.metrics?.retries.inc({ reason: 'not_compiled' });
          out.retry.push({ eventId: c.event.event_id, reason: 'tracking plan does not compile' });
          continue;
        }
        for (const v of j.violations) {
          rows.push({
            tenant_id: tenant.tenantId,
            received_at: c.event.received_at,
            event_id: c.event.event_id,
            event_type: c.event.type,
            event_name: c.event.type === 'track' ? (c.event.name ?? '').slice(0, 200) : '',
            plan_version: plan.version,
            action: v.action,
            rule: v.rule,
            keyword: v.keyword,
            property: v.property,
            reason: v.reason,
          });
          opts.metrics?.violations.inc({ action: v.action });
        }
        if (j.verdict === 'drop') out.dropped.push({ eventId: c.event.event_id, reason: PLAN_BLOCKED });
        else out.kept.push(j.event === c.event ? c : { ...c, event: j.event });
      }
      opts.violations.record(rows);
      return out;
    },
  };
}
