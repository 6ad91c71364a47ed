// Test-only fault points: named places in a process where the fault
// harness and the crash tests can have it killed at once (SIGKILL: a crash, no clean exit), to
// prove what the next start does with the state left behind.
//
// Armed by TRACKLANE_FAULT_POINT=<name> (the 1st time <name> is reached) or <name>:<N> (the N-th
// time), and ONLY when this module runs from its TypeScript source (tsx, vitest) and NODE_ENV is
// not `production`. A production build is `tsc -p tsconfig.build.json` → dist/**/*.js, which the
// image runs (`node dist/services/cli/main.js`, NODE_ENV=production), so there this module is
// fault-points.js and every point is a no-op whatever the environment says (fault-points.test.ts
// compiles the module and proves it).
// NOTE: the one library that reads process.env (STYLE.md 7): a fault point must be reachable
// from deep inside a library without threading test plumbing through every factory.
import { writeSync } from 'node:fs';

/** Every fault point, by the stable name TRACKLANE_FAULT_POINT takes (the harness iterates them). */
export const FAULT_POINTS = [
  /** a round's overwrites registered (overwrite_values, suppressions), history not yet touched */
  'compactor.registry',
  /** the round's history mutations of events ran, its new users/accounts versions not yet merged */
  'compactor.mutation',
  /** the superseded users/accounts versions merged away, erasures not yet done, no `applied` receipt yet */
  'compactor.merge',
  /** the receipts say `applied`, the old parts are gone, the verification has not run */
  'compactor.verify',
] as const;

export type FaultPointName = (typeof FAULT_POINTS)[number];

export const FAULT_POINT_ENV = 'TRACKLANE_FAULT_POINT';

export interface FaultSpec {
  name: string;
  /** fires the nth time the point is reached (1-based) */
  nth: number;
}

/** `name` or `name:N` (N ≥ 1); anything else (empty, N not a positive integer) arms nothing. */
export function parseFaultSpec(spec: string | undefined): FaultSpec | null {
  const text = spec?.trim() ?? '';
  if (text === '') return null;
  const m = /^([A-Za-z0-9_.-]+)(?::(\d+))?$/.exec(text);
  if (!m) return null;
  const nth = m[2] === undefined ? 1 : Number(m[2]);
  if (!Number.isSafeInteger(nth) || nth < 1) return null;
  return { name: m[1] as string, nth };
}

/**
 * Whether point `name`, reached for the `count`-th time (1-based), kills the process under
 * `spec` (the variable's value). Never when the code does not run from its sources.
 */
export function shouldFire(spec: string | undefined, name: string, count: number, fromSources: boolean): boolean {
  if (!fromSources) return false;
  const parsed = parseFaultSpec(spec);
  return parsed !== null && parsed.name === name && parsed.nth === count;
}

/** Whether a module at `moduleUrl` runs from TypeScript sources (not a build), outside production. */
export function runsFromSources(moduleUrl: string, nodeEnv: string | undefined): boolean {
  let path: string;
  try {
    path = new URL(moduleUrl).pathname;
  } catch {
    return false;
  }
  return path.endsWith('.ts') && nodeEnv !== 'production';
}

// NOTE: decided once, at load: a build's points cost one boolean test each.
const FROM_SOURCES = runsFromSources(import.meta.url, process.env.NODE_ENV);
const reached = new Map<string, number>();

/** Kills this process (SIGKILL) when TRACKLANE_FAULT_POINT names this point and this time; else nothing. */
export function faultPoint(name: FaultPointName): void {
  if (!FROM_SOURCES) return;
  const spec = process.env[FAULT_POINT_ENV];
  if (spec === undefined || spec === '') return;
  const count = (reached.get(name) ?? 0) + 1;
  reached.set(name, count);
  if (!shouldFire(spec, name, count, FROM_SOURCES)) return;
  // NOTE: synchronous, so the line is out before the signal; the tests look for it
  try {
    writeSync(2, `tracklane: fault point ${name} reached (${count}): SIGKILL\n`);
  } catch {
    // stderr closed: the kill still happens
  }
  process.kill(process.pid, 'SIGKILL');
}
