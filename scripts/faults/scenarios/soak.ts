// Scenario 9: steady load at half the measured maximum for 30 minutes with the faults
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

/**
 * What of a process's memory is live JavaScript (V8 heap used) and what is held outside it
 * (Buffers, ArrayBuffers): from its /metrics. Tells a leak (the heap grows) from memory the
 * allocator keeps after a burst (RSS steps, the heap does not).
 */
async function heapMb(port: number | undefined): Promise<{ heapUsed: number; external: number } | null> {
  if (port === undefined) return null;
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(2_000) })).text();
    const gauge = (name: string): number => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1]);
    const used = gauge('nodejs_heap_size_used_bytes');
    const external = gauge('nodejs_external_memory_bytes');
    return Number.isFinite(used) && Number.isFinite(external) ? { heapUsed: Math.round(used / 2 ** 20), external: Math.round(external / 2 ** 20) } : null;
  } catch {
    return null;
  }
}

/** median of the values (a single spike at either end of a window does not move it) */
function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
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
    const perMinute: { minute: number; rssMb: Record<string, number | null>; heapMb: Record<string, { heapUsed: number; external: number } | null>; p99Ms: number | null; batches: number }[] = [];
    let minute = 0;
    let nextFault = startedAt + faultEveryS * 1000;
    let faultIndex = 0;
    const sample = async (): Promise<void> => {
      minute++;
      const from = startedAt + (minute - 1) * 60_000;
      const to = from + 60_000;
      const inMinute = s.latency.filter((l) => l.at >= from && l.at < to && !s.windows.some((w) => l.at >= w.start - 1_000 && l.at <= w.end + (w.recoveryMs ?? 0)));
      const rss = Object.fromEntries(LONG_LIVED.map((k) => [k, rssMb(run.fleet.processes.get(k)?.pid ?? -1)]));
      const heap = Object.fromEntries(await Promise.all(LONG_LIVED.map(async (k) => [k, await heapMb(run.fleet.processes.get(k)?.port)] as const)));
      const p99 = quantiles(inMinute.map((l) => l.ms)).p99;
      perMinute.push({ minute, rssMb: rss, heapMb: heap, p99Ms: p99, batches: inMinute.length });
      const mem = (k: string): string => `${k} ${rss[k]} MB (heap ${heap[k]?.heapUsed ?? '?'}, external ${heap[k]?.external ?? '?'})`;
      log(`  minute ${minute}: RSS ${LONG_LIVED.map(mem).join(', ')}; p99 ${p99 ?? '–'} ms (${inMinute.length} batches outside faults)`);
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
        await sample();
        nextSample += 60_000;
      }
      await sleep(1_000);
    }
    await sleep(60_000);
    while (minute < minutes) await sample();
    // the issue's window: the last 20 minutes of a 30-minute soak (two thirds of a shorter one)
    const window = Math.min(20, Math.floor((minutes * 2) / 3));
    const growth: Record<string, number | null> = {};
    const heapGrowth: Record<string, number | null> = {};
    const failures: string[] = [];
    // each end of the window is the median of 3 samples around it: one catch-up spike does not decide
    const change = (series: number[]): { first: number; last: number; growth: number } | null => {
      if (series.length < window + 1) return null;
      const end = series.length - 1;
      const first = median(series.slice(Math.max(0, end - window - 1), end - window + 2));
      const last = median(series.slice(end - 2, end + 1));
      return { first, last, growth: Math.round(((last - first) / first) * 1000) / 1000 };
    };
    for (const k of LONG_LIVED) {
      const rss = change(perMinute.map((m) => m.rssMb[k]).filter((v): v is number => v !== null));
      growth[k] = rss?.growth ?? null;
      heapGrowth[k] = change(perMinute.map((m) => m.heapMb[k]?.heapUsed).filter((v): v is number => v !== undefined))?.growth ?? null;
      if (rss && rss.growth > RSS_GROWTH_LIMIT) failures.push(`${k} RSS grew ${Math.round(rss.growth * 100)} % over the last ${window} minutes (${Math.round(rss.first)} → ${Math.round(rss.last)} MB)`);
    }
    const outside = s.latency.filter((l) => !s.windows.some((w) => l.at >= w.start - 1_000 && l.at <= w.end + (w.recoveryMs ?? 0)));
    const p99 = quantiles(outside.map((l) => l.ms)).p99;
    if (p99 !== null && p99 > P99_LIMIT_MS) failures.push(`p99 2xx → visible outside faults ${p99} ms > ${P99_LIMIT_MS} ms`);
    const worstMinute = Math.max(0, ...perMinute.map((m) => m.p99Ms ?? 0));
    return endScenario(run, s, { name: this.name, schedule, startedAt }, { figures: { minutes, rssGrowthLastMinutes: { window, ...growth }, heapUsedGrowthLastMinutes: { window, ...heapGrowth }, p99OutsideFaultsMs: p99, worstMinuteP99Ms: worstMinute, perMinute }, failures });
  },
};
