import { describe, expect, it } from 'vitest';
import { UNKNOWN_TENANT_GRACE_MS, unknownTenantVerdict, type FlagSource } from './flags.js';

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
