// Seeded randomness for the demo generator (and the benchmarks' fixtures): the same seed
// gives the same sequence on every platform, so generated traffic is reproducible.

export interface Random {
  /** uniform in [0, 1) */
  next(): number;
  /** integer in [min, max] */
  int(min: number, max: number): number;
  chance(p: number): boolean;
  pick<T>(items: readonly T[]): T;
  weighted<T extends { weight: number }>(items: readonly T[]): T;
  hex(chars: number): string;
}

/** mulberry32: tiny, fast, good enough for synthetic data, identical on every platform. */
export function createRandom(seed: number): Random {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (min: number, max: number): number => min + Math.floor(next() * (max - min + 1));
  const pick = <T>(items: readonly T[]): T => {
    const item = items[Math.floor(next() * items.length)];
    if (item === undefined) throw new RangeError('pick from an empty list');
    return item;
  };
  return {
    next,
    int,
    chance: (p) => next() < p,
    pick,
    weighted: (items) => {
      const total = items.reduce((s, i) => s + i.weight, 0);
      let r = next() * total;
      for (const item of items) {
        r -= item.weight;
        if (r < 0) return item;
      }
      return pick(items);
    },
    hex: (chars) => {
      let s = '';
      while (s.length < chars) s += Math.floor(next() * 0x10000).toString(16).padStart(4, '0');
      return s.slice(0, chars);
    },
  };
}

export function uuidV4(rng: Random): string {
  const h = rng.hex(32);
  const variant = ((rng.int(0, 3) | 8) >>> 0).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
