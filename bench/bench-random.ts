// Deterministic randomness for benchmark fixtures, so runs are comparable.
import { createRandom } from '../services/demo/random.js';

/** mulberry32 (the demo generator's PRNG) as a plain `() => number` in [0, 1). */
export function rng(seed: number): () => number {
  const r = createRandom(seed);
  return () => r.next();
}

/** Zipf(s) over ranks 0..n-1 by inverse CDF: a few heavy hitters, a long tail. */
export function zipfSampler(n: number, s: number, rand: () => number): () => number {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) cdf[i] = sum += 1 / Math.pow(i + 1, s);
  for (let i = 0; i < n; i++) cdf[i] = (cdf[i] ?? 0) / sum;
  return () => {
    const u = rand();
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((cdf[mid] ?? 1) < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}
