// The clear keys of stored pseudonym key versions, held in process memory only (as KeyObjects)
// by the services that pseudonymize or look history up, and the KeySource the key ring asks.
// A key missing here is loaded from the key store in the background; until then the caller
// fails closed (the anonymizer retries the event, never passes it in clear).
import type { KeyObject } from 'node:crypto';
import { safeErrorFields } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { createKeyRing, type KeyRing, type KeySource, type ResolvedKey } from '../anonymize/key-ring.js';
import type { FlagSource } from '../tenants/flags.js';
import { keyWrapper, type KeyWrapper } from './key-wrap.js';
import { isShredded, keyId, keyOrigin, storedVersionsNeeded } from './key-versions.js';

/** One copy of the wrapped keys: the data dir, Redis or ClickHouse. */
export interface WrappedKeyStore {
  /** where this copy lives, as receipts name it */
  readonly place: string;
  get(tenantId: string, version: number): Promise<Buffer | undefined>;
  /** Stores `wrapped` unless the version has a key here already; resolves to the one kept. */
  putIfAbsent(tenantId: string, version: number, wrapped: Buffer): Promise<Buffer>;
  /** Destroys this copy of the version's key; resolves to how many entries were removed. */
  delete(tenantId: string, version: number): Promise<number>;
}

export interface StoredKeys {
  /** The clear key when held; else undefined, and a background load starts (when a store is given). */
  get(tenantId: string, version: number): KeyObject | undefined;
  set(tenantId: string, version: number, key: KeyObject): void;
  /** Drops the key from memory (a shredded version). */
  forget(tenantId: string, version: number): void;
}

/** A failed load is tried again after this long, not on every event. */
export const KEY_LOAD_RETRY_MS = 1_000;

export function createStoredKeys(opts: { wrapper?: KeyWrapper; store?: WrappedKeyStore; logger?: Logger; now?: () => number } = {}): StoredKeys {
  const now = opts.now ?? Date.now;
  const held = new Map<string, KeyObject>();
  /** key → when a load may start again */
  const loading = new Map<string, number>();
  const id = (tenantId: string, version: number) => `${version}:${tenantId}`;

  function load(tenantId: string, version: number): void {
    const { wrapper, store } = opts;
    if (wrapper === undefined || store === undefined) return;
    const k = id(tenantId, version);
    const until = loading.get(k);
    if (until !== undefined && until > now()) return;
    loading.set(k, Number.POSITIVE_INFINITY);
    store.get(tenantId, version).then(
      (wrapped) => {
        if (wrapped === undefined) {
          opts.logger?.warn({ tenantId, version, place: store.place }, 'pseudonym key not in the key store yet (the compactor creates it): events of the tenant wait');
          loading.set(k, now() + KEY_LOAD_RETRY_MS);
          return;
        }
        held.set(k, wrapper.unwrap(keyId(tenantId, version), wrapped));
        loading.delete(k);
      },
      (err: unknown) => {
        opts.logger?.warn({ tenantId, version, place: store.place, ...safeErrorFields(err) }, 'could not load a pseudonym key: events of the tenant wait');
        loading.set(k, now() + KEY_LOAD_RETRY_MS);
      },
    ).catch((err: unknown) => {
      // NOTE: a key that does not open (another master key, altered): never used, said loudly
      opts.logger?.error({ tenantId, version, ...safeErrorFields(err) }, 'a stored pseudonym key does not open');
      loading.set(k, now() + KEY_LOAD_RETRY_MS);
    });
  }

  return {
    get(tenantId, version) {
      const key = held.get(id(tenantId, version));
      if (key === undefined) load(tenantId, version);
      return key;
    },
    set: (tenantId, version, key) => void held.set(id(tenantId, version), key),
    forget(tenantId, version) {
      held.delete(id(tenantId, version));
      loading.delete(id(tenantId, version));
    },
  };
}

/**
 * The key ring's source over a tenant's flags: shredded versions refused (and dropped from
 * memory), derived ones computed by the ring, stored ones from `keys`.
 */
export function storedKeySource(flags: FlagSource, keys: StoredKeys): KeySource {
  return {
    resolve(tenantId, version): ResolvedKey {
      const f = flags.get(tenantId);
      if (f === undefined) return 'missing';
      if (isShredded(f, version)) {
        keys.forget(tenantId, version);
        return 'shredded';
      }
      if (keyOrigin(f, version) === 'derived') return 'derived';
      return keys.get(tenantId, version) ?? 'missing';
    },
  };
}

/**
 * A key ring for one-off tools (the export command): the tenant's stored versions read from
 * `store` and opened now, derived ones computed, shredded ones refused. A stored version missing
 * from the store is refused (KeyUnavailableError) rather than guessed.
 */
export async function toolKeyRing(opts: { masterKey: Buffer; store: WrappedKeyStore; flags: FlagSource; tenantId: string }): Promise<KeyRing> {
  const wrapper = keyWrapper(opts.masterKey);
  const keys = createStoredKeys();
  const f = opts.flags.get(opts.tenantId);
  for (const version of f ? storedVersionsNeeded(f) : []) {
    const wrapped = await opts.store.get(opts.tenantId, version);
    if (wrapped !== undefined) keys.set(opts.tenantId, version, wrapper.unwrap(keyId(opts.tenantId, version), wrapped));
  }
  return createKeyRing(opts.masterKey, { keys: storedKeySource(opts.flags, keys) });
}
