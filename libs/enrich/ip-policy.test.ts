import { describe, expect, it, vi } from 'vitest';
import type { Geo, IpOrg } from '../events/envelope.js';
import type { IpPolicy } from '../tenants/flags.js';
import type { AsnLookup } from './asn-lookup.js';
import type { GeoLookup } from './geo-lookup.js';
import { createIpResolver, ipPlan } from './ip-policy.js';

const GEO: Geo = { country: 'US', region: 'California', city: 'Mountain View', lat: 37.4, lon: -122.1, timezone: null };
const ORG: IpOrg = { asn: 15169, org: 'Google LLC' };

function fakes() {
  const geo = { lookup: vi.fn((_ip: string) => GEO) } satisfies GeoLookup;
  const asn = { lookup: vi.fn((_ip: string) => ORG), stats: { v4Ranges: 0, v6Ranges: 0, orgs: 0, loadMs: 0 } } satisfies AsnLookup;
  return { geo, asn };
}

describe('ipPlan', () => {
  it.each([
    ['full', true, 'full', true, true],
    ['geo_then_mask', true, 'masked', true, true],
    ['mask', true, 'masked', false, false],
    ['drop', true, 'none', false, false],
    ['full', false, 'full', false, false],
    ['geo_then_mask', false, 'masked', false, false],
    ['mask', false, 'masked', false, false],
    ['drop', false, 'none', false, false],
  ] as const)('%s resolveIp=%s → store %s, geo %s, org %s', (policy, resolveIp, store, lookupGeo, lookupOrg) => {
    expect(ipPlan(policy, resolveIp)).toEqual({ store, lookupGeo, lookupOrg });
  });
});

describe('createIpResolver', () => {
  it.each([
    // policy, resolveIp, input ip, stored ip, geo?, org?
    ['full', true, '8.8.8.8', '8.8.8.8', true, true],
    ['geo_then_mask', true, '8.8.8.8', '8.8.8.0', true, true],
    ['mask', true, '8.8.8.8', '8.8.8.0', false, false],
    ['drop', true, '8.8.8.8', null, false, false],
    ['full', false, '8.8.8.8', '8.8.8.8', false, false],
    ['geo_then_mask', false, '8.8.8.8', '8.8.8.0', false, false],
    ['full', true, '2001:4860:4860::8888', '2001:4860:4860::8888', true, true],
    ['geo_then_mask', true, '2001:4860:4860::8888', '2001:4860:4860::', true, true],
    ['full', true, '::ffff:8.8.8.8', '8.8.8.8', true, true],
    // private IPs: stored per policy, never looked up
    ['full', true, '10.1.2.3', '10.1.2.3', false, false],
    ['geo_then_mask', true, '192.168.1.77', '192.168.1.0', false, false],
    ['full', true, '::1', '::1', false, false],
    ['mask', true, 'fc00::1', 'fc00::', false, false],
    ['drop', true, '127.0.0.1', null, false, false],
    // not an IP: never stored
    ['full', true, 'alice@example.com', null, false, false],
  ] as const)('%s resolveIp=%s %s → ip %s geo %s org %s', (policy: IpPolicy, resolveIp, input, ip, hasGeo, hasOrg) => {
    const { geo, asn } = fakes();
    const resolve = createIpResolver({ geo, asn });
    const r = resolve(input, { ipPolicy: policy, resolveIp });
    expect(r).toEqual({ ip, geo: hasGeo ? GEO : null, ip_org: hasOrg ? ORG : null });
    expect(geo.lookup).toHaveBeenCalledTimes(hasGeo ? 1 : 0);
    expect(asn.lookup).toHaveBeenCalledTimes(hasOrg ? 1 : 0);
  });

  it('looks up the full address under geo_then_mask, never the masked one', () => {
    const { geo, asn } = fakes();
    createIpResolver({ geo, asn })('81.2.69.160', { ipPolicy: 'geo_then_mask', resolveIp: true });
    expect(geo.lookup).toHaveBeenCalledWith('81.2.69.160');
    expect(asn.lookup).toHaveBeenCalledWith('81.2.69.160');
  });

  it('caches per IP and keeps policies apart', () => {
    const { geo, asn } = fakes();
    const resolve = createIpResolver({ geo, asn });
    const full = resolve('8.8.8.8', { ipPolicy: 'full', resolveIp: true });
    const masked = resolve('8.8.8.8', { ipPolicy: 'mask', resolveIp: true });
    expect(resolve('8.8.8.8', { ipPolicy: 'full', resolveIp: true })).toBe(full);
    expect(masked).toEqual({ ip: '8.8.8.0', geo: null, ip_org: null });
    expect(geo.lookup).toHaveBeenCalledTimes(1);
  });

  it.each([null, ''])('%j → nothing', (input) => {
    const { geo, asn } = fakes();
    expect(createIpResolver({ geo, asn })(input, { ipPolicy: 'full', resolveIp: true })).toEqual({ ip: null, geo: null, ip_org: null });
  });

  it('works without databases', () => {
    const r = createIpResolver({ geo: null, asn: null })('8.8.8.8', { ipPolicy: 'full', resolveIp: true });
    expect(r).toEqual({ ip: '8.8.8.8', geo: null, ip_org: null });
  });
});
