// A replica's in-process copy of the tenant registry, indexed by id, write-key hash and API-key
// hash, that only ever moves forward per tenant (by `rev`). No I/O: tenant-sync-machine.ts feeds it.
import type { DecodedTenant } from './redis-tenant-records.js';
import type { ApiKeyMatch, Tenant } from './tenant-store.js';

/** A cached tenant; `tenant` is absent when its record is invalid (its flags fail closed). */
export interface CacheEntry {
  rev: number;
  tenant: Tenant | undefined;
}

export interface TenantRecord {
  tenantId: string;
  decoded: DecodedTenant;
}

export interface TenantCacheView {
  readonly size: number;
  has(tenantId: string): boolean;
  /** The tenant when cached with a valid record. */
  tenant(tenantId: string): Tenant | undefined;
  /** By sha256 of a write key (valid records only). */
  byWriteKeyHash(hash: string): Tenant | undefined;
  /** By sha256 of an API key (valid records only). */
  byApiKeyHash(hash: string): ApiKeyMatch | undefined;
  /** Every tenant with a valid record. */
  list(): Tenant[];
}

export interface TenantCache extends TenantCacheView {
  /**
   * Takes `decoded` unless the cache already holds this rev or a later one of the tenant.
   * Returns whether it was taken.
   */
  apply(record: TenantRecord): boolean;
  /**
   * Replaces the whole cache by a snapshot complete up to `counter`; returns the snapshot's
   * records that were taken.
   * NOTE: an entry already cached with a rev above the snapshot's (a local mutation that landed
   * after the snapshot was read, possibly of a tenant the snapshot predates) is kept.
   */
  replaceAll(records: readonly TenantRecord[], counter: number): TenantRecord[];
}

export function createTenantCache(): TenantCache {
  let byId = new Map<string, CacheEntry>();
  let byWriteKey = new Map<string, Tenant>();
  let byApiKey = new Map<string, ApiKeyMatch>();

  function setEntry(tenantId: string, entry: CacheEntry): void {
    const current = byId.get(tenantId)?.tenant;
    if (current !== undefined) {
      // NOTE: an index entry is dropped only while it still names this tenant.
      for (const k of current.keys.writeKeys) if (byWriteKey.get(k.hash)?.tenantId === tenantId) byWriteKey.delete(k.hash);
      for (const k of current.keys.apiKeys) if (byApiKey.get(k.hash)?.tenant.tenantId === tenantId) byApiKey.delete(k.hash);
    }
    byId.set(tenantId, entry);
    const next = entry.tenant;
    if (next === undefined) return;
    for (const k of next.keys.writeKeys) byWriteKey.set(k.hash, next);
    for (const k of next.keys.apiKeys) byApiKey.set(k.hash, { tenant: next, key: k });
  }

  function apply({ tenantId, decoded }: TenantRecord): boolean {
    const current = byId.get(tenantId);
    if (current !== undefined && current.rev >= decoded.rev) return false;
    setEntry(tenantId, { rev: decoded.rev, tenant: decoded.ok ? decoded.tenant : undefined });
    return true;
  }

  return {
    get size() {
      return byId.size;
    },
    has: (tenantId) => byId.has(tenantId),
    tenant: (tenantId) => byId.get(tenantId)?.tenant,
    byWriteKeyHash: (hash) => byWriteKey.get(hash),
    byApiKeyHash: (hash) => byApiKey.get(hash),
    list() {
      const out: Tenant[] = [];
      for (const e of byId.values()) if (e.tenant !== undefined) out.push(e.tenant);
      return out;
    },
    apply,
    replaceAll(records, counter) {
      const previous = byId;
      byId = new Map();
      byWriteKey = new Map();
      byApiKey = new Map();
      const taken = records.filter((r) => apply(r));
      for (const [id, e] of previous) {
        const loaded = byId.get(id);
        if (loaded === undefined ? e.rev > counter : e.rev > loaded.rev) setEntry(id, e);
      }
      return taken;
    },
  };
}
