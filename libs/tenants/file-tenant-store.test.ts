import { mkdir, mkdtemp, readdir, readFile, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_FLAGS } from './flags.js';
import { openFileTenantStore } from './file-tenant-store.js';
import { keyHash, legacyWriteKeyId } from './tenant-keys.js';
import { TenantStoreError, type TenantStore } from './tenant-store.js';

let dir: string;
let path: string;
const opened: TenantStore[] = [];
async function open(): Promise<TenantStore> {
  const s = await openFileTenantStore({ path, now: () => 1000 });
  opened.push(s);
  return s;
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tracklane-tenants-'));
  path = join(dir, 'data', 'tenants.json');
});
afterEach(async () => {
  await Promise.all(opened.splice(0).map((s) => s.close()));
  await rm(dir, { recursive: true, force: true });
});

describe('file tenant store', () => {
  it('starts empty without a file, creating the data dir', async () => {
    const s = await open();
    expect(s.list()).toEqual([]);
    expect((await stat(join(dir, 'data'))).isDirectory()).toBe(true);
  });

  it('persists tenants and patched flags across reopen', async () => {
    const a = await open();
    const { writeKey } = await a.createTenant('acme');
    await a.createTenant('globex');
    const flags = await a.patchFlags('acme', { anonymizeIdentity: true, piiTraits: ['email'] }, 1777);
    expect(flags?.anonymizeSince).toBe(1777);
    await a.close();

    const b = await open();
    expect(b.list().map((t) => t.tenantId)).toEqual(['acme', 'globex']);
    expect(b.tenantByWriteKey(writeKey ?? '')?.tenantId).toBe('acme');
    expect(b.get('acme')).toEqual({ ...DEFAULT_FLAGS, anonymizeIdentity: true, anonymizeSince: 1777, piiTraits: ['email'] });
    const again = await b.createTenant('acme');
    expect(again).toMatchObject({ created: false });
    expect(again.writeKey).toBeUndefined();
  });

  it('writes atomically: valid JSON, 0600, no temp files left behind', async () => {
    const s = await open();
    await Promise.all([s.createTenant('a1'), s.createTenant('a2'), s.createTenant('a3')]);
    const json = JSON.parse(await readFile(path, 'utf8')) as { version: number; tenants: unknown[] };
    expect(json.version).toBe(2);
    expect(json.tenants).toHaveLength(3);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(await readdir(join(dir, 'data'))).toEqual(['tenants.json']);
  });

  it('concurrent patches both land, in memory and on disk', async () => {
    const s = await open();
    await s.createTenant('acme');
    await Promise.all([
      s.patchFlags('acme', { ipPolicy: 'mask' }, 1001),
      s.patchFlags('acme', { anonymizeIdentity: true }, 1002),
      s.patchFlags('acme', { piiTraits: ['email'] }, 1003),
      s.patchFlags('acme', { resolveIp: false }, 1004),
    ]);
    const expected = { ...DEFAULT_FLAGS, ipPolicy: 'mask', anonymizeIdentity: true, anonymizeSince: 1002, piiTraits: ['email'], resolveIp: false };
    expect(s.get('acme')).toEqual(expected);
    await s.close();
    expect((await open()).get('acme')).toEqual(expected);
  });

  const corrupt: Array<[string, string, RegExp]> = [
    ['not JSON', '{"version":1,"tenants":[{"writeKey":"tl_SECRETSECRETSECRETSECRET"', /not valid JSON/],
    ['wrong version', '{"version":3,"tenants":[]}', /version/],
    ['bad tenant id', JSON.stringify({ version: 1, tenants: [{ tenantId: 'Bad', writeKey: 'tl_' + 'a'.repeat(32), createdAt: 1, flags: DEFAULT_FLAGS }] }), /tenants\.0\.tenantId/],
    ['missing flag field', JSON.stringify({ version: 1, tenants: [{ tenantId: 'acme', writeKey: 'tl_' + 'a'.repeat(32), createdAt: 1, flags: { ...DEFAULT_FLAGS, anonymizeIdentity: undefined } }] }), /tenants\.0\.flags\.anonymizeIdentity/],
    ['duplicate id', JSON.stringify({ version: 1, tenants: [
      { tenantId: 'acme', writeKey: 'tl_' + 'a'.repeat(32), createdAt: 1, flags: DEFAULT_FLAGS },
      { tenantId: 'acme', writeKey: 'tl_' + 'b'.repeat(32), createdAt: 1, flags: DEFAULT_FLAGS },
    ] }), /duplicate tenant id/],
    ['empty file', '', /not valid JSON/],
  ];
  it.each(corrupt)('refuses a corrupt file (%s) with an error naming it', async (_n, text, message) => {
    await mkdir(join(dir, 'data'), { recursive: true });
    await writeFile(path, text);
    const err = await openFileTenantStore({ path }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TenantStoreError);
    expect((err as Error).message).toContain(path);
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).not.toContain('SECRET');
    expect(await readFile(path, 'utf8')).toBe(text); // never reset
  });

  it('upgrades a version-1 file: its clear write key keeps working as the first key entry, and leaves the disk', async () => {
    const clear = `tl_${'k'.repeat(32)}`;
    await mkdir(join(dir, 'data'), { recursive: true });
    await writeFile(path, JSON.stringify({ version: 1, tenants: [{ tenantId: 'acme', writeKey: clear, createdAt: 5, flags: DEFAULT_FLAGS }] }));
    const s = await open();
    const tenant = s.tenantByWriteKey(clear);
    expect(tenant?.tenantId).toBe('acme');
    expect(tenant?.keys.writeKeys).toEqual([{ keyId: legacyWriteKeyId(keyHash(clear)), hash: keyHash(clear), createdAt: 5 }]);
    const text = await readFile(path, 'utf8');
    expect(JSON.parse(text)).toMatchObject({ version: 2 });
    expect(text).not.toContain(clear);
    await s.close();
    expect((await open()).tenantByWriteKey(clear)?.keys.writeKeys[0]?.keyId).toBe(tenant?.keys.writeKeys[0]?.keyId);
  });

  it('a failed write rejects the mutation and leaves memory as it was', async () => {
    const s = await open();
    await mkdir(path); // rename onto a directory fails, whoever we run as
    await expect(s.createTenant('acme')).rejects.toThrow();
    expect(s.list()).toEqual([]);
    expect(await readdir(join(dir, 'data'))).toEqual(['tenants.json']); // temp file cleaned up
    await rmdir(path);
    expect((await s.createTenant('acme')).created).toBe(true);
  });
});
