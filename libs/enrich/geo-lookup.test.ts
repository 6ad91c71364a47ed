import { beforeAll, describe, expect, it } from 'vitest';
import { normalizeGeoRecord, openGeoLookup, type GeoLookup } from './geo-lookup.js';

describe('openGeoLookup (DB-IP Lite city)', () => {
  let geo: GeoLookup;
  beforeAll(async () => {
    geo = await openGeoLookup({ cacheSize: 100 });
  });

  it.each([
    ['8.8.8.8', 'US'],
    ['81.2.69.160', 'GB'],
    ['::ffff:81.2.69.160', 'GB'],
    ['2001:4860:4860::8888', expect.any(String)],
  ])('%s → country %s', (ip, country) => {
    const g = geo.lookup(ip);
    expect(g?.country).toEqual(country);
    expect(typeof g?.lat).toBe('number');
  });

  it.each(['10.1.2.3', '192.168.0.10', '127.0.0.1', '::1', 'fc00::1', '100.64.0.1', 'garbage', ''])('%s → no geo', (ip) => {
    expect(geo.lookup(ip)).toBeNull();
  });

  it('returns the cached, frozen object on a repeat lookup', () => {
    const a = geo.lookup('8.8.8.8');
    expect(geo.lookup('8.8.8.8')).toBe(a);
    expect(Object.isFrozen(a)).toBe(true);
  });
});

describe('normalizeGeoRecord', () => {
  it.each([
    [
      'DB-IP flat shape, empty strings → null',
      { city: 'London', country_code: 'GB', latitude: 51.5, longitude: -0.09, postcode: '', state1: 'England', state2: '', timezone: '' },
      { country: 'GB', region: 'England', city: 'London', lat: 51.5, lon: -0.09, timezone: null },
    ],
    [
      'GeoIP2 nested shape',
      {
        city: { names: { en: 'Boxford', de: 'Boxford' } },
        country: { iso_code: 'GB', names: { en: 'United Kingdom' } },
        subdivisions: [{ iso_code: 'ENG', names: { en: 'England' } }, { names: { en: 'West Berkshire' } }],
        location: { latitude: 51.75, longitude: -1.25, time_zone: 'Europe/London', accuracy_radius: 100 },
      },
      { country: 'GB', region: 'England', city: 'Boxford', lat: 51.75, lon: -1.25, timezone: 'Europe/London' },
    ],
    [
      'GeoIP2 country-only record falls back to registered_country',
      { registered_country: { iso_code: 'DE' } },
      { country: 'DE', region: null, city: null, lat: null, lon: null, timezone: null },
    ],
    ['null', null, null],
    ['empty record', {}, null],
  ])('%s', (_name, record, expected) => {
    expect(normalizeGeoRecord(record)).toEqual(expected);
  });
});
