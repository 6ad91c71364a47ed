// The embedded-mode tenant store: tenants and flags in memory, persisted as one JSON file under
// the data dir, every mutation written atomically (temp file + fsync + rename + dir fsync).
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { z } from 'zod';
import { keyHash, legacyWriteKeyId } from './tenant-keys.js';
import { createTenantStoreCore, tenantIdSchema, tenantSchema, TenantStoreError, writeKeySchema, type Tenant, type TenantStore } from './tenant-store.js';

/** 2: keys as hashes. 1: one write key per tenant, in clear — still read, rewritten as 2. */
export const TENANT_FILE_VERSION = 2;

export const tenantFileSchema = z.object({
  version: z.literal(TENANT_FILE_VERSION),
  tenants: z.array(tenantSchema),
});
export type TenantFile = z.infer<typeof tenantFileSchema>;

const tenantFileV1Schema = z.object({
  version: z.literal(1),
  tenants: z.array(z.object({ tenantId: tenantIdSchema, writeKey: writeKeySchema, createdAt: z.number().int(), flags: z.unknown() })),
});

/** A version-1 file's tenants: its one clear write key becomes the first write-key entry (hash only). */
function upgradeV1(file: z.infer<typeof tenantFileV1Schema>): unknown {
  return {
    version: TENANT_FILE_VERSION,
    tenants: file.tenants.map((t) => {
      const hash = keyHash(t.writeKey);
      return { tenantId: t.tenantId, createdAt: t.createdAt, flags: t.flags, keys: { writeKeys: [{ keyId: legacyWriteKeyId(hash), hash, createdAt: t.createdAt }], apiKeys: [] } };
    }),
  };
}

export interface FileTenantStoreOptions {
  /** e.g. `<dataDir>/tenants.json`; its directory is created when missing. */
  path: string;
  /** Clock for `createdAt`; defaults to Date.now. */
  now?: () => number;
}

/**
 * Opens (or starts) the store at `opts.path`. A missing file is an empty store (the file is
 * written at the first mutation); an unreadable or invalid file rejects with a TenantStoreError
 * naming the file — never a silent reset, which would mint new write keys and turn
 * anonymization off.
 * NOTE: one process owns the file (embedded mode); there is no cross-process locking.
 * NOTE: the file holds key hashes only (created 0600 all the same); a version-1 file, which
 * held write keys in clear, is rewritten as version 2 at open.
 */
export async function openFileTenantStore(opts: FileTenantStoreOptions): Promise<TenantStore> {
  const { path } = opts;
  await mkdir(dirname(path), { recursive: true });
  const { tenants, upgraded } = await readTenantFile(path);
  if (upgraded) await writeFileAtomic(path, serializeTenantFile(tenants));
  return createTenantStoreCore(tenants, {
    now: opts.now,
    persist: (next) => writeFileAtomic(path, serializeTenantFile(next)),
  });
}

/** Reads and validates the file; [] when it does not exist. */
export async function loadTenantFile(path: string): Promise<Tenant[]> {
  return (await readTenantFile(path)).tenants;
}

async function readTenantFile(path: string): Promise<{ tenants: Tenant[]; upgraded: boolean }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (isErrnoException(err) && err.code === 'ENOENT') return { tenants: [], upgraded: false };
    throw new TenantStoreError(`cannot read tenant store ${path}: ${isErrnoException(err) ? err.code ?? err.message : String(err)}`, { cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    // TRICKY: V8's JSON.parse message quotes the text around the error, which here may be a
    // write key; say where it is broken, not what it holds.
    throw new TenantStoreError(`tenant store ${path} is corrupt: not valid JSON (fix or restore it; it is not reset automatically)`);
  }
  const v1 = tenantFileV1Schema.safeParse(json);
  const upgraded = v1.success;
  const parsed = tenantFileSchema.safeParse(v1.success ? upgradeV1(v1.data) : json);
  if (!parsed.success) {
    // NOTE: issue paths and messages only; zod messages describe expectations, not values.
    const issues = parsed.error.issues
      .slice(0, 5)
      .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
      .join('; ');
    throw new TenantStoreError(`tenant store ${path} is corrupt: ${issues}`);
  }
  const ids = new Set<string>();
  const keys = new Set<string>();
  for (const [i, t] of parsed.data.tenants.entries()) {
    if (ids.has(t.tenantId)) throw new TenantStoreError(`tenant store ${path} is corrupt: tenants.${i}: duplicate tenant id`);
    ids.add(t.tenantId);
    for (const k of [...t.keys.writeKeys, ...t.keys.apiKeys]) {
      if (keys.has(k.hash) || keys.has(k.keyId)) throw new TenantStoreError(`tenant store ${path} is corrupt: tenants.${i}: duplicate key`);
      keys.add(k.hash);
      keys.add(k.keyId);
    }
  }
  return { tenants: parsed.data.tenants, upgraded };
}

export function serializeTenantFile(tenants: readonly Tenant[]): string {
  const file: TenantFile = { version: TENANT_FILE_VERSION, tenants: [...tenants] };
  return `${JSON.stringify(file, null, 2)}\n`;
}

/**
 * Replaces `path` with `data` so that a crash leaves either the old or the new file, never a
 * torn one: write a sibling temp file, fsync it, rename over, fsync the directory (the rename
 * itself is only durable once the directory entry is).
 */
export async function writeFileAtomic(path: string, data: string): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(data, 'utf8');
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await fsyncDir(dirname(path));
}

async function fsyncDir(dir: string): Promise<void> {
  let fh;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch (err) {
    // NOTE: some platforms/filesystems refuse fsync on a directory; the rename still happened.
    if (!(isErrnoException(err) && (err.code === 'EISDIR' || err.code === 'EINVAL' || err.code === 'EPERM'))) throw err;
  } finally {
    await fh?.close();
  }
}

function isErrnoException(err: unknown): err is NodeJS.ErrnoException {
  return err instanceof Error && 'code' in err;
}

// Convenience for callers that pick a store by config: same interface, no persistence.
export { createMemoryTenantStore } from './tenant-store.js';
