// Per-tenant IP policy (DESIGN.md §3): what IP is stored and whether geo / network org are looked up.
import { LRUCache } from 'lru-cache';
import type { Geo, IpOrg } from '../events/envelope.js';
import type { IpPolicy, TenantFlags } from '../tenants/flags.js';
import type { AsnLookup } from './asn-lookup.js';
import type { GeoLookup } from './geo-lookup.js';
import { parseIp, type ParsedIp } from './ip-address.js';

export interface IpPlan {
  readonly store: 'full' | 'masked' | 'none';
  readonly lookupGeo: boolean;
  /** NOTE: company/ASN follows the same policy as geo: under `mask` and `drop` it is not looked up either. */
  readonly lookupOrg: boolean;
}

const PLANS: Record<IpPolicy, IpPlan> = {
  full: { store: 'full', lookupGeo: true, lookupOrg: true },
  geo_then_mask: { store: 'masked', lookupGeo: true, lookupOrg: true },
  mask: { store: 'masked', lookupGeo: false, lookupOrg: false },
  drop: { store: 'none', lookupGeo: false, lookupOrg: false },
};
const NO_LOOKUPS: Record<IpPolicy, IpPlan> = {
  full: { ...PLANS.full, lookupGeo: false, lookupOrg: false },
  geo_then_mask: { ...PLANS.geo_then_mask, lookupGeo: false, lookupOrg: false },
  mask: PLANS.mask,
  drop: PLANS.drop,
};

/** `resolveIp=false` (geo opt-out) turns every lookup off; the stored IP still follows the policy. */
export function ipPlan(policy: IpPolicy, resolveIp: boolean): IpPlan {
  return (resolveIp ? PLANS : NO_LOOKUPS)[policy];
}

export interface IpResolution {
  readonly ip: string | null;
  readonly geo: Geo | null;
  readonly ip_org: IpOrg | null;
}

export type IpResolver = (ip: string | null, flags: Pick<TenantFlags, 'ipPolicy' | 'resolveIp'>) => IpResolution;

export const DEFAULT_IP_CACHE_SIZE = 20_000;

const EMPTY: IpResolution = Object.freeze({ ip: null, geo: null, ip_org: null });

/** What one IP string resolves to, per stored form (full / masked) × lookups on / off; built lazily. */
interface IpEntry {
  readonly parsed: ParsedIp;
  fullLookup?: IpResolution;
  maskedLookup?: IpResolution;
  fullBare?: IpResolution;
  maskedBare?: IpResolution;
}
const INVALID = Object.freeze({ invalid: true });

/**
 * Applies the tenant's policy to one event IP. Private / reserved IPs get no geo and no org; an
 * input that is not an IP literal is never stored (it may be anything, including PII).
 * NOTE: one LRU entry per IP string holds the parse and the frozen, shareable resolutions, so the
 * hot path is one cache hit and no allocation; the geo/asn lookups' own caches see only misses.
 */
export function createIpResolver(deps: { geo: GeoLookup | null; asn: AsnLookup | null; cacheSize?: number }): IpResolver {
  const { geo, asn } = deps;
  const cache = new LRUCache<string, IpEntry | typeof INVALID>({ max: deps.cacheSize ?? DEFAULT_IP_CACHE_SIZE });

  function resolution(p: ParsedIp, full: boolean, lookup: boolean): IpResolution {
    const on = lookup && p.isPublic;
    return Object.freeze({
      ip: full ? p.address : p.masked,
      // TRICKY: look up the full address even when only the masked one is stored (geo_then_mask).
      geo: on && geo !== null ? geo.lookup(p.address) : null,
      ip_org: on && asn !== null ? asn.lookup(p.address) : null,
    });
  }

  return function resolveIp(ip, flags) {
    if (ip === null || ip === '') return EMPTY;
    const plan = ipPlan(flags.ipPolicy, flags.resolveIp);
    if (plan.store === 'none') return EMPTY;
    let e = cache.get(ip);
    if (e === undefined) {
      const parsed = parseIp(ip);
      e = parsed === null ? INVALID : { parsed };
      cache.set(ip, e);
    }
    if (e === INVALID) return EMPTY;
    const entry = e as IpEntry;
    // NOTE: lookupGeo and lookupOrg always agree (see PLANS), so one flag selects the variant.
    if (plan.store === 'full') {
      return plan.lookupGeo
        ? (entry.fullLookup ??= resolution(entry.parsed, true, true))
        : (entry.fullBare ??= resolution(entry.parsed, true, false));
    }
    return plan.lookupGeo
      ? (entry.maskedLookup ??= resolution(entry.parsed, false, true))
      : (entry.maskedBare ??= resolution(entry.parsed, false, false));
  };
}
