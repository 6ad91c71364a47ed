import { describe, expect, it } from 'vitest';
import { ZodError } from 'zod';
import { DEFAULT_FLAGS } from './flags.js';
import { keyHash } from './tenant-keys.js';
import { createMemoryTenantStore, generateWriteKey, TENANT_ID_RE, tenantIdSchema, TenantStoreError, WRITE_KEY_RE } from './tenant-store.js';

describe('tenant ids', () => {
  const table: Array<[string, boolean]> = [
    ['acme', true],
    ['0day', true],
    ['a', true],
    ['a'.repeat(63), true],
    ['a-b_c9', true],
    ['a'.repeat(64), false],
    ['', false],
    ['Acme', false],
    ['-acme', false],
    ['_acme', false],
    ['ac me', false],
    ['acme:1', false],
    ['acme\n', false],
    ['ac.me', false],
  ];
  it.each(table)('%j valid=%s', (id, valid) => {
    expect(TENANT_ID_RE.test(id)).toBe(valid);
    expect(tenantIdSchema.safeParse(id).success).toBe(valid);
  });
});

describe('generateWriteKey', () => {
  it('is tl_ + 24 random bytes base64url', () => {
    const k = generateWriteKey();
    expect(k).toMatch(/^tl_[A-Za-z0-9_-]{32}$/);
    expect(WRITE_KEY_RE.test(k)).toBe(true);
    expect(Buffer.from(k.slice(3), 'base64url')).toHaveLength(24);
    expect(generateWriteKey()).not.toBe(k);
  });
});

describe('memory tenant store', () => {
  it('creates idempotently and looks tenants up by id and write key', async () => {
    const store = createMemoryTenantStore({ now: () => 1234 });
    const a = await store.createTenant('acme');
    expect(a.created).toBe(true);
    expect(a.writeKey).toMatch(WRITE_KEY_RE);
    expect(a.tenant).toEqual({
      tenantId: 'acme',
      createdAt: 1234,
      flags: DEFAULT_FLAGS,
      keys: { writeKeys: [{ keyId: expect.stringMatching(/^wk_[0-9a-f]{16}$/), hash: keyHash(a.writeKey ?? ''), createdAt: 1234 }], apiKeys: [] },
    });
    // NOTE: the secret is nowhere in the tenant, only its hash
    expect(JSON.stringify(a.tenant)).not.toContain(a.writeKey);
    const again = await store.createTenant('acme');
    expect(again).toEqual({ tenant: a.tenant, created: false });
    expect(store.getTenant('acme')).toBe(a.tenant);
    expect(store.tenantByWriteKey(a.writeKey ?? '')).toBe(a.tenant);
    expect(store.tenantByWriteKey('tl_nope')).toBeUndefined();
    expect(store.get('acme')).toEqual(DEFAULT_FLAGS);
    expect(store.get('nope')).toBeUndefined();
    expect(store.list().map((t) => t.tenantId)).toEqual(['acme']);
  });

  it('concurrent creates of one id yield one tenant', async () => {
    const store = createMemoryTenantStore();
    const rs = await Promise.all([store.createTenant('acme'), store.createTenant('acme'), store.createTenant('acme')]);
    expect(rs.filter((r) => r.created)).toHaveLength(1);
    expect(rs.filter((r) => r.writeKey !== undefined)).toHaveLength(1);
    expect(new Set(rs.map((r) => r.tenant.keys.writeKeys[0]?.keyId)).size).toBe(1);
  });

  it('rejects invalid tenant ids', async () => {
    const store = createMemoryTenantStore();
    await expect(store.createTenant('Bad Id')).rejects.toBeInstanceOf(TenantStoreError);
    expect(store.list()).toEqual([]);
  });

  const patches: Array<[string, Parameters<ReturnType<typeof createMemoryTenantStore>['patchFlags']>[1], Partial<typeof DEFAULT_FLAGS>]> = [
    ['switch on stamps anonymizeSince', { anonymizeIdentity: true }, { anonymizeIdentity: true, anonymizeSince: 5000 }],
    ['ip policy only', { ipPolicy: 'mask' }, { ipPolicy: 'mask', anonymizeSince: null }],
    ['key rotation stamps keyVersionSince', { keyVersion: 2, piiTraits: ['email'] }, { keyVersion: 2, keyVersionSince: 5000, piiTraits: ['email'] }],
    ['a shred adds to the shredded versions', { keyVersion: 3, shreddedKeyVersions: [2] }, { keyVersion: 3, keyVersionSince: 5000, shreddedKeyVersions: [2] }],
    ['stored versions never become derived again', { storedKeysFrom: null }, { storedKeysFrom: 1 }],
  ];
  it('a shred computed from an older read does not undo another', async () => {
    const store = createMemoryTenantStore({ now: () => 0 });
    await store.createTenant('acme');
    await store.patchFlags('acme', { keyVersion: 4 }, 1);
    await store.patchFlags('acme', { shreddedKeyVersions: [1] }, 2);
    // NOTE: this patch was computed before the first shred landed: it names version 2 only
    const flags = await store.patchFlags('acme', { shreddedKeyVersions: [2] }, 3);
    expect(flags?.shreddedKeyVersions).toEqual([1, 2]);
  });

  it.each(patches)('patch: %s', async (_n, patch, expected) => {
    const store = createMemoryTenantStore({ now: () => 0 });
    await store.createTenant('acme');
    const flags = await store.patchFlags('acme', patch, 5000);
    expect(flags).toEqual({ ...DEFAULT_FLAGS, ...expected });
    expect(store.get('acme')).toEqual(flags);
  });

  it('switching off clears anonymizeSince; re-enabling restarts the window', async () => {
    const store = createMemoryTenantStore({ now: () => 0 });
    await store.createTenant('acme');
    await store.patchFlags('acme', { anonymizeIdentity: true }, 10);
    expect((await store.patchFlags('acme', { anonymizeIdentity: true }, 20))?.anonymizeSince).toBe(10);
    expect((await store.patchFlags('acme', { anonymizeIdentity: false }, 30))?.anonymizeSince).toBeNull();
    expect((await store.patchFlags('acme', { anonymizeIdentity: true }, 40))?.anonymizeSince).toBe(40);
  });

  it('stamps anonymizeSince after the store clock\'s current millisecond when the patch runs', async () => {
    let clock = 100;
    const store = createMemoryTenantStore({ now: () => clock });
    await store.createTenant('acme');
    clock = 500; // the patch was asked at 200 but runs when the clock says 500
    // NOTE: 501, not 500: an event received at 500 may have read the flags before the patch
    expect((await store.patchFlags('acme', { anonymizeIdentity: true }, 200))?.anonymizeSince).toBe(501);
  });

  it('never lets an event of the flip\'s millisecond that read the old flags count as received after it', async () => {
    const store = createMemoryTenantStore({ now: () => 700 });
    await store.createTenant('acme');
    const receivedAt = 700; // stamped and its flags read (off) in the millisecond of the flip…
    expect(store.get('acme')?.anonymizeIdentity).toBe(false);
    const flags = await store.patchFlags('acme', { anonymizeIdentity: true }, 700);
    // …so it is outside the forward window: passing it in clear is what the stamp promises
    expect(receivedAt).toBeLessThan(flags?.anonymizeSince ?? 0);
  });

  it('makes new flags visible before the persist resolves, and rolls back if it fails', async () => {
    const { createTenantStoreCore } = await import('./tenant-store.js');
    let release: (ok: boolean) => void = () => undefined;
    let gate = false;
    const store = createTenantStoreCore([], {
      now: () => 0,
      persist: () =>
        gate ? new Promise<void>((resolve, reject) => (release = (ok) => (ok ? resolve() : reject(new Error('disk full'))))) : Promise.resolve(),
    });
    await store.createTenant('acme');
    gate = true;
    const pending = store.patchFlags('acme', { anonymizeIdentity: true }, 10);
    await new Promise((r) => setImmediate(r));
    expect(store.get('acme')?.anonymizeIdentity).toBe(true);
    release(false);
    await expect(pending).rejects.toThrow('disk full');
    expect(store.get('acme')?.anonymizeIdentity).toBe(false);
  });

  it('unknown tenant → undefined; invalid patch → ZodError, state unchanged', async () => {
    const store = createMemoryTenantStore();
    expect(await store.patchFlags('nope', { resolveIp: false }, 1)).toBeUndefined();
    await store.createTenant('acme');
    // @ts-expect-error: anonymizeSince is server-stamped, never patched
    await expect(store.patchFlags('acme', { anonymizeSince: 1 }, 1)).rejects.toBeInstanceOf(ZodError);
    await expect(store.patchFlags('acme', { keyVersion: 0 }, 1)).rejects.toBeInstanceOf(ZodError);
    expect(store.get('acme')).toEqual(DEFAULT_FLAGS);
  });

  it('returns frozen snapshots that callers cannot change', async () => {
    const store = createMemoryTenantStore();
    const { tenant } = await store.createTenant('acme');
    await store.patchFlags('acme', { piiTraits: ['email'] }, 1);
    const flags = store.get('acme');
    expect(Object.isFrozen(tenant)).toBe(true);
    expect(Object.isFrozen(flags)).toBe(true);
    expect(Object.isFrozen(flags?.piiTraits)).toBe(true);
    expect(tenant.flags.piiTraits).toEqual([]); // old snapshot untouched by the patch
  });

  it('close waits for pending mutations, then rejects new ones', async () => {
    const store = createMemoryTenantStore();
    const pending = store.createTenant('acme');
    await store.close();
    await expect(pending).resolves.toMatchObject({ created: true });
    await store.close();
    await expect(store.createTenant('globex')).rejects.toThrow(/closed/);
    expect(store.getTenant('acme')).toBeDefined();
  });
});
