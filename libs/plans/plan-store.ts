// Where tenants' tracking plans live: read synchronously on the collector's hot path from a
// process-local copy; written by the admin routes. A plan's version grows with every change of
// its tenant's plan, removals included, so a compilation cached by version is never stale.
import type { StoredPlan, TrackingPlan } from './plan-schema.js';

export interface PlanStore {
  /**
   * The tenant's plan; null when it has none; undefined when that is not known (the fleet's
   * store before its first load from Redis): the control then asks for a retry.
   */
  get(tenantId: string): StoredPlan | null | undefined;
  /** Replaces the tenant's plan (version + 1) and returns it as stored. */
  put(tenantId: string, plan: TrackingPlan, now: number): Promise<StoredPlan>;
  /** Removes the tenant's plan; false when it had none. */
  remove(tenantId: string): Promise<boolean>;
  close(): Promise<void>;
}

/** A store in memory, starting from `initial`; `persist` (if any) is given every change before it is answered. */
export function createMemoryPlanStore(initial: PlanSnapshot = { plans: {}, versions: {} }, persist?: (snapshot: PlanSnapshot) => Promise<void>): PlanStore {
  const plans = new Map(Object.entries(initial.plans));
  const versions = new Map<string, number>(Object.entries(initial.versions));
  for (const [t, p] of plans) versions.set(t, Math.max(versions.get(t) ?? 0, p.version));
  const snapshot = (): PlanSnapshot => ({ plans: Object.fromEntries(plans), versions: Object.fromEntries(versions) });
  // NOTE: writes one at a time, so the file always holds the last of them
  let queue: Promise<unknown> = Promise.resolve();
  const serially = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = queue.then(fn, fn);
    queue = run.catch(() => undefined);
    return run;
  };
  return {
    get: (tenantId) => plans.get(tenantId) ?? null,
    put: (tenantId, plan, now) =>
      serially(async () => {
        const stored: StoredPlan = { version: (versions.get(tenantId) ?? 0) + 1, updatedAt: now, plan };
        const before = { plan: plans.get(tenantId), version: versions.get(tenantId) };
        plans.set(tenantId, stored);
        versions.set(tenantId, stored.version);
        try {
          await persist?.(snapshot());
        } catch (err) {
          restore(tenantId, before);
          throw err;
        }
        return stored;
      }),
    remove: (tenantId) =>
      serially(async () => {
        const before = { plan: plans.get(tenantId), version: versions.get(tenantId) };
        if (before.plan === undefined) return false;
        plans.delete(tenantId);
        // NOTE: the version counter stays: a plan PUT again later gets a version never seen before
        versions.set(tenantId, (before.version ?? 0) + 1);
        try {
          await persist?.(snapshot());
        } catch (err) {
          restore(tenantId, before);
          throw err;
        }
        return true;
      }),
    close: async () => {
      await queue;
    },
  };

  function restore(tenantId: string, before: { plan: StoredPlan | undefined; version: number | undefined }): void {
    if (before.plan === undefined) plans.delete(tenantId);
    else plans.set(tenantId, before.plan);
    if (before.version === undefined) versions.delete(tenantId);
    else versions.set(tenantId, before.version);
  }
}

/** What a persisted store holds: the plans, and every tenant's last version (removed plans' too). */
export interface PlanSnapshot {
  plans: Record<string, StoredPlan>;
  versions: Record<string, number>;
}
