import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../core/logger.js';
import type { ShredReceipt, ShredReceiptStore } from '../clickhouse/tables/pseudonym-keys.js';
import { createKeyRing, KeyUnavailableError } from '../anonymize/key-ring.js';
import { createMemoryTenantStore } from '../tenants/tenant-store.js';
import { createKeyKeeper } from './key-keeper.js';
import { createMemoryKeyStore } from './key-stores.js';
import { keyWrapper } from './key-wrap.js';
import { createStoredKeys, storedKeySource, type WrappedKeyStore } from './stored-keys.js';

const logger = createLogger({ level: 'silent' });

function memoryReceipts(): ShredReceiptStore & { all: ShredReceipt[] } {
  const all: ShredReceipt[] = [];
  return {
    all,
    write: async (r) => void all.push(r),
    forTenant: async (t) => all.filter((r) => r.tenant_id === t),
    verified: async () => new Set(all.filter((r) => r.status === 'verified').map((r) => `${r.version}:${r.tenant_id}`)),
  };
}

async function setup(opts: { copy?: WrappedKeyStore; master?: Buffer } = {}) {
  const master = opts.master ?? randomBytes(32);
  const tenants = createMemoryTenantStore();
  await tenants.createTenant('acme');
  const primary = createMemoryKeyStore('redis');
  const copy = opts.copy ?? createMemoryKeyStore('clickhouse');
  const keys = createStoredKeys();
  const receipts = memoryReceipts();
  const keeper = createKeyKeeper({ wrapper: keyWrapper(master), primary, copy, keys, tenants: () => tenants.list(), receipts, outsideCopies: ['backups'], logger });
  const ring = createKeyRing(master, { keys: storedKeySource(tenants, keys), cacheSize: 100 });
  return { master, tenants, primary, copy, keys, receipts, keeper, ring };
}

describe('key keeper', () => {
  it('makes the key of a new tenant version once, in both copies; the ring uses it', async () => {
    const s = await setup();
    expect(() => s.ring.pseudonym('acme', 1, 'u@x.io')).toThrow(KeyUnavailableError);
    await s.keeper.sync();
    await s.keeper.sync();
    expect(s.keeper.holds('acme', 1)).toBe(true);
    const wrapped = await s.primary.get('acme', 1);
    expect(wrapped).toBeDefined();
    expect(await s.copy.get('acme', 1)).toEqual(wrapped);
    const p = s.ring.pseudonym('acme', 1, 'u@x.io');
    expect(p).toMatch(/^v1:[0-9a-f]{64}$/);
    // NOTE: a random key: not the master-derived pseudonym of the same id
    expect(p).not.toBe(createKeyRing(s.master).pseudonym('acme', 1, 'u@x.io'));
  });

  it('restores a key the store lost from its second copy instead of making a new one', async () => {
    const s = await setup();
    await s.keeper.sync();
    const before = s.ring.pseudonym('acme', 1, 'u@x.io');
    await s.primary.delete('acme', 1);
    // a new process: nothing in memory
    const keys = createStoredKeys();
    const keeper = createKeyKeeper({ wrapper: keyWrapper(s.master), primary: s.primary, copy: s.copy, keys, tenants: () => s.tenants.list(), outsideCopies: [], logger });
    await keeper.sync();
    expect(await s.primary.get('acme', 1)).toEqual(await s.copy.get('acme', 1));
    expect(createKeyRing(s.master, { keys: storedKeySource(s.tenants, keys) }).pseudonym('acme', 1, 'u@x.io')).toBe(before);
  });

  it('makes no key while the second copy cannot be read (it may hold one)', async () => {
    const copy: WrappedKeyStore = { place: 'clickhouse', get: () => Promise.reject(new Error('down')), putIfAbsent: () => Promise.reject(new Error('down')), delete: () => Promise.reject(new Error('down')) };
    const s = await setup({ copy });
    await s.keeper.sync();
    expect(s.keeper.holds('acme', 1)).toBe(false);
    expect(await s.primary.get('acme', 1)).toBeUndefined();
  });

  it('a shred destroys every copy, forgets the key, and writes a verified receipt; the ring refuses the version', async () => {
    const s = await setup();
    await s.keeper.sync();
    await s.tenants.patchFlags('acme', { keyVersion: 2 }, Date.now() - 10);
    await s.keeper.sync();
    const v2 = s.ring.pseudonym('acme', 2, 'u@x.io');
    s.ring.pseudonym('acme', 1, 'u@x.io');
    await s.tenants.patchFlags('acme', { shreddedKeyVersions: [1] }, Date.now());
    // NOTE: refused before the keeper ran: the flags alone stop every pseudonym of the version
    expect(() => s.ring.pseudonym('acme', 1, 'u@x.io')).toThrow(/shredded/);
    await s.keeper.sync();
    expect(await s.primary.get('acme', 1)).toBeUndefined();
    expect(await s.copy.get('acme', 1)).toBeUndefined();
    expect(s.keys.get('acme', 1)).toBeUndefined();
    expect(s.receipts.all).toEqual([
      expect.objectContaining({ tenant_id: 'acme', version: 1, status: 'verified', destroyed: { redis: 1, clickhouse: 1 }, remaining: [], outside_copies: ['backups'] }),
    ]);
    expect(s.ring.pseudonym('acme', 2, 'u@x.io')).toBe(v2);
    await s.keeper.sync();
    expect(s.receipts.all).toHaveLength(1);
  });

  it('a copy that cannot be destroyed gives a failed receipt naming it, and the next pass tries again', async () => {
    const inner = createMemoryKeyStore('clickhouse');
    let refuse = true;
    const copy: WrappedKeyStore = { ...inner, place: 'clickhouse', delete: (t, v) => (refuse ? Promise.reject(new Error('readonly')) : inner.delete(t, v)) };
    const s = await setup({ copy });
    await s.tenants.patchFlags('acme', { keyVersion: 2 }, Date.now() - 10);
    await s.keeper.sync();
    await s.tenants.patchFlags('acme', { shreddedKeyVersions: [1] }, Date.now());
    await s.keeper.sync();
    expect(s.receipts.all.at(-1)).toMatchObject({ status: 'failed', remaining: ['clickhouse'] });
    expect(s.receipts.all.at(-1)?.reason).toMatch(/clickhouse/);
    refuse = false;
    await s.keeper.sync();
    expect(s.receipts.all.at(-1)).toMatchObject({ status: 'verified', remaining: [] });
    expect(await inner.get('acme', 1)).toBeUndefined();
  });

  it('a key wrapped under another master key does not open: no pseudonym from it', async () => {
    const s = await setup();
    await s.keeper.sync();
    const other = createStoredKeys();
    const keeper = createKeyKeeper({ wrapper: keyWrapper(randomBytes(32)), primary: s.primary, copy: s.copy, keys: other, tenants: () => s.tenants.list(), outsideCopies: [], logger });
    await keeper.sync();
    expect(keeper.holds('acme', 1)).toBe(false);
    expect(other.get('acme', 1)).toBeUndefined();
  });
});

describe('key keeper: a lost key', () => {
  it('makes no new key for a version that has history but no copy left; says so; a rotation gets going again', async () => {
    const master = randomBytes(32);
    const tenants = createMemoryTenantStore();
    await tenants.createTenant('acme');
    const lines: string[] = [];
    const log = createLogger({ level: 'error', destination: { write: (l: string) => void lines.push(l) } });
    const primary = createMemoryKeyStore('data dir');
    const keeper = createKeyKeeper({ wrapper: keyWrapper(master), primary, copy: createMemoryKeyStore('clickhouse'), keys: createStoredKeys(), tenants: () => tenants.list(), usedBefore: async (_t, v) => v === 1, outsideCopies: [], logger: log });
    await keeper.sync();
    expect(keeper.holds('acme', 1)).toBe(false);
    expect(await primary.get('acme', 1)).toBeUndefined();
    expect(lines.join('\n')).toMatch(/v1 of tenant acme is in no copy although history is stored under it/);
    await tenants.patchFlags('acme', { keyVersion: 2 }, Date.now());
    await keeper.sync();
    expect(keeper.holds('acme', 2)).toBe(true);
  });
});
