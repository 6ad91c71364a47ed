// Scenario 9 (issue 13): steady load at half the measured maximum for 30 minutes with the faults
// of scenarios 1–5 interleaved (not the kill-loop: RSS is judged per process lifetime). Every
// minute: each long-lived process's RSS and the p99 of 2xx → visible of the batches acknowledged
// in that minute outside fault windows. Fails when a service's RSS grew more than 10 % over the
// last 20 minutes, or the p99 outside faults is above 2 s.
import { readFileSync } from 'node:fs';
import type { FleetServiceName } from '../../../test/support/fleet.js';
import { hangBroker, restartBroker, restartClickHouse, scaleOutAndIn, slowClickHouse, stopRedisFor } from '../faults.js';
import { CLICKHOUSE_TIMEOUT_MS, quantiles, sleep, startScenario, type FaultRun } from '../harness.js';
import type { FleetScenario } from './fleet-scenario.js';
import { endScenario } from './fleet-scenario.js';

const LONG_LIVED: FleetServiceName[] = ['collector', 'enricher', 'anonymizer', 'sink'];
const P99_LIMIT_MS = 2_000;
const RSS_GROWTH_LIMIT = 0.1;

function rssMb(pid: number): number | null {
  try {
    const kb = Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
    return Number.isFinite(kb) ? Math.round(kb / 1024) : null;
  } catch {
    return null;
  }
}

/** the interleaved faults, in turn, each as short as its scenario's */
function faultsOf(run: FaultRun): { name: string; act: () => Promise<void> }[] {
  return [
    { name: 'broker restart', act: () => restartBroker(4_000) },
    { name: 'broker hang', act: () => hangBroker(20_000) },
    { name: 'gateway down', act: () => restartClickHouse(30_000) },
    { name: 'redis down', act: () => stopRedisFor(run, 30_000) },
    { name: 'gateway slow', act: () => slowClickHouse(run, CLICKHOUSE_TIMEOUT_MS + 2_000, 30_000) },
    { name: 'scale 1 → 3 → 1', act: () => scaleOutAndIn(run, 15_000) },
  ];
}

export const soak: FleetScenario = {
  name: 'soak',
  summary: '30 minutes at half the measured maximum with faults 1–5 interleaved; RSS and p99 per minute',
  loadFraction: 0.5,
  async run(run, opts, log) {
    const startedAt = Date.now();
    const minutes = opts.minutes ?? (opts.short ? 4 : 30);
    const faultEveryS = opts.short ? 60 : 240;
    const s = await startScenario(run, { name: 'sk', loadFraction: opts.loadFraction ?? this.loadFraction, ...(opts.rate ? { rate: opts.rate } : {}) });
    const faults = faultsOf(run);
    const schedule = `${minutes} min at ${s.rate} events/s; every ${faultEveryS} s the next of: ${faults.map((f) => f.name).join(', ')}; RSS and p99 sampled per minute`;
    log(`soak: ${schedule}`);
    const end = startedAt + minutes * 60_000;
    const perMinute: { minute: number; rssMb: Record<string, number | null>; p99Ms: number | null; batches: number }[] = [];
    let minute = 0;
    let nextFault = startedAt + faultEveryS * 1000;
    let faultIndex = 0;
    const sample = (): void => {
      minute++;
      const from = startedAt + (minute - 1) * 60_000;
      const to = from + 60_000;
      const inMinute = s.latency.filter((l) => l.at >= from && l.at < to && !s.windows.some((w) => l.at >= w.start - 1_000 && l.at <= w.end + (w.recoveryMs ?? 0)));
      const rss = Object.fromEntries(LONG_LIVED.map((k) => [k, rssMb(run.fleet.processes.get(k)?.pid ?? -1)]));
      const p99 = quantiles(inMinute.map((l) => l.ms)).p99;
      perMinute.push({ minute, rssMb: rss, p99Ms: p99, batches: inMinute.length });
      log(`  minute ${minute}: RSS ${LONG_LIVED.map((k) => `${k} ${rss[k]} MB`).join(', ')}; p99 ${p99 ?? '–'} ms (${inMinute.length} batches outside faults)`);
    };
    let nextSample = startedAt + 60_000;
    while (Date.now() < end) {
      if (Date.now() >= nextFault && end - Date.now() > 90_000) {
        const f = faults[faultIndex++ % faults.length];
        if (f) {
          const w = await s.fault(f.name, f.act);
          log(`  fault ${f.name}: ${((w.end - w.start) / 1000).toFixed(0)} s, recovery ${w.recoveryMs === null ? 'NONE' : `${(w.recoveryMs / 1000).toFixed(1)} s`}`);
        }
        nextFault = Date.now() + faultEveryS * 1000;
      }
      // NOTE: a minute's batches are judged a minute late, so slow ones are counted too
      while (Date.now() >= nextSample + 60_000) {
        sample();
        nextSample += 60_000;
      }
      await sleep(1_000);
    }
    await sleep(60_000);
    while (minute < minutes) sample();
    const window = Math.min(20, Math.floor(minutes / 2));
    const growth: Record<string, number | null> = {};
    const failures: string[] = [];
    for (const k of LONG_LIVED) {
      const series = perMinute.map((m) => m.rssMb[k]).filter((v): v is number => v !== null);
      const at = (i: number): number => {
        const slice = series.slice(Math.max(0, i - 1), i + 2);
        return slice.reduce((a, b) => a + b, 0) / slice.length;
      };
      if (series.length < window + 1) {
        growth[k] = null;
        continue;
      }
      const first = at(series.length - 1 - window);
      const last = at(series.length - 2);
      growth[k] = Math.round(((last - first) / first) * 1000) / 1000;
      if ((growth[k] ?? 0) > RSS_GROWTH_LIMIT) failures.push(`${k} RSS grew ${Math.round((growth[k] ?? 0) * 100)} % over the last ${window} minutes (${Math.round(first)} → ${Math.round(last)} MB)`);
    }
    const outside = s.latency.filter((l) => !s.windows.some((w) => l.at >= w.start - 1_000 && l.at <= w.end + (w.recoveryMs ?? 0)));
    const p99 = quantiles(outside.map((l) => l.ms)).p99;
    if (p99 !== null && p99 > P99_LIMIT_MS) failures.push(`p99 2xx → visible outside faults ${p99} ms > ${P99_LIMIT_MS} ms`);
    const worstMinute = Math.max(0, ...perMinute.map((m) => m.p99Ms ?? 0));
    return endScenario(run, s, { name: this.name, schedule, startedAt }, { figures: { minutes, rssGrowthLastMinutes: { window, ...growth }, p99OutsideFaultsMs: p99, worstMinuteP99Ms: worstMinute, perMinute }, failures });
  },
};
