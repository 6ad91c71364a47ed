import { describe, expect, it } from 'vitest';
import { DEFAULT_FLAGS, type TenantFlags } from './flags.js';
import { createTenantCache, type TenantRecord } from './tenant-cache.js';
import { keyHash } from './tenant-keys.js';
import { freezeTenant } from './tenant-store.js';

const hash = (secret: string): string => keyHash(secret);

/** A valid record of `tenantId` at `rev` holding the given write-key and API-key secrets. */
function valid(tenantId: string, rev: number, opts: { writeKeys?: string[]; apiKeys?: string[]; flags?: Partial<TenantFlags> } = {}): TenantRecord {
  const writeKeys = (opts.writeKeys ?? []).map((s, i) => ({ keyId: `wk_${String(i).padStart(16, '0')}`, hash: hash(s), createdAt: 1 }));
  const apiKeys = (opts.apiKeys ?? []).map((s, i) => ({ keyId: `ak_${String(i).padStart(16, '0')}`, name: 'n', scopes: ['read' as const], hash: hash(s), createdAt: 1 }));
  const tenant = freezeTenant({ tenantId, createdAt: 1, flags: { ...DEFAULT_FLAGS, ...opts.flags }, keys: { writeKeys, apiKeys } });
  return { tenantId, decoded: { ok: true, rev, tenant } };
}

function invalid(tenantId: string, rev: number): TenantRecord {
  return { tenantId, decoded: { ok: false, rev, problem: 'flags: not valid JSON' } };
}

describe('tenant cache: apply', () => {
  it('takes a newer rev and ignores the same or an older one', () => {
    const c = createTenantCache();
    expect(c.apply(valid('acme', 5, { flags: { keyVersion: 5 } }))).toBe(true);
    expect(c.apply(valid('acme', 5, { flags: { keyVersion: 99 } }))).toBe(false);
    expect(c.apply(valid('acme', 4, { flags: { keyVersion: 4 } }))).toBe(false);
    expect(c.tenant('acme')?.flags.keyVersion).toBe(5);
    expect(c.apply(valid('acme', 6, { flags: { keyVersion: 6 } }))).toBe(true);
    expect(c.tenant('acme')?.flags.keyVersion).toBe(6);
    expect(c.size).toBe(1);
  });

  it('indexes write and API keys, and a new rev replaces the old keys', () => {
    const c = createTenantCache();
    c.apply(valid('acme', 1, { writeKeys: ['w1', 'w2'], apiKeys: ['a1'] }));
    expect(c.byWriteKeyHash(hash('w1'))?.tenantId).toBe('acme');
    expect(c.byWriteKeyHash(hash('w2'))?.tenantId).toBe('acme');
    expect(c.byApiKeyHash(hash('a1'))).toMatchObject({ tenant: { tenantId: 'acme' }, key: { hash: hash('a1') } });

    c.apply(valid('acme', 2, { writeKeys: ['w2'], apiKeys: [] }));
    expect(c.byWriteKeyHash(hash('w1'))).toBeUndefined();
    expect(c.byWriteKeyHash(hash('w2'))?.tenantId).toBe('acme');
    expect(c.byApiKeyHash(hash('a1'))).toBeUndefined();
  });

  it('an invalid record fails its tenant closed: no flags, no keys, not listed; still counted as cached', () => {
    const c = createTenantCache();
    c.apply(valid('acme', 1, { writeKeys: ['w1'], apiKeys: ['a1'] }));
    c.apply(valid('globex', 1, { writeKeys: ['w2'] }));
    expect(c.apply(invalid('acme', 2))).toBe(true);
    expect(c.tenant('acme')).toBeUndefined();
    expect(c.has('acme')).toBe(true);
    expect(c.byWriteKeyHash(hash('w1'))).toBeUndefined();
    expect(c.byApiKeyHash(hash('a1'))).toBeUndefined();
    expect(c.list().map((t) => t.tenantId)).toEqual(['globex']);
    // an older valid record cannot reopen it; a newer one does
    expect(c.apply(valid('acme', 1, { writeKeys: ['w1'] }))).toBe(false);
    expect(c.apply(valid('acme', 3, { writeKeys: ['w1'] }))).toBe(true);
    expect(c.byWriteKeyHash(hash('w1'))?.tenantId).toBe('acme');
  });

  it("drops an index entry only while it still names the tenant being replaced", () => {
    const c = createTenantCache();
    c.apply(valid('acme', 1, { writeKeys: ['shared'] }));
    c.apply(valid('globex', 2, { writeKeys: ['shared'] }));
    c.apply(valid('acme', 3, { writeKeys: [] }));
    expect(c.byWriteKeyHash(hash('shared'))?.tenantId).toBe('globex');
  });
});

describe('tenant cache: replaceAll', () => {
  it('replaces everything by the snapshot and reports the records it took', () => {
    const c = createTenantCache();
    c.apply(valid('gone', 3, { writeKeys: ['wg'] }));
    c.apply(valid('acme', 4, { flags: { keyVersion: 1 } }));
    const taken = c.replaceAll([valid('acme', 5, { flags: { keyVersion: 2 } }), invalid('broken', 6)], 10);
    expect(taken.map((r) => r.tenantId)).toEqual(['acme', 'broken']);
    expect(c.has('gone')).toBe(false);
    expect(c.byWriteKeyHash(hash('wg'))).toBeUndefined();
    expect(c.tenant('acme')?.flags.keyVersion).toBe(2);
    expect(c.has('broken')).toBe(true);
    expect(c.tenant('broken')).toBeUndefined();
  });

  it('a duplicate id in the snapshot is taken once', () => {
    const c = createTenantCache();
    expect(c.replaceAll([valid('acme', 5), valid('acme', 5)], 5).map((r) => r.tenantId)).toEqual(['acme']);
  });

  it.each([
    { name: 'a cached rev above the loaded one is kept', cached: 8, loaded: 5 as number | undefined, counter: 10, keeps: true },
    { name: 'a cached rev at the loaded one is replaced', cached: 5, loaded: 5 as number | undefined, counter: 10, keeps: false },
    { name: 'a tenant the snapshot predates (rev above its counter) is kept', cached: 11, loaded: undefined, counter: 10, keeps: true },
    { name: 'a tenant missing from the snapshot at or below its counter is dropped', cached: 10, loaded: undefined, counter: 10, keeps: false },
  ])('$name', ({ cached, loaded, counter, keeps }) => {
    const c = createTenantCache();
    c.apply(valid('acme', cached, { flags: { keyVersion: 7 }, writeKeys: ['w'] }));
    c.replaceAll(loaded === undefined ? [] : [valid('acme', loaded, { flags: { keyVersion: 1 } })], counter);
    if (keeps) {
      expect(c.tenant('acme')?.flags.keyVersion).toBe(7);
      expect(c.byWriteKeyHash(hash('w'))?.tenantId).toBe('acme');
    } else {
      expect(c.tenant('acme')?.flags.keyVersion).toBe(loaded === undefined ? undefined : 1);
      expect(c.byWriteKeyHash(hash('w'))).toBeUndefined();
    }
  });
});
