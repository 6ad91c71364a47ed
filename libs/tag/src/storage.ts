// First-party storage of the tag's few keys (visitor, session, identity, opt-out, consent),
// with an in-memory fallback: localStorage throws in sandboxed frames, some private modes and
// when the user blocked site data, and the tag must keep working (without persistence) there.
// Until consent allows storing, and always in cookieless mode, the keys live in memory only.

export interface KeyValueStore {
  get(key: string): string | null;
  set(key: string, value: string): void;
  remove(key: string): void;
}

export function memoryStore(): KeyValueStore {
  const m = new Map<string, string>();
  return {
    get: (k) => m.get(k) ?? null,
    set: (k, v) => void m.set(k, v),
    remove: (k) => void m.delete(k),
  };
}

/** localStorage under `prefix`, or memory when it cannot be used. Never throws. */
export function localStore(prefix: string, area: () => Storage): KeyValueStore {
  let s: Storage;
  try {
    s = area();
    const probe = `${prefix}probe`;
    s.setItem(probe, '1');
    s.removeItem(probe);
  } catch {
    return memoryStore();
  }
  const fallback = memoryStore();
  // TRICKY: a quota error on one write must not lose the value for this page's lifetime.
  return {
    get(k) {
      try {
        return fallback.get(k) ?? s.getItem(prefix + k);
      } catch {
        return fallback.get(k);
      }
    },
    set(k, v) {
      try {
        s.setItem(prefix + k, v);
        fallback.remove(k);
      } catch {
        fallback.set(k, v);
      }
    },
    remove(k) {
      fallback.remove(k);
      try {
        s.removeItem(prefix + k);
      } catch {
        // nothing to do: the value is gone from memory
      }
    },
  };
}

export interface DeferredStore extends KeyValueStore {
  /** From now on writes go to the browser's storage; what memory holds moves there. Idempotent. */
  persist(): void;
}

/**
 * Memory until `persist()`, then the store `open` returns (opened only then: localStore's
 * probe is a write too). `open` null: memory for the page's life (cookieless mode).
 * NOTE: before `persist()` nothing of the browser's storage is read either — reading a stored
 * id is "gaining access" under the ePrivacy rules, just like writing one.
 */
export function deferredStore(open: (() => KeyValueStore) | null): DeferredStore {
  /** null: removed. NOTE: a removal is replayed too: an optIn before consent lifts a stored opt-out. */
  const memory = new Map<string, string | null>();
  let target: KeyValueStore | null = null;
  return {
    get: (k) => (target ? target.get(k) : (memory.get(k) ?? null)),
    set: (k, v) => void (target ? target.set(k, v) : memory.set(k, v)),
    remove: (k) => void (target ? target.remove(k) : memory.set(k, null)),
    persist() {
      if (target || !open) return;
      const t = open();
      memory.forEach((v, k) => (v === null ? t.remove(k) : t.set(k, v)));
      memory.clear();
      target = t;
    },
  };
}
