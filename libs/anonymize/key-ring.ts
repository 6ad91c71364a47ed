// Per-tenant, per-version pseudonym keys derived from the master key (DESIGN.md §3), and the
// pseudonym function itself: `v{version}:` + hex(HMAC-SHA256(tenant key, id)).
import { createHmac, createSecretKey, hkdfSync, type KeyObject } from 'node:crypto';
import { inspect } from 'node:util';
import { LRUCache } from 'lru-cache';
import { parseMasterKey } from './master-key.js';

/** HKDF salt for pseudonym keys; a different purpose must use a different salt. */
export const PSEUDONYM_KEY_SALT = 'tracklane/pseudonym';
export const PSEUDONYM_KEY_BYTES = 32;

/** HKDF `info` binding a derived key to one tenant and one key version. */
export function pseudonymKeyInfo(tenantId: string, version: number): string {
  // NOTE: unambiguous even for odd tenant ids: the suffix `:v<digits>` cannot be re-split.
  return `tenant:${tenantId}:v${version}`;
}

export interface KeyRing {
  /**
   * `v{version}:` + 64 lowercase hex chars of HMAC-SHA256(key(tenantId, version), id).
   * Deterministic: same tenant + version + id → same pseudonym; other tenant or version → unrelated.
   * Throws a RangeError for a version that is not a positive safe integer (a programming error:
   * TenantFlags guarantees keyVersion ≥ 1).
   */
  pseudonym(tenantId: string, version: number, id: string): string;
}

export interface KeyRingOptions {
  /**
   * Entries in the LRU of recent pseudonyms (0 disables it). Users emit many events, so
   * most lookups hit; see bench/anonymize-bench.ts for the measured gain.
   * NOTE: the cache maps clear ids to pseudonyms in process memory only; the events being
   * processed hold the same clear ids, so it exposes nothing the heap does not already hold.
   */
  cacheSize?: number;
}

export const DEFAULT_PSEUDONYM_CACHE_SIZE = 50_000;

/**
 * Builds a key ring over `masterKey` (≥ 32 bytes, see parseMasterKey). The master key is
 * copied into a KeyObject held in a closure; the caller may zero its buffer afterwards.
 * TRICKY: nothing reachable from the returned object holds key material in clear: it prints
 * as '[KeyRing]' through JSON.stringify, util.inspect, pino and template strings.
 *
 * Choice of encoding: hex (not base64url) — case-insensitive safe, no `-`/`_` that some tools
 * mangle, and the same form as ClickHouse's hex()/SHA256 helpers analysts already know.
 */
export function createKeyRing(masterKey: Buffer, opts: KeyRingOptions = {}): KeyRing {
  const master: KeyObject = createSecretKey(Buffer.from(masterKey));
  // NOTE: one derived key per (tenant, version) ever seen; bounded by tenants × rotations.
  const derived = new Map<string, KeyObject>();
  const cacheSize = opts.cacheSize ?? DEFAULT_PSEUDONYM_CACHE_SIZE;
  const recent = cacheSize > 0 ? new LRUCache<string, string>({ max: cacheSize }) : null;

  function tenantKey(tenantId: string, version: number): KeyObject {
    const cacheKey = `${version}:${tenantId}`;
    let key = derived.get(cacheKey);
    if (key === undefined) {
      const bytes = Buffer.from(
        hkdfSync('sha256', master, PSEUDONYM_KEY_SALT, pseudonymKeyInfo(tenantId, version), PSEUDONYM_KEY_BYTES),
      );
      key = createSecretKey(bytes);
      bytes.fill(0);
      derived.set(cacheKey, key);
    }
    return key;
  }

  function compute(tenantId: string, version: number, id: string): string {
    return `v${version}:${createHmac('sha256', tenantKey(tenantId, version)).update(id, 'utf8').digest('hex')}`;
  }

  function pseudonym(tenantId: string, version: number, id: string): string {
    if (!Number.isSafeInteger(version) || version < 1) {
      throw new RangeError(`key version must be a positive integer (got ${String(version)})`);
    }
    if (recent === null) return compute(tenantId, version, id);
    // TRICKY: length-prefixed so no (tenant, id) pair can collide with another, whatever
    // characters a tenant id holds — a collision would hand out another tenant's pseudonym.
    const cacheKey = `${version}:${tenantId.length}:${tenantId}${id}`;
    let p = recent.get(cacheKey);
    if (p === undefined) {
      p = compute(tenantId, version, id);
      recent.set(cacheKey, p);
    }
    return p;
  }

  const ring = {
    pseudonym,
    toJSON: (): string => '[KeyRing]',
    toString: (): string => '[KeyRing]',
    [inspect.custom]: (): string => '[KeyRing]',
  };
  return Object.freeze(ring);
}

/**
 * The key ring of a TRACKLANE_MASTER_KEY value: the one way a service turns the secret into
 * keys. A bad value throws a MasterKeyError naming the variable, never quoting it; the decoded
 * bytes are zeroed once the ring holds its own copy.
 */
export function masterKeyRing(raw: string | undefined, opts: KeyRingOptions = {}): KeyRing {
  const key = parseMasterKey(raw);
  try {
    return createKeyRing(key, opts);
  } finally {
    key.fill(0);
  }
}
