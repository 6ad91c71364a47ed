// Reads the per-stage counters of a Tracklane /metrics endpoint (libs/pipeline/metrics.ts), so
// tests can compare what runners counted.

export interface StageCounts {
  in: number;
  out: number;
  dropped: number;
  deadLetters: number;
  retries: number;
}

const COUNTERS: Record<string, keyof StageCounts> = {
  tracklane_events_in_total: 'in',
  tracklane_events_out_total: 'out',
  tracklane_dropped_total: 'dropped',
  tracklane_dead_letters_total: 'deadLetters',
  tracklane_retries_total: 'retries',
};

/** Per stage, the counters of one Prometheus text exposition (absent counters are 0). */
export function parseStageCounts(text: string): Map<string, StageCounts> {
  const out = new Map<string, StageCounts>();
  for (const line of text.split('\n')) {
    const m = /^(tracklane_[a-z_]+)\{([^}]*)\} ([0-9.e+-]+)$/.exec(line);
    if (!m) continue;
    const field = COUNTERS[m[1] ?? ''];
    const stage = /(?:^|,)stage="([^"]*)"/.exec(m[2] ?? '')?.[1];
    if (!field || stage === undefined) continue;
    const counts = out.get(stage) ?? { in: 0, out: 0, dropped: 0, deadLetters: 0, retries: 0 };
    counts[field] += Number(m[3]);
    out.set(stage, counts);
  }
  return out;
}

/** The per-stage counters behind a base URL, summed over several endpoints (a fleet's services). */
export async function stageCounts(...baseUrls: string[]): Promise<Map<string, StageCounts>> {
  const sum = new Map<string, StageCounts>();
  for (const url of baseUrls) {
    const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5_000) });
    if (!res.ok) throw new Error(`GET ${url}/metrics answered ${res.status}`);
    for (const [stage, c] of parseStageCounts(await res.text())) {
      const s = sum.get(stage) ?? { in: 0, out: 0, dropped: 0, deadLetters: 0, retries: 0 };
      for (const k of Object.keys(c) as (keyof StageCounts)[]) s[k] += c[k];
      sum.set(stage, s);
    }
  }
  return sum;
}

/** counts of `after` minus `before`, for the stages named */
export function countsSince(before: Map<string, StageCounts>, after: Map<string, StageCounts>, stages: readonly string[]): Record<string, StageCounts> {
  const zero: StageCounts = { in: 0, out: 0, dropped: 0, deadLetters: 0, retries: 0 };
  return Object.fromEntries(
    stages.map((s) => {
      const a = after.get(s) ?? zero;
      const b = before.get(s) ?? zero;
      return [s, { in: a.in - b.in, out: a.out - b.out, dropped: a.dropped - b.dropped, deadLetters: a.deadLetters - b.deadLetters, retries: a.retries - b.retries }];
    }),
  );
}
