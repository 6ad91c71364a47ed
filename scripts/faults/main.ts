// `npm run faults -- <scenario…|ci|all> [--cycles N] [--rate N] [--fraction F] [--minutes M] [--short]`
// runs the fault harness: the fleet as separate processes on the real Kafka, registry and ClickHouse gateway,
// a load generator keeping a ledger of every acknowledged event, scheduled faults, and the
// checks of ClickHouse and the clean topic against the ledger. Each scenario prints its schedule,
// a line per fault and its figures; the run ends with "faults: N passed, N failed" and a JSON
// report in .faults/ (or --report). Exit 1 when a scenario failed.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { repoRoot } from '../services/paths.js';
import { stopServices, type ServiceName } from '../services/services.js';
import { openFaultRun, type FaultRun } from './harness.js';
import type { Scenario, ScenarioOptions, ScenarioResult } from './scenario.js';
import { brokerHang, brokerRestart } from './scenarios/broker.js';
import { clickhouseOutage } from './scenarios/clickhouse.js';
import { compactorCrash } from './scenarios/compactor-crash.js';
import { embeddedCrash } from './scenarios/embedded-crash.js';
import type { FleetScenario } from './scenarios/fleet-scenario.js';
import { killLoop } from './scenarios/kill-loop.js';
import { rebalanceStorm } from './scenarios/rebalance.js';
import { redisOutage } from './scenarios/redis.js';
import { soak } from './scenarios/soak.js';

const out = (s: string): void => void process.stdout.write(`${s}\n`);

type AnyScenario = { kind: 'fleet'; scenario: FleetScenario } | { kind: 'standalone'; scenario: Scenario };
const scenarios: AnyScenario[] = [
  { kind: 'fleet', scenario: brokerRestart },
  { kind: 'fleet', scenario: brokerHang },
  { kind: 'fleet', scenario: clickhouseOutage },
  { kind: 'fleet', scenario: redisOutage },
  { kind: 'fleet', scenario: rebalanceStorm },
  { kind: 'fleet', scenario: killLoop },
  { kind: 'fleet', scenario: compactorCrash },
  { kind: 'standalone', scenario: embeddedCrash },
  { kind: 'fleet', scenario: soak },
];
/** the CI profile: scenarios 1, 3, 4, 6 and 8, short */
const CI = ['broker-restart', 'clickhouse-outage', 'redis-outage', 'kill-loop', 'embedded-crash'];
/** every scenario but the soak (run it on its own: 30 minutes) */
const ALL = scenarios.map((s) => s.scenario.name).filter((n) => n !== 'soak');

function usage(): string {
  return [
    'usage: npm run faults -- <scenario…|ci|all> [--cycles N] [--rate N] [--fraction F] [--minutes M] [--short] [--report FILE]',
    ...scenarios.map((s) => `  ${s.scenario.name.padEnd(18)} ${s.scenario.summary}`),
    `  ${'ci'.padEnd(18)} the short profile CI runs: ${CI.join(', ')}`,
    `  ${'all'.padEnd(18)} ${ALL.join(', ')} (full length; the soak runs alone)`,
  ].join('\n');
}

async function main(): Promise<number> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      cycles: { type: 'string' },
      rate: { type: 'string' },
      fraction: { type: 'string' },
      minutes: { type: 'string' },
      short: { type: 'boolean', default: false },
      report: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help || positionals.length === 0) {
    out(usage());
    return values.help ? 0 : 2;
  }
  const names = positionals.flatMap((p) => (p === 'ci' ? CI : p === 'all' ? ALL : [p]));
  const unknown = names.filter((n) => !scenarios.some((s) => s.scenario.name === n));
  if (unknown.length) {
    process.stderr.write(`faults: unknown scenario ${unknown.join(', ')}\n${usage()}\n`);
    return 2;
  }
  const num = (v: string | undefined, what: string): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${what} must be a positive number (got ${v})`);
    return n;
  };
  const opts: ScenarioOptions = {
    short: values.short || positionals.includes('ci'),
    ...(values.cycles ? { cycles: num(values.cycles, 'cycles') } : {}),
    ...(values.rate ? { rate: num(values.rate, 'rate') } : {}),
    ...(values.fraction ? { loadFraction: num(values.fraction, 'fraction') } : {}),
    ...(values.minutes ? { minutes: num(values.minutes, 'minutes') } : {}),
  };
  const startedAt = Date.now();
  const results: ScenarioResult[] = [];
  let run: FaultRun | undefined;
  let setupError: string | undefined;
  try {
    for (const name of names) {
      const entry = scenarios.find((s) => s.scenario.name === name) as AnyScenario;
      out(`\n── ${name}${opts.short ? ' (short)' : ''}`);
      try {
        if (entry.kind === 'fleet') {
          run ??= await openFaultRun({ short: opts.short, log: out });
          await restoreFleet(run);
          results.push(await entry.scenario.run(run, opts, out));
        } else {
          results.push(await entry.scenario.run(opts, out));
        }
      } catch (err) {
        // NOTE: a scenario that could not run is a failed one; the next ones still run, without its load
        await run?.abandonScenarios();
        results.push({ scenario: name, passed: false, schedule: '', durationMs: 0, figures: {}, failures: [`could not run: ${(err as Error).stack ?? String(err)}`], ...(run ? { diagnostics: await run.fleet.diagnostics() } : {}) });
      }
      const r = results.at(-1) as ScenarioResult;
      out(`${name}: ${r.passed ? 'PASSED' : 'FAILED'} in ${(r.durationMs / 1000).toFixed(0)} s\n${JSON.stringify(r.figures, null, 2)}`);
      if (!r.passed) out(`failures:\n- ${r.failures.join('\n- ')}\n${r.diagnostics ?? ''}`);
    }
  } catch (err) {
    setupError = (err as Error).stack ?? String(err);
    out(`faults: could not set up the run: ${setupError}`);
  } finally {
    await run?.close().catch((err: unknown) => out(`faults: closing the run: ${String(err)}`));
    // NOTE: leave nothing running that this run started or restarted (the broker and gateway it
    // faulted included): a later test run would reuse them, and a clean-clone CI then found no
    // SASL credentials of its own
    const started: ServiceName[] = [...(run?.services.started ?? []), 'kafka', 'clickhouse'];
    await stopServices({ only: started }).catch(() => undefined);
  }
  const passed = results.filter((r) => r.passed).length;
  const failed = results.length - passed + (setupError ? 1 : 0);
  const report = { startedAt: new Date(startedAt).toISOString(), durationS: Math.round((Date.now() - startedAt) / 1000), options: opts, calibration: run?.calibration, passed, failed, setupError, results };
  const file = values.report ?? join(repoRoot, '.faults', `${new Date(startedAt).toISOString().replace(/[:.]/g, '-')}-${positionals.join('+')}.json`);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  out(`\nreport: ${file}`);
  out(`faults: ${passed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}

/** Between scenarios: every base service running again (a scenario's findings stay its own). */
async function restoreFleet(run: FaultRun): Promise<void> {
  for (const name of ['collector', 'enricher', 'anonymizer', 'sink'] as const) {
    const p = run.fleet.processes.get(name);
    if (p && p.exitStatus() === null) continue;
    if (p) run.expectedExits.add(p.pid);
    out(`  (${name} was not running after the last scenario: started again)`);
    await run.fleet.start(name);
  }
}

const code = await main();
// NOTE: exit explicitly: a KafkaJS client or a socket of a faulted service can keep the loop
// alive after everything was closed, and CI must not wait on it
process.exit(code);
