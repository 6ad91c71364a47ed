// Shared shape of one benchmark's report, printed by bench/main.ts.
export interface BenchReport {
  name: string;
  /** how it was measured, printed verbatim */
  method: string;
  /** headline numbers, e.g. { eventsPerSec: 251000 } */
  metrics: Record<string, number>;
  /** the target as text and whether it was met */
  target: string;
  passed: boolean;
}
