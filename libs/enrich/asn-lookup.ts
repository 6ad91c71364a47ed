// IP → network org (ASN + organisation) for company attribution. Default source: the
// @ip-location-db/asn CSVs (RouteViews, NRO, DB-IP; CC BY 4.0) loaded once into sorted typed
// arrays and binary-searched; a MaxMind-format ASN mmdb (GeoLite2-ASN shape) is accepted too.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { LRUCache } from 'lru-cache';
import { open, type Reader, type Response } from 'maxmind';
import type { IpOrg } from '../events/envelope.js';
import { parseIp, parseIpv4, parseIpv6 } from './ip-address.js';

export interface AsnLookup {
  /** Org of a public IP literal; null when unknown, not an IP, or not public. Results are frozen. */
  lookup(ip: string): IpOrg | null;
  /** rows loaded per family (0 for an mmdb source) */
  readonly stats: { readonly v4Ranges: number; readonly v6Ranges: number; readonly orgs: number; readonly loadMs: number };
}

export interface AsnLookupOptions {
  /** one .mmdb (GeoLite2-ASN shape) or one CSV `start,end,asn,org` (v4 and/or v6 rows) */
  path?: string;
  /** several CSVs; default: asn-ipv4-num.csv + asn-ipv6.csv from @ip-location-db/asn */
  paths?: readonly string[];
  cacheSize?: number;
}

export const DEFAULT_ASN_CACHE_SIZE = 20_000;

export function defaultAsnPaths(): string[] {
  const require = createRequire(import.meta.url);
  // NOTE: the -num IPv4 file holds the same rows as asn-ipv4.csv with integer bounds: faster to parse.
  return [
    require.resolve('@ip-location-db/asn/asn-ipv4-num.csv'),
    require.resolve('@ip-location-db/asn/asn-ipv6.csv'),
  ];
}

/** Normalises a GeoLite2-ASN style mmdb record. */
export function normalizeAsnRecord(record: unknown): IpOrg | null {
  if (record === null || typeof record !== 'object') return null;
  const r = record as Record<string, unknown>;
  const asnRaw = r['autonomous_system_number'] ?? r['asn'];
  const orgRaw = r['autonomous_system_organization'] ?? r['org'] ?? r['as_name'];
  const asn = typeof asnRaw === 'number' && Number.isInteger(asnRaw) ? asnRaw : typeof asnRaw === 'string' && /^\d+$/.test(asnRaw) ? Number(asnRaw) : null;
  const org = typeof orgRaw === 'string' && orgRaw.length > 0 ? orgRaw : null;
  if (asn === null && org === null) return null;
  return Object.freeze({ asn, org });
}

/**
 * Sorted, non-overlapping ranges in typed arrays. IPv6 keeps only the top 64 bits of each bound
 * (two Uint32s, no BigInt on the hot path): routed IPv6 prefixes are /48 or shorter, and in the
 * shipped data only 183 of 103k rows have a bound inside a /64 (anycast root-server blocks such as
 * 2001:500:30ff::/48 split around ::30); such an IP resolves to the last row starting in its /64.
 */
interface RangeTable {
  n: number;
  startHi: Uint32Array;
  startLo: Uint32Array;
  endHi: Uint32Array;
  endLo: Uint32Array;
  asn: Uint32Array;
  org: Uint32Array;
}

function newTable(cap: number, v6: boolean): RangeTable {
  return {
    n: 0,
    startHi: new Uint32Array(cap),
    startLo: v6 ? new Uint32Array(cap) : new Uint32Array(0),
    endHi: new Uint32Array(cap),
    endLo: v6 ? new Uint32Array(cap) : new Uint32Array(0),
    asn: new Uint32Array(cap),
    org: new Uint32Array(cap),
  };
}

function shrink(t: RangeTable, v6: boolean): RangeTable {
  return {
    n: t.n,
    startHi: t.startHi.slice(0, t.n),
    startLo: v6 ? t.startLo.slice(0, t.n) : t.startLo,
    endHi: t.endHi.slice(0, t.n),
    endLo: v6 ? t.endLo.slice(0, t.n) : t.endLo,
    asn: t.asn.slice(0, t.n),
    org: t.org.slice(0, t.n),
  };
}

/** Sorts by start when the file was not already sorted (the shipped files are). */
function ensureSorted(t: RangeTable, v6: boolean): RangeTable {
  let sorted = true;
  for (let i = 1; i < t.n && sorted; i++) {
    const a = t.startHi[i - 1] as number;
    const b = t.startHi[i] as number;
    if (a > b || (v6 && a === b && (t.startLo[i - 1] as number) > (t.startLo[i] as number))) sorted = false;
  }
  if (sorted) return t;
  const idx = Array.from({ length: t.n }, (_, i) => i);
  idx.sort((x, y) => (t.startHi[x] as number) - (t.startHi[y] as number) || (v6 ? (t.startLo[x] as number) - (t.startLo[y] as number) : 0));
  const out = newTable(t.n, v6);
  out.n = t.n;
  idx.forEach((from, to) => {
    out.startHi[to] = t.startHi[from] as number;
    out.endHi[to] = t.endHi[from] as number;
    if (v6) {
      out.startLo[to] = t.startLo[from] as number;
      out.endLo[to] = t.endLo[from] as number;
    }
    out.asn[to] = t.asn[from] as number;
    out.org[to] = t.org[from] as number;
  });
  return out;
}

/** Index of the last range whose start ≤ (hi, lo), or -1. */
function search(t: RangeTable, hi: number, lo: number, v6: boolean): number {
  let l = 0;
  let r = t.n - 1;
  let found = -1;
  while (l <= r) {
    const m = (l + r) >>> 1;
    const sh = t.startHi[m] as number;
    if (sh < hi || (sh === hi && (!v6 || (t.startLo[m] as number) <= lo))) {
      found = m;
      l = m + 1;
    } else {
      r = m - 1;
    }
  }
  if (found < 0) return -1;
  const eh = t.endHi[found] as number;
  if (eh > hi || (eh === hi && (!v6 || (t.endLo[found] as number) >= lo))) return found;
  return -1;
}

/** Decimal integer in buf[from, to) (at most 10 digits), or -1. */
function digits(buf: Uint8Array, from: number, to: number): number {
  if (to <= from || to - from > 10) return -1;
  let v = 0;
  for (let i = from; i < to; i++) {
    const c = (buf[i] as number) - 48;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  return v;
}

function hasColon(buf: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (buf[i] === 58) return true;
  return false;
}

function sameBytes(a: Uint8Array, aFrom: number, b: Uint8Array, bFrom: number, len: number): boolean {
  for (let i = 0; i < len; i++) if (a[aFrom + i] !== b[bFrom + i]) return false;
  return true;
}

/**
 * Parses `start,end,asn,org` CSV rows straight from bytes.
 * NOTE: works on the Buffer, not a decoded string: slicing and hashing ~500k strings took ~300 ms,
 * byte scanning a fraction of that. Only new org names are decoded.
 */
class CsvLoader {
  private t4 = newTable(1 << 16, false);
  private t6 = newTable(1 << 14, true);
  readonly orgs: string[] = [''];
  private readonly orgIndex = new Map<string, number>([['', 0]]);
  // where the raw bytes of the ASN's last org name sit, to compare the next row in place
  private readonly lastOrgByAsn = new Map<number, { org: number; buf: Buffer; from: number; len: number }>();
  private readonly g = new Uint16Array(8);

  tables(): { v4: RangeTable; v6: RangeTable } {
    return { v4: ensureSorted(shrink(this.t4, false), false), v6: ensureSorted(shrink(this.t6, true), true) };
  }

  private grow(t: RangeTable, v6: boolean): RangeTable {
    const bigger = newTable(t.startHi.length * 2, v6);
    bigger.n = t.n;
    bigger.startHi.set(t.startHi);
    bigger.endHi.set(t.endHi);
    if (v6) {
      bigger.startLo.set(t.startLo);
      bigger.endLo.set(t.endLo);
    }
    bigger.asn.set(t.asn);
    bigger.org.set(t.org);
    return bigger;
  }

  /** Interned index of the org field buf[from, to). NOTE: an ASN almost always keeps one name. */
  private orgAt(buf: Buffer, asn: number, from: number, to: number): number {
    const last = this.lastOrgByAsn.get(asn);
    if (last !== undefined && last.len === to - from && sameBytes(last.buf, last.from, buf, from, last.len)) return last.org;
    let org = buf.toString('utf8', from, to);
    if (org.charCodeAt(0) === 34 /* " */) org = org.slice(1, org.length > 1 && org.endsWith('"') ? -1 : undefined).replaceAll('""', '"');
    let i = this.orgIndex.get(org);
    if (i === undefined) {
      i = this.orgs.length;
      this.orgs.push(org);
      this.orgIndex.set(org, i);
    }
    this.lastOrgByAsn.set(asn, { org: i, buf, from, len: to - from });
    return i;
  }

  /** Adds every well-formed row of one CSV file; malformed lines are skipped. */
  addCsv(buf: Buffer): void {
    const len = buf.length;
    let pos = 0;
    while (pos < len) {
      // NOTE: hand-rolled scan: Buffer#indexOf is a native call per field, ~4x slower here.
      const lineStart = pos;
      let c1 = -1;
      let c2 = -1;
      let c3 = -1;
      let i = pos;
      for (; i < len; i++) {
        const c = buf[i] as number;
        if (c === 10) break;
        if (c === 44 && c3 < 0) {
          if (c1 < 0) c1 = i;
          else if (c2 < 0) c2 = i;
          else c3 = i;
        }
      }
      let eol = i;
      pos = i + 1;
      if (eol > lineStart && buf[eol - 1] === 13) eol--;
      if (c3 < 0) continue;
      const asn = digits(buf, c2 + 1, c3);
      if (asn < 0) continue;
      const org = this.orgAt(buf, asn, c3 + 1, eol);
      const numeric = digits(buf, lineStart, c1);
      if (numeric >= 0 || !hasColon(buf, lineStart, c1)) {
        const s = numeric >= 0 ? numeric : parseIpv4(buf.toString('latin1', lineStart, c1));
        const e = numeric >= 0 ? digits(buf, c1 + 1, c2) : parseIpv4(buf.toString('latin1', c1 + 1, c2));
        if (s < 0 || e < s || e > 0xffffffff) continue;
        let t = this.t4;
        if (t.n === t.startHi.length) t = this.t4 = this.grow(t, false);
        t.startHi[t.n] = s;
        t.endHi[t.n] = e;
        t.asn[t.n] = asn;
        t.org[t.n] = org;
        t.n++;
      } else {
        const g = this.g;
        if (!parseIpv6(buf.toString('latin1', lineStart, c1), g)) continue;
        const sh = (((g[0] as number) << 16) | (g[1] as number)) >>> 0;
        const sl = (((g[2] as number) << 16) | (g[3] as number)) >>> 0;
        if (!parseIpv6(buf.toString('latin1', c1 + 1, c2), g)) continue;
        const eh = (((g[0] as number) << 16) | (g[1] as number)) >>> 0;
        const el = (((g[2] as number) << 16) | (g[3] as number)) >>> 0;
        let t = this.t6;
        if (t.n === t.startHi.length) t = this.t6 = this.grow(t, true);
        t.startHi[t.n] = sh;
        t.startLo[t.n] = sl;
        t.endHi[t.n] = eh;
        t.endLo[t.n] = el;
        t.asn[t.n] = asn;
        t.org[t.n] = org;
        t.n++;
      }
    }
  }
}

const NONE = Object.freeze({ none: true });

async function openCsv(paths: readonly string[]): Promise<{ resolve: (address: string, family: 4 | 6) => IpOrg | null; v4: number; v6: number; orgs: number }> {
  const files = await Promise.all(paths.map((p) => readFile(p)));
  const loader = new CsvLoader();
  for (const file of files) loader.addCsv(file);
  const { v4, v6 } = loader.tables();
  const orgs = loader.orgs;
  const g = new Uint16Array(8);
  function make(t: RangeTable, i: number): IpOrg {
    const asn = t.asn[i] as number;
    const org = orgs[t.org[i] as number] ?? '';
    return Object.freeze({ asn: asn === 0 ? null : asn, org: org === '' ? null : org });
  }
  return {
    v4: v4.n,
    v6: v6.n,
    orgs: orgs.length - 1,
    resolve(address, family) {
      if (family === 4) {
        const v = parseIpv4(address);
        if (v < 0) return null;
        const i = search(v4, v, 0, false);
        return i < 0 ? null : make(v4, i);
      }
      if (!parseIpv6(address, g)) return null;
      const hi = ((g[0] as number) << 16 | (g[1] as number)) >>> 0;
      const lo = ((g[2] as number) << 16 | (g[3] as number)) >>> 0;
      const i = search(v6, hi, lo, true);
      return i < 0 ? null : make(v6, i);
    },
  };
}

async function openMmdb(path: string): Promise<(address: string, family: 4 | 6) => IpOrg | null> {
  const reader: Reader<Response> = await open<Response>(path);
  const isV4Only = reader.metadata.ipVersion === 4;
  return (address, family) => (family === 6 && isV4Only ? null : normalizeAsnRecord(reader.get(address)));
}

export async function openAsnLookup(opts: AsnLookupOptions = {}): Promise<AsnLookup> {
  const t0 = performance.now();
  const paths = opts.path !== undefined ? [opts.path] : opts.paths && opts.paths.length > 0 ? opts.paths : defaultAsnPaths();
  let resolve: (address: string, family: 4 | 6) => IpOrg | null;
  let counts = { v4: 0, v6: 0, orgs: 0 };
  if (paths.length === 1 && paths[0]?.toLowerCase().endsWith('.mmdb')) {
    resolve = await openMmdb(paths[0]);
  } else {
    const csv = await openCsv(paths);
    resolve = csv.resolve;
    counts = csv;
  }
  const stats = Object.freeze({ v4Ranges: counts.v4, v6Ranges: counts.v6, orgs: counts.orgs, loadMs: Math.round(performance.now() - t0) });
  const cache = new LRUCache<string, IpOrg | typeof NONE>({ max: opts.cacheSize ?? DEFAULT_ASN_CACHE_SIZE });
  return {
    stats,
    lookup(ip: string): IpOrg | null {
      const hit = cache.get(ip);
      if (hit !== undefined) return hit === NONE ? null : (hit as IpOrg);
      const parsed = parseIp(ip);
      const org = parsed !== null && parsed.isPublic ? resolve(parsed.address, parsed.family) : null;
      cache.set(ip, org ?? NONE);
      return org;
    },
  };
}
