import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { normalizeAsnRecord, openAsnLookup, type AsnLookup } from './asn-lookup.js';

describe('openAsnLookup (default @ip-location-db/asn CSVs)', () => {
  let asn: AsnLookup;
  beforeAll(async () => {
    asn = await openAsnLookup();
  });

  it('loads both families', () => {
    expect(asn.stats.v4Ranges).toBeGreaterThan(100_000);
    expect(asn.stats.v6Ranges).toBeGreaterThan(10_000);
  });

  it.each([
    ['8.8.8.8', 15169, 'Google'],
    ['::ffff:8.8.8.8', 15169, 'Google'],
    ['1.1.1.1', 13335, 'Cloudflare'],
    ['2001:4860:4860::8888', 15169, 'Google'],
  ])('%s → AS%i (%s)', (ip, number, org) => {
    const r = asn.lookup(ip);
    expect(r?.asn).toBe(number);
    expect(r?.org).toContain(org);
  });

  it.each(['10.0.0.1', '192.168.1.1', '::1', 'fc00::1', 'nope'])('%s → null', (ip) => {
    expect(asn.lookup(ip)).toBeNull();
  });
});

describe('openAsnLookup (CSV parsing)', () => {
  let asn: AsnLookup;
  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'asn-'));
    const path = join(dir, 'asn.csv');
    // unsorted on purpose, quoted orgs with commas and escaped quotes, CRLF, a malformed line, both families
    writeFileSync(
      path,
      [
        '9.0.0.0,9.255.255.255,3356,"Level 3, ""Parent"" LLC"',
        '8.8.8.0,8.8.8.255,15169,Google LLC',
        'garbage line',
        '16777216,16777471,13335,"Cloudflare, Inc."\r',
        '2001:db8::,2001:db8:ffff:ffff:ffff:ffff:ffff:ffff,64500,Doc Net',
        '2a00:1450::,2a00:1450:ffff:ffff:ffff:ffff:ffff:ffff,15169,Google LLC',
      ].join('\n'),
    );
    asn = await openAsnLookup({ path, cacheSize: 10 });
  });

  it.each([
    ['8.8.8.8', { asn: 15169, org: 'Google LLC' }],
    ['9.1.2.3', { asn: 3356, org: 'Level 3, "Parent" LLC' }],
    ['1.0.0.1', { asn: 13335, org: 'Cloudflare, Inc.' }],
    ['2a00:1450:4001:80b::200e', { asn: 15169, org: 'Google LLC' }],
    ['8.8.9.1', null],
    ['2a00:1451::1', null],
  ])('%s → %j', (ip, expected) => {
    expect(asn.lookup(ip)).toEqual(expected);
  });

  it('interns org strings', () => {
    expect(asn.stats).toMatchObject({ v4Ranges: 3, v6Ranges: 2, orgs: 4 });
  });
});

describe('normalizeAsnRecord (GeoLite2-ASN mmdb shape)', () => {
  it.each([
    [{ autonomous_system_number: 15169, autonomous_system_organization: 'GOOGLE' }, { asn: 15169, org: 'GOOGLE' }],
    [{ autonomous_system_number: 64512 }, { asn: 64512, org: null }],
    [{ asn: '13335', as_name: 'Cloudflare' }, { asn: 13335, org: 'Cloudflare' }],
    [{}, null],
    [null, null],
  ])('%j → %j', (record, expected) => {
    expect(normalizeAsnRecord(record)).toEqual(expected);
  });
});
