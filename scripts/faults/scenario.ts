// What every fault scenario of `npm run faults` is and reports. A scenario prints its
// schedule first, runs its faults, and ends with figures and, when it failed, the reasons —
// each naming the ids involved — plus every process's last log lines.

export interface ScenarioResult {
  scenario: string;
  passed: boolean;
  /** what was done when, as printed before the run */
  schedule: string;
  /** wall time of the scenario */
  durationMs: number;
  /**
   * the figures: acknowledged, lost, duplicatedThroughFinal, physicalCopies, clearIds,
   * offsetsAhead, recoveryMs, workerExits … (whatever applies to the scenario)
   */
  figures: Record<string, unknown>;
  /** why it failed, one line each, naming ids (empty when passed) */
  failures: string[];
  /** every process's last log lines, when it failed */
  diagnostics?: string;
  /** series kept in the JSON report only (per-batch latency, fault windows) */
  detail?: Record<string, unknown>;
}

export interface ScenarioOptions {
  /** a short profile (the CI one): fewer cycles, shorter windows */
  short: boolean;
  /** load as a fraction of the maximum measured at the start of the run (default per scenario) */
  loadFraction?: number;
  /** overrides: number of fault cycles */
  cycles?: number;
  /** overrides: events/s instead of a fraction of the measured maximum */
  rate?: number;
  /** soak length in minutes */
  minutes?: number;
}

export interface Scenario {
  name: string;
  /** one line for `npm run faults -- --help` */
  summary: string;
  run(opts: ScenarioOptions, log: (line: string) => void): Promise<ScenarioResult>;
}
