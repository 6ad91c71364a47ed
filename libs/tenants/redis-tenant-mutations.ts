// The fleet tenant registry's write side: creating tenants, patching flags and changing keys in
// Redis, each a read-modify-write under the tenant's rev, retried on contention, and applied to
// this replica's cache at once (read-your-writes; other replicas learn through their sync).
import type { Redis } from 'ioredis';
import type { Logger } from '../core/logger.js';
import { applyFlagsPatch, DEFAULT_FLAGS, flagsPatchSchema, stampsAhead, tenantFlagsSchema } from './flags.js';
import { CREATE, decodeFlags, decodeTenant, KEYS_UPDATE, PATCH, runScript, stringTuple, type DecodedTenant, type RegistryKeys, type TenantFields } from './redis-tenant-records.js';
import { addApiKey, addWriteKey, apiKeyEntry, generateApiKey, generateWriteKey, removeKey, tenantKeysSchema, writeKeyEntry, type TenantKeys } from './tenant-keys.js';
import { TENANT_ID_RE, TenantStoreError, type TenantStore } from './tenant-store.js';

export type TenantMutations = Pick<TenantStore, 'createTenant' | 'patchFlags' | 'createWriteKey' | 'createApiKey' | 'revokeKey'>;

export interface TenantMutationDeps {
  redis: Redis;
  keys: RegistryKeys;
  clock: () => number;
  log: Logger;
  /** anonymizeSince is stamped this far after the flip (propagation-budget.ts). */
  propagationWindowMs: number;
  /** How long after its stamp a flip may land in Redis (writeSlackMs). */
  slackMs: number;
  /** Takes a record this replica just wrote into its cache. */
  applyLocal(tenantId: string, decoded: DecodedTenant): void;
  /** Runs a mutation unless the store is closing; close() waits for it. */
  track<T>(fn: () => Promise<T>): Promise<T>;
}

const MAX_PATCH_ATTEMPTS = 50;
const MAX_CREATE_ATTEMPTS = 5;

/** A random pause before retrying a write that lost a race, growing with the attempt up to 50 ms. */
export function contentionBackoffMs(attempt: number, random: () => number = Math.random): number {
  return Math.floor(random() * 5 * Math.min(attempt + 1, 10));
}

export function createRedisTenantMutations(deps: TenantMutationDeps): TenantMutations {
  const { redis, keys, clock, log, track } = deps;

  /** The tenant's stored fields, or undefined when Redis holds no such tenant. */
  async function readFields(tenantId: string): Promise<TenantFields | undefined> {
    const [flags, rev, createdAt, writeKeyHash, storedKeys] = await redis.hmget(keys.tenant(tenantId), 'flags', 'rev', 'createdAt', 'writeKeyHash', 'keys');
    if (rev === null || rev === undefined) return undefined;
    return { createdAt: createdAt ?? '', writeKeyHash: writeKeyHash ?? '', flags: flags ?? '', rev, keys: storedKeys ?? '' };
  }

  /**
   * Read-modify-write of a tenant's keys under its rev (like patchFlags): `change` returns the
   * new keys and the write-key index entry to add or drop, or undefined to write nothing.
   * Resolves undefined for an unknown tenant or when `change` declined.
   */
  function changeKeys<T>(
    tenantId: string,
    change: (current: TenantKeys) => { keys: TenantKeys; result: T; addIndex?: string; deleteIndex?: string } | undefined,
  ): Promise<T | undefined> {
    return track(async () => {
      for (let attempt = 0; attempt < MAX_PATCH_ATTEMPTS; attempt++) {
        const fields = await readFields(tenantId);
        if (fields === undefined) return undefined;
        const decoded = decodeTenant(tenantId, fields);
        if (!decoded.ok) throw new TenantStoreError(`tenant ${tenantId}'s record in redis is invalid (${decoded.problem}); fix the record by hand`);
        const changed = change(decoded.tenant.keys);
        if (changed === undefined) return undefined;
        const nextJson = JSON.stringify(tenantKeysSchema.parse(changed.keys));
        const reply = await runScript(
          redis,
          KEYS_UPDATE,
          [keys.tenant(tenantId), keys.tenants, keys.rev, keys.writeKey(changed.addIndex ?? 'none'), keys.writeKey(changed.deleteIndex ?? 'none')],
          [fields.rev, nextJson, tenantId, keys.channel, changed.addIndex ? '1' : '', changed.deleteIndex ? '1' : ''],
        );
        const [status = '', value = ''] = stringTuple(reply, 1);
        if (status === '0') return undefined;
        if (status === '-1' || status === '-3') {
          // -1: another mutation came first; -3: a drawn write key collides (192 bits: never)
          await delay(contentionBackoffMs(attempt));
          continue;
        }
        deps.applyLocal(tenantId, decodeTenant(tenantId, { ...fields, rev: value, keys: nextJson }));
        return changed.result;
      }
      throw new TenantStoreError(`could not change keys of tenant ${tenantId}: too much contention`);
    });
  }

  return {
    createTenant(tenantId) {
      if (!TENANT_ID_RE.test(tenantId)) {
        return Promise.reject(new TenantStoreError('tenant id must match ^[a-z0-9][a-z0-9_-]{0,62}$'));
      }
      return track(async () => {
        for (let attempt = 0; attempt < MAX_CREATE_ATTEMPTS; attempt++) {
          const writeKey = generateWriteKey();
          const now = clock();
          const first = writeKeyEntry(writeKey, now);
          const hash = first.hash;
          const initialKeys: TenantKeys = { writeKeys: [first], apiKeys: [] };
          const reply = await runScript(
            redis,
            CREATE,
            [keys.tenant(tenantId), keys.writeKey(hash), keys.tenants, keys.rev],
            [tenantId, String(now), hash, JSON.stringify(DEFAULT_FLAGS), keys.channel, JSON.stringify(initialKeys)],
          );
          const [status = '', createdAt = '', storedHash = '', flags = '', rev = '', storedKeys = ''] = stringTuple(reply, 6);
          if (status === '-1') continue; // a 192-bit collision: astronomically unlikely; draw again
          const decoded = decodeTenant(tenantId, { createdAt, writeKeyHash: storedHash, flags, rev, keys: storedKeys });
          deps.applyLocal(tenantId, decoded);
          if (!decoded.ok) throw new TenantStoreError(`tenant ${tenantId} exists but its record in redis is invalid: ${decoded.problem}`);
          if (status === '1') {
            log.info({ tenantId, rev: decoded.rev }, 'tenant created');
            return { tenant: decoded.tenant, created: true, writeKey };
          }
          return { tenant: decoded.tenant, created: false };
        }
        throw new TenantStoreError('could not draw an unused write key');
      });
    },

    patchFlags(tenantId, patch, now) {
      const parsed = flagsPatchSchema.safeParse(patch);
      if (!parsed.success) return Promise.reject(parsed.error);
      const parsedPatch = parsed.data;
      return track(async () => {
        let stampBase = now;
        for (let attempt = 0; attempt < MAX_PATCH_ATTEMPTS; attempt++) {
          // NOTE: read from Redis, not the cache: the cache may trail another replica's write,
          // and the rev check below makes the read-modify-write atomic.
          const fields = await readFields(tenantId);
          if (fields === undefined) return undefined;
          const current = decodeFlags(fields.flags);
          if (!current.ok) {
            log.error({ tenantId, problem: current.problem }, 'cannot patch flags: the stored flags are invalid');
            throw new TenantStoreError(`flags of tenant ${tenantId} in redis are invalid (${current.problem}); fix the record by hand`);
          }
          // NOTE: applyFlagsPatch stamps anonymizeSince with the time it is given: the forward
          // stamp, which must land in Redis within slackMs of stampBase (propagation-budget.ts).
          const next = tenantFlagsSchema.parse(applyFlagsPatch(current.flags, parsedPatch, stampBase + deps.propagationWindowMs));
          const stamped = stampsAhead(current.flags, next);
          const nextJson = JSON.stringify(next);
          const reply = await runScript(redis, PATCH, [keys.tenant(tenantId), keys.tenants, keys.rev], [fields.rev, nextJson, tenantId, keys.channel, stamped ? String(stampBase + deps.slackMs) : '']);
          const [status = '', value = ''] = stringTuple(reply, 1);
          if (status === '0') return undefined;
          if (status === '-1') {
            await delay(contentionBackoffMs(attempt));
            continue;
          }
          if (status === '-2') {
            // The write came too late for its stamp: restamp from Redis's own clock.
            stampBase = Math.max(stampBase, Number(value));
            log.warn({ tenantId }, 'flag write landed after its stamp allowed; restamping anonymizeSince / keyVersionSince');
            continue;
          }
          deps.applyLocal(tenantId, decodeTenant(tenantId, { ...fields, flags: nextJson, rev: value }));
          return next;
        }
        throw new TenantStoreError(`could not patch flags of tenant ${tenantId}: too much contention`);
      });
    },

    createWriteKey(tenantId) {
      return changeKeys(tenantId, (current) => {
        const writeKey = generateWriteKey();
        const entry = writeKeyEntry(writeKey, clock());
        return { keys: addWriteKey(current, entry), addIndex: entry.hash, result: { entry, writeKey } };
      });
    },

    createApiKey(tenantId, request) {
      return changeKeys(tenantId, (current) => {
        const key = generateApiKey();
        const entry = apiKeyEntry(key, request, clock());
        return { keys: addApiKey(current, entry), result: { entry, key } };
      });
    },

    async revokeKey(tenantId, keyId) {
      let known = false;
      const outcome = await changeKeys(tenantId, (current) => {
        known = true;
        const next = removeKey(current, keyId);
        if (next === undefined) return undefined;
        const removed = current.writeKeys.find((k) => k.keyId === keyId);
        return { keys: next, ...(removed ? { deleteIndex: removed.hash } : {}), result: 'revoked' as const };
      });
      return outcome ?? (known ? 'no_key' : 'no_tenant');
    },
  };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
