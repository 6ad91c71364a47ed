// The pseudonym function, `v{version}:` + hex(HMAC-SHA256(tenant key, id)), over per-tenant,
// per-version keys (DESIGN.md §3): derived from the master key (versions from before the key
// store), or random stored ones a KeySource hands over (libs/privacy/stored-keys.ts).
import { createHmac, createSecretKey, hkdfSync, type KeyObject } from 'node:crypto';
import { inspect } from 'node:util';
import { LRUCache } from 'lru-cache';
import { keyId } from '../privacy/key-versions.js';
import { parseMasterKey } from './master-key.js';

/** HKDF salt for pseudonym keys; a different purpose must use a different salt. */
export const PSEUDONYM_KEY_SALT = 'tracklane/pseudonym';
export const PSEUDONYM_KEY_BYTES = 32;

/**
 * What key a (tenant, version) has: 'derived' (computed from the master key), a stored key, or
 * none — 'shredded' (destroyed for good) or 'missing' (not loaded, or the tenant unknown: retry).
 */
export type ResolvedKey = KeyObject | 'derived' | 'shredded' | 'missing';

export interface KeySource {
  resolve(tenantId: string, version: number): ResolvedKey;
}

/** Every version derived: a ring without a key store (unit tests, benches, tools). */
export const DERIVED_KEYS: KeySource = { resolve: () => 'derived' };

/** No pseudonym of this (tenant, version) can be made: shredded, or its key is not loaded yet. */
export class KeyUnavailableError extends Error {
  override readonly name = 'KeyUnavailableError';
  constructor(
    readonly tenantId: string,
    readonly version: number,
    readonly reason: 'shredded' | 'missing',
  ) {
    super(reason === 'shredded' ? `pseudonym key version ${version} of tenant ${tenantId} is shredded` : `pseudonym key version ${version} of tenant ${tenantId} is not available (yet)`);
  }
}

export interface KeyRing {
  /**
   * `v{version}:` + 64 lowercase hex chars of HMAC-SHA256(key(tenantId, version), id).
   * Deterministic: same tenant + version + id → same pseudonym; other tenant or version → unrelated.
   * Throws a RangeError for a version that is not a positive safe integer (a programming error:
   * TenantFlags guarantees keyVersion ≥ 1), a KeyUnavailableError when the key source has no key.
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
  /** where stored versions' keys come from; default: every version derived */
  keys?: KeySource;
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
  const source = opts.keys ?? DERIVED_KEYS;
  /** shredded (tenant, version) pairs seen: the cache is emptied once for each */
  const shredSeen = new Set<string>();

  function tenantKey(tenantId: string, version: number): KeyObject {
    const cacheKey = `${version}:${tenantId}`;
    let key = derived.get(cacheKey);
    if (key === undefined) {
      const bytes = Buffer.from(
        // NOTE: the HKDF info is the key id (key-versions.ts), binding a derived key to one tenant and version
        hkdfSync('sha256', master, PSEUDONYM_KEY_SALT, keyId(tenantId, version), PSEUDONYM_KEY_BYTES),
      );
      key = createSecretKey(bytes);
      bytes.fill(0);
      derived.set(cacheKey, key);
    }
    return key;
  }

  function compute(key: KeyObject, version: number, id: string): string {
    return `v${version}:${createHmac('sha256', key).update(id, 'utf8').digest('hex')}`;
  }

  function pseudonym(tenantId: string, version: number, id: string): string {
    if (!Number.isSafeInteger(version) || version < 1) {
      throw new RangeError(`key version must be a positive integer (got ${String(version)})`);
    }
    // NOTE: asked on every call, before the cache: a version shredded since is refused at once
    const resolved = source.resolve(tenantId, version);
    if (resolved === 'shredded' || resolved === 'missing') {
      if (resolved === 'shredded' && recent !== null && !shredSeen.has(`${version}:${tenantId}`)) {
        // TRICKY: the cache maps clear ids to pseudonyms of that version: none may outlive the shred
        shredSeen.add(`${version}:${tenantId}`);
        recent.clear();
      }
      throw new KeyUnavailableError(tenantId, version, resolved);
    }
    const key = resolved === 'derived' ? tenantKey(tenantId, version) : resolved;
    if (recent === null) return compute(key, version, id);
    // TRICKY: length-prefixed so no (tenant, id) pair can collide with another, whatever
    // characters a tenant id holds — a collision would hand out another tenant's pseudonym.
    const cacheKey = `${version}:${tenantId.length}:${tenantId}${id}`;
    let p = recent.get(cacheKey);
    if (p === undefined) {
      p = compute(key, version, id);
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
