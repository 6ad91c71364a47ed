// What the fleet scenarios share: they run on one fault run (scripts/faults/harness.ts), and end
// the same way — the scenario's checks, its own figures beside them, the diagnostics on failure.
import type { FaultRun, ScenarioRun } from '../harness.js';
import type { ScenarioOptions, ScenarioResult } from '../scenario.js';

export interface FleetScenario {
  name: string;
  summary: string;
  /** the load as a fraction of the measured maximum unless --rate says otherwise */
  loadFraction: number;
  run(run: FaultRun, opts: ScenarioOptions, log: (line: string) => void): Promise<ScenarioResult>;
}

export async function endScenario(
  run: FaultRun,
  s: ScenarioRun,
  head: { name: string; schedule: string; startedAt: number },
  extra: { figures?: Record<string, unknown>; failures?: string[] } = {},
): Promise<ScenarioResult> {
  const { figures, failures } = await s.finish();
  const all = [...failures, ...(extra.failures ?? [])];
  return {
    scenario: head.name,
    passed: all.length === 0,
    schedule: head.schedule,
    durationMs: Date.now() - head.startedAt,
    figures: { ...figures, ...extra.figures },
    failures: all,
    detail: { windows: s.windows, latency: s.latency.map((l) => [l.at, l.ms]) },
    ...(all.length ? { diagnostics: await run.fleet.diagnostics() } : {}),
  };
}
