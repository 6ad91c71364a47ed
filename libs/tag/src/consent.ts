// Consent as a consent-management platform (CMP) reports it: category → granted, what that
// lets the tag do (send, hold messages in memory until the visitor decides, or nothing), and
// the messages held meanwhile. Pure logic: the store is injected.
//
// The rule: the tag's own category is `analytics`. A call that names it is decided by it; a
// call that does not name it grants when any category is granted. Anything else — every
// category false, or `analytics: false` — is a withdrawal.

import type { KeyValueStore } from './storage.js';

export type Preferences = Record<string, boolean>;

/** send: consent given (or not required); hold: required and not given yet; off: withdrawn */
export type ConsentMode = 'send' | 'hold' | 'off';

export interface Consent<T> {
  mode(): ConsentMode;
  /** the visitor's last choice (null: none made), carried by every message as `context.consent.categoryPreferences` */
  preferences(): Preferences | null;
  /** Keeps a message built while the mode is `hold`; beyond `maxHeld` newer ones are dropped (the landing page view matters most). */
  hold(item: T): void;
  /** Forgets held messages (opt-out). */
  discard(): void;
  /**
   * A consent call: `grant` hands back the held messages to send, `withdraw` discards them;
   * null when the value holds no category (nothing changes).
   */
  update(value: unknown): { result: 'grant'; held: T[] } | { result: 'withdraw' } | null;
}

/** Longest category name kept, and most categories kept: a CMP has a handful. */
const MAX_NAME = 128;
const MAX_CATEGORIES = 100;
const KEY = 'consent';

/** `{ analytics: true, ads: false, other: 'yes' }` → its boolean entries; null when there are none. */
export function parsePreferences(v: unknown): Preferences | null {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return null;
  const out: Preferences = {};
  let n = 0;
  const fields = v as Record<string, unknown>;
  // NOTE: no destructuring in for-of: esbuild cannot lower it for the oldest targets.
  for (const k of Object.keys(fields)) {
    const b = fields[k];
    if (typeof b !== 'boolean' || !k || k.length > MAX_NAME) continue;
    out[k] = b;
    if (++n >= MAX_CATEGORIES) break;
  }
  return n > 0 ? out : null;
}

/** Whether preferences let the tag run (the rule at the top). */
export function grants(p: Preferences): boolean {
  // NOTE: not Object.values: the bundle test bans `.value` (it guards against reading fields)
  return 'analytics' in p ? p['analytics'] === true : Object.keys(p).some((k) => p[k]);
}

export function createConsent<T>(deps: { store: KeyValueStore; required: boolean; maxHeld: number }): Consent<T> {
  let held: T[] = [];
  // NOTE: read from the store every time (another tab may have withdrawn); parsed once per value.
  let raw: string | null = null;
  let parsed: Preferences | null = null;
  function preferences(): Preferences | null {
    const now = deps.store.get(KEY);
    if (now !== raw) {
      raw = now;
      let v: unknown = null;
      try {
        v = now === null ? null : JSON.parse(now);
      } catch {
        // garbage in storage: as if no choice had been made
      }
      parsed = parsePreferences(v);
    }
    return parsed;
  }
  function mode(): ConsentMode {
    const p = preferences();
    return p ? (grants(p) ? 'send' : 'off') : deps.required ? 'hold' : 'send';
  }
  return {
    mode,
    preferences,
    hold(item) {
      if (held.length < deps.maxHeld) held.push(item);
    },
    discard() {
      held = [];
    },
    update(value) {
      const p = parsePreferences(value);
      if (!p) return null;
      const json = JSON.stringify(p);
      if (json !== deps.store.get(KEY)) deps.store.set(KEY, json);
      const out = held;
      held = [];
      return grants(p) ? { result: 'grant', held: out } : { result: 'withdraw' };
    },
  };
}
