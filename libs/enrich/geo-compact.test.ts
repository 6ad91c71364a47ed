import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open, type Reader, type Response } from 'maxmind';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatIpv4, formatIpv6, parseIpv6 } from './ip-address.js';
import { defaultGeoPaths, openGeoLookup, type OpenGeoLookup } from './geo-lookup.js';

// Deterministic PRNG (mulberry32): the same sample on every run, so a failure reproduces.
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** first and last address of the /prefix network holding `v`, and the addresses just outside */
function v4Edges(v: number, prefix: number): number[] {
  const size = 2 ** (32 - prefix);
  const first = Math.floor(v / size) * size;
  const last = first + size - 1;
  return [first, last, first - 1, last + 1].filter((x) => x >= 0 && x <= 0xffffffff);
}

function v6Edges(g: readonly number[], prefix: number): number[][] {
  // as a BigInt for the arithmetic; the lookups themselves see strings
  let x = 0n;
  for (const part of g) x = (x << 16n) | BigInt(part);
  const size = 1n << BigInt(128 - prefix);
  const first = (x / size) * size;
  const last = first + size - 1n;
  const max = (1n << 128n) - 1n;
  return [first, last, first - 1n, last + 1n]
    .filter((y) => y >= 0n && y <= max)
    .map((y) => Array.from({ length: 8 }, (_, i) => Number((y >> BigInt(16 * (7 - i))) & 0xffffn)));
}

describe('compact geo form answers exactly what maxmind answers (DB-IP Lite)', () => {
  let compact: OpenGeoLookup;
  let whole: OpenGeoLookup;
  let v4: Reader<Response>;
  let v6: Reader<Response>;
  beforeAll(async () => {
    [compact, whole] = await Promise.all([openGeoLookup({ cacheSize: 10 }), openGeoLookup({ cacheSize: 10, cacheDirs: null })]);
    const [p4, p6] = defaultGeoPaths() as [string, string];
    [v4, v6] = await Promise.all([open<Response>(p4), open<Response>(p6)]);
  }, 120_000);
  afterAll(() => compact.close());

  it('reads the compact form, not the whole files', () => {
    expect(compact.stats.mode).toBe('compact');
    expect(whole.stats.mode).toBe('in-memory');
  });

  it.each([
    '1.0.0.0', '1.0.0.1', '8.8.8.8', '81.2.69.160', '223.255.255.255', '224.0.0.1', '255.255.255.255', '0.0.0.0',
    '::ffff:81.2.69.160', '2000::', '2001:4860:4860::8888', '2001:200::1', '2a00:1450:4001:81c::200e',
    '2c0f:ffff:ffff:ffff:ffff:ffff:ffff:ffff', '3ffe:ffff::1', '3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
    '2001:db8::1', '2001:500:30ff::30', '2002:c000:0204::1', '::1', 'fe80::1', 'not-an-ip',
  ])('%s', (ip) => {
    expect(compact.lookup(ip)).toEqual(whole.lookup(ip));
  });

  it('random IPv4 addresses and the edges of their networks', () => {
    const next = rng(4);
    let compared = 0;
    let withGeo = 0;
    for (let i = 0; i < 4000; i++) {
      const v = Math.floor(next() * 2 ** 32);
      const [, prefix] = v4.getWithPrefixLength(formatIpv4(v));
      for (const x of v4Edges(v, prefix)) {
        const ip = formatIpv4(x);
        const want = whole.lookup(ip);
        expect(compact.lookup(ip), ip).toEqual(want);
        compared++;
        if (want !== null) withGeo++;
      }
    }
    expect(compared).toBeGreaterThan(12_000);
    expect(withGeo).toBeGreaterThan(compared / 2);
  });

  it('random public IPv6 addresses (2000::/3) and the edges of their networks', () => {
    const next = rng(6);
    const g = new Uint16Array(8);
    let compared = 0;
    let withGeo = 0;
    for (let i = 0; i < 4000; i++) {
      // half uniform in 2000::/3, half inside the most populated /16s so long prefixes come up
      const parts = Array.from({ length: 8 }, () => Math.floor(next() * 0x10000));
      parts[0] = i % 2 === 0 ? 0x2000 | (parts[0] as number & 0x1fff) : ([0x2001, 0x2400, 0x2600, 0x2a00, 0x2a02, 0x2c0f][i % 6] as number);
      if (i % 4 === 1) parts[1] = (parts[1] as number) & 0x0fff;
      const ip = formatIpv6(parts);
      const [, prefix] = v6.getWithPrefixLength(ip);
      for (const edge of v6Edges(parts, prefix)) {
        const e = formatIpv6(edge);
        expect(parseIpv6(e, g)).toBe(true);
        const want = whole.lookup(e);
        expect(compact.lookup(e), e).toEqual(want);
        compared++;
        if (want !== null) withGeo++;
      }
    }
    expect(compared).toBeGreaterThan(12_000);
    expect(withGeo).toBeGreaterThan(compared / 4);
  });

  // networks longer than /64 found by walking the shipped IPv6 tree (10,347 such leaves in it)
  it.each([
    '2001:268:73bd:2e9d:8000::', '2001:1c04:80e:a000:b800::', '2405:200e:2c00::', '2800:4b0:5205:e9ae:780::',
    '2803:c800:40c1:fc1b:868d:e72d:8000:0', '2804:389:8107:37:1:0:7000:0', '2a02:6b67:e802:a00:1d00::', '2a0c:5a85:6308:c100:c000::',
  ])('the edges of the deep network at %s', (ip) => {
    const [, prefix] = v6.getWithPrefixLength(ip);
    expect(prefix).toBeGreaterThan(64);
    const g = new Uint16Array(8);
    expect(parseIpv6(ip, g)).toBe(true);
    for (const edge of v6Edges(Array.from(g), prefix)) {
      const e = formatIpv6(edge);
      expect(compact.lookup(e), e).toEqual(whole.lookup(e));
    }
  });
});

describe('compact geo cache', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'geo-cache-test-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('rebuilds a damaged cache file, then reuses it; a read-only first directory is skipped', async () => {
    const [p4] = defaultGeoPaths() as [string];
    const readOnly = join(dir, 'ro');
    writeFileSync(readOnly, 'a file, not a directory');
    const first = await openGeoLookup({ paths: [p4], cacheDirs: [readOnly, dir], cacheSize: 10 });
    const built = first.stats.files[0];
    expect(built?.built).toBe(true);
    expect(built?.compact?.startsWith(dir)).toBe(true);
    const answer = first.lookup('81.2.69.160');
    expect(answer?.country).toBe('GB');
    first.close();
    expect(() => first.lookup('81.2.69.161')).toThrow(/closed/);

    const again = await openGeoLookup({ paths: [p4], cacheDirs: [dir], cacheSize: 10 });
    expect(again.stats.files[0]?.built).toBe(false);
    expect(again.lookup('81.2.69.160')).toEqual(answer);
    again.close();

    const file = join(dir, readdirSync(dir).find((f) => f.endsWith('.tlgeo')) as string);
    const size = statSync(file).size;
    writeFileSync(file, Buffer.alloc(size / 2)); // truncated and not a compact file
    const rebuilt = await openGeoLookup({ paths: [p4], cacheDirs: [dir], cacheSize: 10 });
    expect(rebuilt.stats.files[0]?.built).toBe(true);
    expect(rebuilt.lookup('81.2.69.160')).toEqual(answer);
    rebuilt.close();
  }, 120_000);
});
