import { describe, expect, it } from 'vitest';
import { ZodError } from 'zod';
import { describeIssues } from '../events/segment-message.js';
import {
  DEFAULT_FLAGS,
  flagsPatchSchema,
  MAX_FLAG_NAME_CHARS,
  MAX_FLAG_NAMES,
  MAX_KEY_VERSION,
  MAX_RATE_LIMIT,
  tenantFlagsSchema,
  UNKNOWN_TENANT_GRACE_MS,
  unknownTenantVerdict,
  type FlagSource,
} from './flags.js';

describe('unknownTenantVerdict', () => {
  const received = 1_000_000;
  it.each([
    ['a source that cannot tell (in-process store)', { get: () => undefined }, 'retry'],
    ['a source that is unavailable', { get: () => undefined, absentSince: () => undefined }, 'retry'],
    ['a view that started within the grace period', { get: () => undefined, absentSince: () => received + UNKNOWN_TENANT_GRACE_MS }, 'retry'],
    ['a view that started after the grace period', { get: () => undefined, absentSince: () => received + UNKNOWN_TENANT_GRACE_MS + 1 }, 'unknown'],
  ] as [string, FlagSource, string][])('%s → %s', (_name, source, verdict) => {
    expect(unknownTenantVerdict(source, 'ghost', received)).toBe(verdict);
  });
});

describe('flagsPatchSchema bounds', () => {
  const names = (n: number, chars = 8) => Array.from({ length: n }, (_, i) => `${i}`.padStart(chars, 'n'));
  it.each([
    ['keyVersion at the bound', { keyVersion: MAX_KEY_VERSION }],
    ['the largest lists', { piiTraits: names(MAX_FLAG_NAMES, MAX_FLAG_NAME_CHARS), scrubQueryParams: names(MAX_FLAG_NAMES, MAX_FLAG_NAME_CHARS) }],
    ['one-character names', { piiTraits: ['x'], scrubQueryParams: ['y'] }],
    ['empty lists', { piiTraits: [], scrubQueryParams: [] }],
  ])('accepts %s', (_name, patch) => {
    expect(flagsPatchSchema.safeParse(patch).success).toBe(true);
  });

  it.each([
    ['keyVersion over the bound', { keyVersion: MAX_KEY_VERSION + 1 }, 'keyVersion'],
    ['keyVersion 1e9', { keyVersion: 1e9 }, 'keyVersion'],
    ['keyVersion 0', { keyVersion: 0 }, 'keyVersion'],
    ['keyVersion not an integer', { keyVersion: 1.5 }, 'keyVersion'],
    ['too many piiTraits', { piiTraits: names(MAX_FLAG_NAMES + 1) }, 'piiTraits'],
    ['too many scrubQueryParams', { scrubQueryParams: names(MAX_FLAG_NAMES + 1) }, 'scrubQueryParams'],
    ['a piiTrait name too long', { piiTraits: ['x'.repeat(MAX_FLAG_NAME_CHARS + 1)] }, 'piiTraits.0'],
    ['a scrubQueryParams name too long', { scrubQueryParams: ['ok', 'x'.repeat(MAX_FLAG_NAME_CHARS + 1)] }, 'scrubQueryParams.1'],
    ['an empty piiTrait name', { piiTraits: [''] }, 'piiTraits.0'],
    ['an empty scrubQueryParams name', { scrubQueryParams: [''] }, 'scrubQueryParams.0'],
    ['a non-string name', { piiTraits: [7] }, 'piiTraits.0'],
  ])('rejects %s with a zod error naming %s', (_name, patch, path) => {
    const r = flagsPatchSchema.safeParse(patch);
    expect(r.success).toBe(false);
    if (!r.success) {
      expect(r.error).toBeInstanceOf(ZodError);
      expect(describeIssues(r.error)).toMatch(new RegExp(`^${path.replace('.', '\\.')}: `));
    }
  });

  it('still loads stored flags beyond the patch bounds (records written before them)', () => {
    const stored = { ...DEFAULT_FLAGS, keyVersion: 5000, piiTraits: names(150, 200), scrubQueryParams: [''] };
    expect(tenantFlagsSchema.parse(stored)).toEqual(stored);
  });
});

describe('collection-control flags', () => {
  it('a patch of another flag leaves them alone (no defaults inside the patch)', () => {
    expect(flagsPatchSchema.parse({ ipPolicy: 'mask' })).toEqual({ ipPolicy: 'mask' });
  });

  it('a record stored before they existed loads with their defaults', () => {
    const { consentRequired, consentMissing, botPolicy, rateLimitPerSecond, rateLimitBurst, ...older } = DEFAULT_FLAGS;
    expect([consentRequired, consentMissing, botPolicy, rateLimitPerSecond, rateLimitBurst]).toEqual([[], 'keep', 'flag', null, null]);
    expect(tenantFlagsSchema.parse(older)).toEqual(DEFAULT_FLAGS);
  });

  it.each([
    ['an unknown bot policy', { botPolicy: 'block' }, 'botPolicy'],
    ['an unknown consentMissing', { consentMissing: 'ask' }, 'consentMissing'],
    ['a rate of 0', { rateLimitPerSecond: 0 }, 'rateLimitPerSecond'],
    ['a rate over the bound', { rateLimitPerSecond: MAX_RATE_LIMIT + 1 }, 'rateLimitPerSecond'],
    ['a fractional burst', { rateLimitBurst: 2.5 }, 'rateLimitBurst'],
    ['too many consent categories', { consentRequired: Array.from({ length: MAX_FLAG_NAMES + 1 }, (_, i) => `c${i}`) }, 'consentRequired'],
  ])('rejects %s', (_name, patch, path) => {
    const r = flagsPatchSchema.safeParse(patch);
    expect(r.success).toBe(false);
    if (!r.success) expect(describeIssues(r.error)).toMatch(new RegExp(`^${path}: `));
  });
});
