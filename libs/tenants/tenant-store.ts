// Tenants (id, write key, flags) as seen by the collector, the admin API and the runners, plus
// the in-memory implementation the file-backed store builds on (and unit tests use directly).
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { applyFlagsPatch, DEFAULT_FLAGS, flagsPatchSchema, tenantFlagsSchema, type FlagSource, type FlagsPatch, type TenantFlags } from './flags.js';

/** Lowercase, url- and ClickHouse-safe, ≤ 63 chars, starts with a letter or digit. */
export const TENANT_ID_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/;
export const tenantIdSchema = z.string().regex(TENANT_ID_RE, 'tenant id must match ^[a-z0-9][a-z0-9_-]{0,62}$');

export const WRITE_KEY_PREFIX = 'tl_';
/** Generated keys are `tl_` + 32 base64url chars (24 random bytes); any base64url body ≥ 16 chars loads. */
export const WRITE_KEY_RE = /^tl_[A-Za-z0-9_-]{16,128}$/;
export const writeKeySchema = z.string().regex(WRITE_KEY_RE, 'write key must look like tl_<base64url>');

export const tenantSchema = z.object({
  tenantId: tenantIdSchema,
  writeKey: writeKeySchema,
  createdAt: z.number().int(),
  flags: tenantFlagsSchema,
});

/** Tenants returned by a store are deep-frozen snapshots: change them through the store. */
export interface Tenant {
  tenantId: string;
  writeKey: string;
  createdAt: number;
  flags: TenantFlags;
}

export interface TenantStore extends FlagSource {
  /** Flags of a known tenant; undefined when unknown (stages then fail closed). */
  get(tenantId: string): TenantFlags | undefined;
  /** Idempotent: an existing tenant is returned as is (same write key), `created: false`.
   *  Rejects with a TenantStoreError for an id that fails {@link tenantIdSchema}. */
  createTenant(tenantId: string): Promise<{ tenant: Tenant; created: boolean }>;
  getTenant(tenantId: string): Tenant | undefined;
  /**
   * Sync hot-path lookup for the collector.
   * NOTE: a Map lookup hashes the key rather than comparing it byte by byte against secrets,
   * so there is no useful timing side channel to close with a constant-time compare.
   */
  tenantByWriteKey(writeKey: string): Tenant | undefined;
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

/** `tl_` + 24 random bytes as base64url (192 bits). */
export function generateWriteKey(): string {
  return WRITE_KEY_PREFIX + randomBytes(24).toString('base64url');
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
  const byWriteKey = new Map<string, Tenant>();
  for (const t of initial) {
    const frozen = freezeTenant(t);
    byId.set(frozen.tenantId, frozen);
    byWriteKey.set(frozen.writeKey, frozen);
  }

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

  /** Makes `tenant` the visible state of its id (both indexes). */
  function publish(tenant: Tenant): void {
    const previous = byId.get(tenant.tenantId);
    byId.set(tenant.tenantId, tenant);
    if (previous !== undefined && previous.writeKey !== tenant.writeKey) byWriteKey.delete(previous.writeKey);
    byWriteKey.set(tenant.writeKey, tenant);
  }

  return {
    get: (tenantId) => byId.get(tenantId)?.flags,
    getTenant: (tenantId) => byId.get(tenantId),
    tenantByWriteKey: (writeKey) => byWriteKey.get(writeKey),
    list: () => Array.from(byId.values()),

    createTenant(tenantId) {
      if (!TENANT_ID_RE.test(tenantId)) {
        return Promise.reject(new TenantStoreError('tenant id must match ^[a-z0-9][a-z0-9_-]{0,62}$'));
      }
      return serialize(async () => {
        const existing = byId.get(tenantId);
        if (existing !== undefined) return { tenant: existing, created: false };
        let writeKey = generateWriteKey();
        while (byWriteKey.has(writeKey)) writeKey = generateWriteKey();
        const tenant = freezeTenant({ tenantId, writeKey, createdAt: clock(), flags: { ...DEFAULT_FLAGS } });
        await commit(tenant);
        return { tenant, created: true };
      });
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
        const stamp = Math.max(now, clock());
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

function freezeTenant(t: Tenant): Tenant {
  const flags: TenantFlags = Object.freeze({
    ...t.flags,
    piiTraits: Object.freeze([...t.flags.piiTraits]) as string[],
    scrubQueryParams: Object.freeze([...t.flags.scrubQueryParams]) as string[],
  });
  return Object.freeze({ tenantId: t.tenantId, writeKey: t.writeKey, createdAt: t.createdAt, flags });
}
