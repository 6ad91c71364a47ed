// Where wrapped pseudonym keys are kept (libs/privacy/stored-keys.ts WrappedKeyStore): a file
// in the data dir (embedded), a Redis hash per tenant (the fleet), in memory (tests). The
// ClickHouse copy is libs/clickhouse/tables/pseudonym-keys.ts. Every copy holds keys wrapped
// (key-wrap.ts) only: without the master key none of them opens.
import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { writeFileAtomic } from '../tenants/file-tenant-store.js';
import type { WrappedKeyStore } from './stored-keys.js';

export function createMemoryKeyStore(place = 'memory'): WrappedKeyStore & { size(): number } {
  const keys = new Map<string, Buffer>();
  const id = (t: string, v: number) => `${v}:${t}`;
  return {
    place,
    get: async (t, v) => keys.get(id(t, v)),
    async putIfAbsent(t, v, wrapped) {
      const kept = keys.get(id(t, v)) ?? Buffer.from(wrapped);
      keys.set(id(t, v), kept);
      return kept;
    },
    delete: async (t, v) => (keys.delete(id(t, v)) ? 1 : 0),
    size: () => keys.size,
  };
}

const keyFileSchema = z.object({
  version: z.literal(1),
  /** tenant id → key version → wrapped key, base64 */
  keys: z.record(z.string(), z.record(z.string().regex(/^[1-9][0-9]*$/), z.string())),
});

/**
 * The embedded key store: one JSON file (0600) rewritten atomically on every change. One
 * process owns it. NOTE: a rewrite replaces the file; the blocks of the old one are the
 * filesystem's to reuse — named in the shred receipt (key-keeper.ts), like backups.
 */
export async function openFileKeyStore(path: string): Promise<WrappedKeyStore> {
  await mkdir(dirname(path), { recursive: true });
  let file: z.infer<typeof keyFileSchema> = { version: 1, keys: {} };
  try {
    file = keyFileSchema.parse(JSON.parse(await readFile(path, 'utf8')));
  } catch (err) {
    if (!(err instanceof Error && 'code' in err && err.code === 'ENOENT')) {
      throw new Error(`the pseudonym key file ${path} is unreadable or invalid; it is never reset (that would lose every key): restore it from a backup`, { cause: err });
    }
  }
  // NOTE: changes run one after the other, each persisted before the next starts
  let tail: Promise<unknown> = Promise.resolve();
  const serialize = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = tail.then(fn);
    tail = run.catch(() => undefined);
    return run;
  };
  const persist = (next: typeof file) => writeFileAtomic(path, `${JSON.stringify(next, null, 2)}\n`);

  return {
    place: 'data dir',
    get: async (t, v) => {
      const b64 = file.keys[t]?.[String(v)];
      return b64 === undefined ? undefined : Buffer.from(b64, 'base64');
    },
    putIfAbsent: (t, v, wrapped) =>
      serialize(async () => {
        const existing = file.keys[t]?.[String(v)];
        if (existing !== undefined) return Buffer.from(existing, 'base64');
        const next = { version: 1 as const, keys: { ...file.keys, [t]: { ...file.keys[t], [String(v)]: wrapped.toString('base64') } } };
        await persist(next);
        file = next;
        return Buffer.from(wrapped);
      }),
    delete: (t, v) =>
      serialize(async () => {
        const tenantKeys = file.keys[t];
        if (tenantKeys?.[String(v)] === undefined) return 0;
        const rest = Object.fromEntries(Object.entries(tenantKeys).filter(([version]) => version !== String(v)));
        const keys = Object.fromEntries(Object.entries(file.keys).filter(([tenant]) => tenant !== t));
        const next = { version: 1 as const, keys: Object.keys(rest).length > 0 ? { ...keys, [t]: rest } : keys };
        await persist(next);
        file = next;
        return 1;
      }),
  };
}

/** The Redis hash of a tenant's wrapped keys (field `v<version>`, base64). */
export const redisKeyHash = (prefix: string, tenantId: string): string => `${prefix}pseudonym-keys:${tenantId}`;

/**
 * The fleet's key store: a hash per tenant. The compactor writes it (HSETNX: of two compactors
 * creating the same version, the first wins and both keep that one); anonymizers only read it.
 */
export function redisKeyStore(redis: Redis, prefix: string): WrappedKeyStore {
  const field = (v: number) => `v${v}`;
  return {
    place: 'redis',
    async get(t, v) {
      const b64 = await redis.hget(redisKeyHash(prefix, t), field(v));
      return b64 === null ? undefined : Buffer.from(b64, 'base64');
    },
    async putIfAbsent(t, v, wrapped) {
      await redis.hsetnx(redisKeyHash(prefix, t), field(v), wrapped.toString('base64'));
      const kept = await redis.hget(redisKeyHash(prefix, t), field(v));
      if (kept === null) throw new Error(`pseudonym key v${v} of tenant ${t} vanished from redis right after it was written`);
      return Buffer.from(kept, 'base64');
    },
    delete: (t, v) => redis.hdel(redisKeyHash(prefix, t), field(v)),
  };
}
