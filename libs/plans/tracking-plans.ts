// What a runner needs for tracking plans, built in one place so each runner adds two lines: the
// collection control, the violation writer behind it (ClickHouse when the runner has one), the
// counters on the runner's registry, and the plan store the admin routes write.
import type { ClickHouseClient } from '@clickhouse/client';
import type { Registry } from 'prom-client';
import type { CollectionControl } from '../collection/controls.js';
import type { Logger } from '../core/logger.js';
import { createPlanControl } from './plan-control.js';
import { createPlanMetrics } from './plan-metrics.js';
import type { PlanStore } from './plan-store.js';
import { clickhouseViolationInsert, createViolationWriter } from './violation-writer.js';

export interface TrackingPlans {
  control: CollectionControl;
  plans: PlanStore;
  /** flushes the violation rows still buffered, then closes the store; idempotent */
  stop(): Promise<void>;
}

export function startTrackingPlans(opts: { plans: PlanStore; clickhouse: ClickHouseClient | null; registry: Registry; logger: Logger }): TrackingPlans {
  const metrics = createPlanMetrics(opts.registry);
  const log = opts.logger.child({ component: 'tracking-plans' });
  // NOTE: without ClickHouse (a fleet collector without CLICKHOUSE_URL) violations are counted only
  if (opts.clickhouse === null) log.warn('no ClickHouse: tracking plan violations are counted in /metrics but not written to the violations table');
  const writer = opts.clickhouse === null ? null : createViolationWriter({ insert: clickhouseViolationInsert(opts.clickhouse), logger: log, metrics });
  const control = createPlanControl({ plans: opts.plans, violations: writer ?? { record: () => undefined }, logger: log, metrics });
  let stopping: Promise<void> | null = null;
  return {
    control,
    plans: opts.plans,
    stop() {
      stopping ??= (async () => {
        await writer?.stop();
        await opts.plans.close();
      })();
      return stopping;
    },
  };
}
