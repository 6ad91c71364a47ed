// The key keeper: the one place stored pseudonym keys are created, restored and destroyed
// (DESIGN.md §3). It runs where the master key is — in process when embedded, in the compactor
// in the fleet — and follows the tenants' flags: every stored version a tenant still uses gets
// a key (restored from the second copy when the store lost it, else a new random one), and
// every shredded version loses every copy, checked, with a receipt.
import { safeErrorFields } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { ShredReceipt, ShredReceiptStore } from '../clickhouse/tables/pseudonym-keys.js';
import type { TenantFlags } from '../tenants/flags.js';
import type { KeyWrapper } from './key-wrap.js';
import { keyId, storedVersionsNeeded } from './key-versions.js';
import type { StoredKeys, WrappedKeyStore } from './stored-keys.js';

export interface KeyKeeperOptions {
  wrapper: KeyWrapper;
  /** the key store the pseudonymizing services read (Redis / the data dir) */
  primary: WrappedKeyStore;
  /** the second copy (ClickHouse); a key is restored from it before a new one is ever made */
  copy?: WrappedKeyStore;
  /** the clear keys of this process (its key ring reads them) */
  keys: StoredKeys;
  tenants: () => readonly { tenantId: string; flags: TenantFlags }[];
  receipts?: ShredReceiptStore;
  /**
   * Whether history is stored under the version: a key missing from every copy is then lost,
   * and a new one would silently give the same users other pseudonyms — the keeper refuses and
   * says so (restore a copy, or rotate). Absent: never asked (tools, tests).
   */
  usedBefore?: (tenantId: string, version: number) => Promise<boolean>;
  /** copies outside Tracklane's reach, named in every shred receipt */
  outsideCopies: readonly string[];
  logger: Logger;
  now?: () => number;
}

export interface KeyKeeper {
  /** One pass over every tenant; concurrent callers share a pass that started after their call. */
  sync(): Promise<void>;
  /** Whether the version's key is held and in every copy. */
  holds(tenantId: string, version: number): boolean;
  /** Runs sync() every `intervalMs` until the returned stop() (which waits for a running pass). */
  start(intervalMs: number): { stop(): Promise<void> };
}

/** A stored version whose every copy is gone while history uses it: never replaced silently. */
export class KeyLostError extends Error {
  override readonly name = 'KeyLostError';
}

export function createKeyKeeper(opts: KeyKeeperOptions): KeyKeeper {
  const now = opts.now ?? Date.now;
  const { wrapper, primary, copy, keys, logger } = opts;
  const id = (t: string, v: number) => `${v}:${t}`;
  /** versions whose key is in memory and in every copy */
  const kept = new Set<string>();
  /** verified shreds: never redone */
  let shredded: Set<string> | null = null;

  async function ensure(tenantId: string, version: number): Promise<void> {
    let wrapped = await primary.get(tenantId, version);
    let inCopy = false;
    if (wrapped === undefined && copy !== undefined) {
      // NOTE: a copy that cannot be read throws here: never make a new key for a version that may have one
      wrapped = await copy.get(tenantId, version);
      inCopy = wrapped !== undefined;
      if (inCopy) logger.warn({ tenantId, version, from: copy.place, to: primary.place }, 'pseudonym key restored from its second copy');
    }
    if (wrapped === undefined && (await opts.usedBefore?.(tenantId, version))) {
      throw new KeyLostError(`pseudonym key v${version} of tenant ${tenantId} is in no copy although history is stored under it: restore the key file / Redis hash or the pseudonym_keys table from a backup, or rotate and then shred it (its events wait until then)`);
    }
    wrapped ??= wrapper.generate(keyId(tenantId, version), () => undefined).wrapped;
    wrapped = await primary.putIfAbsent(tenantId, version, wrapped);
    if (copy !== undefined && !inCopy) await copy.putIfAbsent(tenantId, version, wrapped);
    keys.set(tenantId, version, wrapper.unwrap(keyId(tenantId, version), wrapped));
    kept.add(id(tenantId, version));
  }

  async function shred(tenantId: string, version: number): Promise<void> {
    keys.forget(tenantId, version);
    kept.delete(id(tenantId, version));
    const stores = copy === undefined ? [primary] : [primary, copy];
    const destroyed: Record<string, number> = {};
    const remaining: string[] = [];
    let reason: string | null = null;
    for (const store of stores) {
      try {
        destroyed[store.place] = await store.delete(tenantId, version);
        if ((await store.get(tenantId, version)) !== undefined) remaining.push(store.place);
      } catch (err) {
        remaining.push(store.place);
        reason = `could not destroy the copy in ${store.place} (${safeErrorFields(err).error})`;
      }
    }
    const at = now();
    const receipt: ShredReceipt = {
      tenant_id: tenantId,
      version,
      status: remaining.length === 0 ? 'verified' : 'failed',
      destroyed,
      remaining,
      outside_copies: [...opts.outsideCopies],
      reason,
      verified_at: remaining.length === 0 ? at : null,
      updated_at: at,
    };
    await opts.receipts?.write(receipt);
    if (receipt.status === 'verified') {
      shredded?.add(id(tenantId, version));
      logger.info({ tenantId, version, destroyed }, 'pseudonym key shredded and verified');
    } else {
      // NOTE: tried again on the next pass; the flags already refuse the version everywhere
      logger.warn({ tenantId, version, remaining, reason }, 'pseudonym key shred not complete: retrying');
    }
  }

  async function pass(): Promise<void> {
    shredded ??= opts.receipts ? await opts.receipts.verified() : new Set<string>();
    const done = shredded;
    // NOTE: each version on its own: a lost or unreachable one must not hold up the others (a rotation away from it)
    const attempt = async (tenantId: string, version: number, step: () => Promise<void>): Promise<void> => {
      try {
        await step();
      } catch (err) {
        if (err instanceof KeyLostError) logger.error({ tenantId, version }, err.message);
        else logger.warn({ tenantId, version, ...safeErrorFields(err) }, 'pseudonym key not brought up to date: retrying on the next pass');
      }
    };
    for (const { tenantId, flags } of opts.tenants()) {
      for (const v of flags.shreddedKeyVersions) if (!done.has(id(tenantId, v))) await attempt(tenantId, v, () => shred(tenantId, v));
      for (const v of storedVersionsNeeded(flags)) if (!kept.has(id(tenantId, v))) await attempt(tenantId, v, () => ensure(tenantId, v));
    }
  }

  let running: Promise<void> | null = null;
  let queued: Promise<void> | null = null;
  function sync(): Promise<void> {
    // NOTE: a caller's change must be seen by a pass that starts after it: queue one behind a running pass
    if (running === null) {
      running = pass().finally(() => {
        running = null;
      });
      return running;
    }
    queued ??= running.then(() => {
      queued = null;
      return sync();
    });
    return queued;
  }

  return {
    sync,
    holds: (tenantId, version) => kept.has(id(tenantId, version)),
    start(intervalMs) {
      let stopped = false;
      let timer: NodeJS.Timeout | undefined;
      const tick = (): void => {
        if (stopped) return;
        sync()
          .catch((err: unknown) => logger.warn({ ...safeErrorFields(err) }, 'pseudonym key pass failed'))
          .finally(() => {
            if (!stopped) timer = setTimeout(tick, intervalMs);
          });
      };
      tick();
      return {
        async stop() {
          stopped = true;
          clearTimeout(timer);
          await (queued ?? running ?? Promise.resolve()).catch(() => undefined);
        },
      };
    },
  };
}
