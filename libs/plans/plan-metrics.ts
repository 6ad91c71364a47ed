// The tracking plans' counters on a process's registry (served on /metrics): violations by what
// was done about them, and the violation rows the writer could not store.
import { Counter, type Registry } from 'prom-client';

export interface PlanMetrics {
  violations: Counter<'action'>;
  /** violation rows not stored: `write_failed` (ClickHouse refused), `buffer_full` (backlog bound) */
  rowsLost: Counter<'reason'>;
  /** events answered retry because their tenant's plan was not known or could not be compiled */
  retries: Counter<'reason'>;
}

export function createPlanMetrics(registry: Registry): PlanMetrics {
  const registers = [registry];
  return {
    violations: new Counter({ name: 'tracklane_plan_violations_total', help: 'tracking plan violations, by what was done (flagged, omitted, blocked)', labelNames: ['action'], registers }),
    rowsLost: new Counter({ name: 'tracklane_plan_violation_rows_lost_total', help: 'violation rows not written to the violations table', labelNames: ['reason'], registers }),
    retries: new Counter({ name: 'tracklane_plan_retries_total', help: 'events answered retry: their tenant\'s tracking plan is not loaded yet or cannot be compiled', labelNames: ['reason'], registers }),
  };
}
