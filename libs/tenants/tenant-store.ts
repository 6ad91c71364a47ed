// Tenants (id, write key, flags) as seen by the collector, the admin API and the runners, plus
// the in-memory implementation the file-backed store builds on (and unit tests use directly).
import { z } from 'zod';
import {
  addApiKey,
  addWriteKey,
  freezeKeys,
  generateApiKey,
  generateWriteKey,
  apiKeyEntry,
  keyHash,
  removeKey,
  tenantKeysSchema,
  WRITE_KEY_RE,
  type ApiKeyEntry,
  type ApiKeyRequest,
  type TenantKeys,
  type WriteKeyEntry,
  writeKeyEntry,
} from './tenant-keys.js';
import { applyFlagsPatch, DEFAULT_FLAGS, flagsPatchSchema, tenantFlagsSchema, type FlagSource, type FlagsPatch, type TenantFlags } from './flags.js';

/** Lowercase, url- and ClickHouse-safe, ≤ 63 chars, starts with a letter or digit. */
export const TENANT_ID_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/;
export const tenantIdSchema = z.string().regex(TENANT_ID_RE, 'tenant id must match ^[a-z0-9][a-z0-9_-]{0,62}$');

export { generateWriteKey, WRITE_KEY_PREFIX, WRITE_KEY_RE } from './tenant-keys.js';
export const writeKeySchema = z.string().regex(WRITE_KEY_RE, 'write key must look like tl_<base64url>');

export const tenantSchema = z.object({
  tenantId: tenantIdSchema,
  createdAt: z.number().int(),
  flags: tenantFlagsSchema,
  keys: tenantKeysSchema,
});

/** Tenants returned by a store are deep-frozen snapshots: change them through the store. */
export interface Tenant {
  tenantId: string;
  createdAt: number;
  flags: TenantFlags;
  /** hashes and metadata only: a key's secret is returned once, by the call that creates it */
  keys: TenantKeys;
}

/** An API key found by its secret, with the tenant it belongs to. */
export interface ApiKeyMatch {
  tenant: Tenant;
  key: ApiKeyEntry;
}

export interface TenantStore extends FlagSource {
  /** Flags of a known tenant; undefined when unknown (stages then fail closed). */
  get(tenantId: string): TenantFlags | undefined;
  /**
   * Idempotent: an existing tenant is returned as is, `created: false`, without a key. A new
   * tenant gets its first write key, whose secret is in `writeKey` (and nowhere else, ever).
   * Rejects with a TenantStoreError for an id that fails {@link tenantIdSchema}.
   */
  createTenant(tenantId: string): Promise<{ tenant: Tenant; created: boolean; writeKey?: string }>;
  getTenant(tenantId: string): Tenant | undefined;
  /**
   * Sync hot-path lookup for the collector, by the key's hash.
   * NOTE: a Map lookup of a hash compares no secret byte by byte: no timing side channel.
   */
  tenantByWriteKey(writeKey: string): Tenant | undefined;
  /** Sync lookup of a tenant API key by its secret; undefined when unknown or revoked. */
  apiKey(secret: string): ApiKeyMatch | undefined;
  /** Whether key lookups are current (a revocation elsewhere is known). Stores without it always are. */
  credentialsAvailable?(): boolean;
  /** A new write key (secret returned once); undefined for an unknown tenant. Rejects with KeyLimitError. */
  createWriteKey(tenantId: string): Promise<{ entry: WriteKeyEntry; writeKey: string } | undefined>;
  /** A new API key (secret returned once); undefined for an unknown tenant. Rejects with KeyLimitError. */
  createApiKey(tenantId: string, request: ApiKeyRequest): Promise<{ entry: ApiKeyEntry; key: string } | undefined>;
  /** Revokes a write or API key: 'revoked', 'no_key' (not one of the tenant's), or 'no_tenant'. */
  revokeKey(tenantId: string, keyId: string): Promise<'revoked' | 'no_key' | 'no_tenant'>;
  /**
   * Applies `patch` at server time `now` through applyFlagsPatch (which stamps
   * `anonymizeSince`); resolves to the new flags, or undefined when the tenant is unknown.
   * Rejects with a ZodError for a patch that fails flagsPatchSchema or yields invalid flags.
   */
  patchFlags(tenantId: string, patch: FlagsPatch, now: number): Promise<TenantFlags | undefined>;
  list(): Tenant[];
  /** Waits for pending mutations; later mutations reject, reads keep serving. Idempotent. */
  close(): Promise<void>;
}

export class TenantStoreError extends Error {
  override readonly name = 'TenantStoreError';
}

export interface TenantStoreCoreOptions {
  /** Clock for `createdAt`; defaults to Date.now. */
  now?: () => number;
  /**
   * Called with the full next state before it becomes visible; when it rejects the mutation
   * rejects and the in-memory state is left as it was, so memory never runs ahead of disk.
   */
  persist?: (tenants: readonly Tenant[]) => Promise<void>;
  /** Called once by close() after pending mutations settled. */
  onClose?: () => Promise<void>;
}

/** Builds a store over `initial` tenants (already validated). Shared by the memory and file stores. */
export function createTenantStoreCore(initial: readonly Tenant[], opts: TenantStoreCoreOptions = {}): TenantStore {
  const clock = opts.now ?? Date.now;
  const persist = opts.persist ?? (async () => {});
  const byId = new Map<string, Tenant>();
  /** sha256 of a write key → its tenant */
  const byWriteKey = new Map<string, Tenant>();
  /** sha256 of an API key → its tenant and entry */
  const byApiKey = new Map<string, ApiKeyMatch>();
  for (const t of initial) publish(freezeTenant(t));

  // NOTE: every mutation runs after the previous one settled, so two concurrent PATCHes each
  // start from the other's result and neither is lost; a failed one does not break the chain.
  let tail: Promise<unknown> = Promise.resolve();
  let closed: Promise<void> | null = null;
  function serialize<T>(fn: () => Promise<T>): Promise<T> {
    if (closed !== null) return Promise.reject(new TenantStoreError('tenant store is closed'));
    const run = tail.then(fn);
    tail = run.catch(() => undefined);
    return run;
  }

  /** Persists the state with `tenant` inserted or replaced, then publishes it. */
  async function commit(tenant: Tenant): Promise<void> {
    const previous = byId.get(tenant.tenantId);
    const next = Array.from(byId.values(), (t) => (t.tenantId === tenant.tenantId ? tenant : t));
    if (previous === undefined) next.push(tenant);
    await persist(next);
    publish(tenant);
  }

  /** Makes `tenant` the visible state of its id (every index). */
  function publish(tenant: Tenant): void {
    const previous = byId.get(tenant.tenantId);
    if (previous !== undefined) {
      for (const k of previous.keys.writeKeys) byWriteKey.delete(k.hash);
      for (const k of previous.keys.apiKeys) byApiKey.delete(k.hash);
    }
    byId.set(tenant.tenantId, tenant);
    for (const k of tenant.keys.writeKeys) byWriteKey.set(k.hash, tenant);
    for (const k of tenant.keys.apiKeys) byApiKey.set(k.hash, { tenant, key: k });
  }

  /** Replaces a tenant's keys (persisted first); undefined for an unknown tenant. */
  function changeKeys<T>(tenantId: string, change: (keys: TenantKeys) => { keys: TenantKeys; result: T } | undefined): Promise<T | undefined> {
    return serialize(async () => {
      const current = byId.get(tenantId);
      if (current === undefined) return undefined;
      const changed = change(current.keys);
      if (changed === undefined) return undefined;
      await commit(freezeTenant({ ...current, keys: changed.keys }));
      return changed.result;
    });
  }

  function unusedSecret(generate: () => string): string {
    let secret = generate();
    while (byWriteKey.has(keyHash(secret)) || byApiKey.has(keyHash(secret))) secret = generate();
    return secret;
  }

  return {
    get: (tenantId) => byId.get(tenantId)?.flags,
    // NOTE: the in-process store is the source of truth: a tenant it does not hold is absent now
    absentSince: (tenantId) => (byId.has(tenantId) ? undefined : Date.now()),
    getTenant: (tenantId) => byId.get(tenantId),
    tenantByWriteKey: (writeKey) => (WRITE_KEY_RE.test(writeKey) ? byWriteKey.get(keyHash(writeKey)) : undefined),
    apiKey: (secret) => byApiKey.get(keyHash(secret)),
    list: () => Array.from(byId.values()),

    createTenant(tenantId) {
      if (!TENANT_ID_RE.test(tenantId)) {
        return Promise.reject(new TenantStoreError('tenant id must match ^[a-z0-9][a-z0-9_-]{0,62}$'));
      }
      return serialize(async () => {
        const existing = byId.get(tenantId);
        if (existing !== undefined) return { tenant: existing, created: false };
        const writeKey = unusedSecret(generateWriteKey);
        const createdAt = clock();
        const keys: TenantKeys = { writeKeys: [writeKeyEntry(writeKey, createdAt)], apiKeys: [] };
        const tenant = freezeTenant({ tenantId, createdAt, flags: { ...DEFAULT_FLAGS }, keys });
        await commit(tenant);
        return { tenant, created: true, writeKey };
      });
    },

    createWriteKey(tenantId) {
      return changeKeys(tenantId, (keys) => {
        const writeKey = unusedSecret(generateWriteKey);
        const entry = writeKeyEntry(writeKey, clock());
        return { keys: addWriteKey(keys, entry), result: { entry, writeKey } };
      });
    },

    createApiKey(tenantId, request) {
      return changeKeys(tenantId, (keys) => {
        const key = unusedSecret(generateApiKey);
        const entry = apiKeyEntry(key, request, clock());
        return { keys: addApiKey(keys, entry), result: { entry, key } };
      });
    },

    async revokeKey(tenantId, keyId) {
      if (byId.get(tenantId) === undefined) return 'no_tenant';
      const outcome = await changeKeys(tenantId, (keys) => {
        const next = removeKey(keys, keyId);
        return next === undefined ? undefined : { keys: next, result: 'revoked' as const };
      });
      return outcome ?? (byId.get(tenantId) === undefined ? 'no_tenant' : 'no_key');
    },

    patchFlags(tenantId, patch, now) {
      let parsed: FlagsPatch;
      try {
        parsed = flagsPatchSchema.parse(patch);
      } catch (err) {
        return Promise.reject(err);
      }
      return serialize(async () => {
        const current = byId.get(tenantId);
        if (current === undefined) return undefined;
        // TRICKY: forward-only anonymization needs every event received at or after
        // `anonymizeSince` to see the new flags. So the stamp is taken when the flags become
        // visible (never before `now`: a queued patch may run later than it was asked), and
        // they become visible in the same synchronous step, before the (slow, fsync'd)
        // persist; a failed persist rolls them back. Publishing early is safe in the
        // fail-closed direction and at worst briefly early in the other.
        // TRICKY: strictly after the clock's current millisecond: an event stamped in this very
        // millisecond may already have read the old flags (the pipeline can take a whole request
        // within one ms), and `received_at >= anonymizeSince` must never meet a clear id.
        const stamp = Math.max(now, clock() + 1);
        // NOTE: re-validated so a bad combination can never reach the file and make it unloadable.
        const flags = tenantFlagsSchema.parse(applyFlagsPatch(current.flags, parsed, stamp));
        const tenant = freezeTenant({ ...current, flags });
        publish(tenant);
        try {
          await persist(Array.from(byId.values()));
        } catch (err) {
          if (byId.get(tenantId) === tenant) publish(current);
          throw err;
        }
        return tenant.flags;
      });
    },

    close() {
      closed ??= tail.then(() => opts.onClose?.());
      return closed;
    },
  };
}

/** An unpersisted store for tests and tools; same semantics as the file store. */
export function createMemoryTenantStore(opts: { now?: () => number; tenants?: readonly Tenant[] } = {}): TenantStore {
  return createTenantStoreCore(opts.tenants ?? [], { now: opts.now });
}

export function freezeTenant(t: Tenant): Tenant {
  const flags: TenantFlags = Object.freeze({
    ...t.flags,
    piiTraits: Object.freeze([...t.flags.piiTraits]) as string[],
    scrubQueryParams: Object.freeze([...t.flags.scrubQueryParams]) as string[],
    shreddedKeyVersions: Object.freeze([...t.flags.shreddedKeyVersions]) as number[],
  });
  return Object.freeze({ tenantId: t.tenantId, createdAt: t.createdAt, flags, keys: freezeKeys(t.keys) });
}
