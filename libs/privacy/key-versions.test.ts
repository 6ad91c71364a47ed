import { describe, expect, it } from 'vitest';
import { DEFAULT_FLAGS, type TenantFlags } from '../tenants/flags.js';
import { isRefusal, keyVersions, rotationPatch, shredPatch, storedVersionsNeeded, unshreddedVersions, versionFor } from './key-versions.js';

const flags = (over: Partial<TenantFlags>): TenantFlags => ({ ...DEFAULT_FLAGS, ...over });

describe('versionFor', () => {
  it.each([
    { why: 'no rotation pending', f: flags({ keyVersion: 3 }), at: 10, want: 3 },
    { why: 'received before the rotation stamp', f: flags({ keyVersion: 3, keyVersionSince: 100 }), at: 99, want: 2 },
    { why: 'received at the stamp', f: flags({ keyVersion: 3, keyVersionSince: 100 }), at: 100, want: 3 },
    { why: 'the previous version is shredded: the current one, never none', f: flags({ keyVersion: 3, keyVersionSince: 100, shreddedKeyVersions: [2] }), at: 50, want: 3 },
    { why: 'version 1 has no previous', f: flags({ keyVersion: 1, keyVersionSince: 100 }), at: 50, want: 1 },
  ])('$why', ({ f, at, want }) => {
    expect(versionFor(f, at)).toBe(want);
  });
});

describe('version lists', () => {
  it('states and origins: derived below storedKeysFrom, previous during the window, shredded', () => {
    const f = flags({ keyVersion: 4, keyVersionSince: 1_000, storedKeysFrom: 2, shreddedKeyVersions: [2] });
    expect(keyVersions(f, 500)).toEqual([
      { version: 1, origin: 'derived', state: 'retired' },
      { version: 2, origin: 'stored', state: 'shredded' },
      { version: 3, origin: 'stored', state: 'previous' },
      { version: 4, origin: 'stored', state: 'current' },
    ]);
    expect(keyVersions(f, 1_000)[2]?.state).toBe('retired');
    expect(unshreddedVersions(f)).toEqual([1, 3, 4]);
    expect(storedVersionsNeeded(f)).toEqual([3, 4]);
  });

  it('a tenant from before the key store needs no stored key', () => {
    expect(storedVersionsNeeded(flags({ keyVersion: 3, storedKeysFrom: null }))).toEqual([]);
  });
});

describe('rotation', () => {
  it('the next version is a stored one, and stays so for a tenant from before the key store', () => {
    expect(rotationPatch(flags({ keyVersion: 1 }))).toEqual({ keyVersion: 2, storedKeysFrom: 1 });
    expect(rotationPatch(flags({ keyVersion: 3, storedKeysFrom: null }))).toEqual({ keyVersion: 4, storedKeysFrom: 4 });
  });

  it('refuses past the version bound', () => {
    const r = rotationPatch(flags({ keyVersion: 1000 }));
    expect(isRefusal(r) && r.status).toBe(409);
  });
});

describe('shredding', () => {
  const f = flags({ keyVersion: 4, keyVersionSince: 1_000, storedKeysFrom: 2, shreddedKeyVersions: [2] });
  it.each([
    { why: 'an unknown version', version: 5, error: 'not_found' },
    { why: 'version 0', version: 0, error: 'not_found' },
    { why: 'a derived version (it can be recomputed)', version: 1, error: 'derived_version' },
    { why: 'the current version', version: 4, error: 'current_version' },
    { why: 'the previous version during the rotation window', version: 3, error: 'rotation_in_progress' },
  ])('refuses $why', ({ version, error }) => {
    const r = shredPatch(f, version, 500);
    expect(isRefusal(r) ? r.error : r).toBe(error);
  });

  it('a shredded version again is `already`, a retired one is added', () => {
    expect(shredPatch(f, 2, 500)).toBe('already');
    expect(shredPatch(f, 3, 1_000)).toEqual({ shreddedKeyVersions: [2, 3] });
  });
});
