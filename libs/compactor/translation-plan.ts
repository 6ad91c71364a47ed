// The pure half of a history translation (issue 15 item 2): what each clear identify id, PII
// trait value and `users` row of the tenant becomes under the target key version — the same
// forms the anonymizer writes (libs/anonymize/anonymize-stage.ts) — and which dead letters go.
// No I/O: history-translation.ts reads, stages and verifies.
import { USER_TRAIT_COLUMNS } from '../events/envelope.js';
import { USER_ATTRIBUTE_COLUMNS, type UserAttributeColumn, type UserRow } from '../clickhouse/tables/users.js';
import { jsonStrings } from '../core/json-strings.js';

/** What a pseudonym looks like (key-ring.ts): `v{version}:` + 64 hex chars. */
export const PSEUDONYM_RE = /^v\d+:[0-9a-f]{64}$/;

/** The translation's key: (id) → its pseudonym under the target version of the tenant. */
export type Pseudonymize = (id: string) => string;

/**
 * The stored (JSON-encoded) value of a PII trait → what the anonymizer stores instead:
 * JSON.stringify(pseudonym(decoded string)), or of the raw JSON text when it is not a string.
 * null for JSON null (no PII: kept) or a value that is already a pseudonym (translated before).
 */
export function hashedTraitValue(raw: string, pseudonymize: Pseudonymize): string | null {
  if (raw === 'null') return null;
  let plain = raw;
  if (raw.length >= 2 && raw.startsWith('"')) {
    try {
      const v: unknown = JSON.parse(raw);
      if (typeof v === 'string') plain = v;
    } catch {
      // malformed JSON text: hashed as is, as the anonymizer does
    }
  }
  if (PSEUDONYM_RE.test(plain)) return null;
  return JSON.stringify(pseudonymize(plain));
}

export interface TraitLookup {
  hashed: string;
  /** hashed under any trait key (the value is a clear identify id), not only under the PII traits */
  anyKey: boolean;
}

/**
 * The trait values a translation hashes: the stored values of the tenant's PII traits, and
 * every clear identify id as a JSON string under any key.
 * NOTE: beyond the anonymizer, which hashes the PII traits only: a trait that holds the identify
 * id (an `email` that is also the user id) would keep the id in clear after the translation.
 */
export function traitLookups(piiValues: Iterable<string>, ids: Iterable<string>, pseudonymize: Pseudonymize): Map<string, TraitLookup> {
  const out = new Map<string, TraitLookup>();
  for (const v of piiValues) {
    const hashed = hashedTraitValue(v, pseudonymize);
    if (hashed !== null) out.set(v, { hashed, anyKey: false });
  }
  for (const id of ids) out.set(JSON.stringify(id), { hashed: JSON.stringify(pseudonymize(id)), anyKey: true });
  return out;
}

/** The users columns holding a reserved trait the tenant lists in piiTraits (their value is hashed too). */
export function hashedColumns(piiTraits: readonly string[]): UserAttributeColumn[] {
  const pii = new Set(piiTraits);
  return USER_ATTRIBUTE_COLUMNS.filter((c) => USER_TRAIT_COLUMNS[c].some((t) => pii.has(t)));
}

/**
 * A users row's attributes as the anonymizer's sink would have written them: PII traits and
 * columns hashed — and, as traitLookups, any trait or column holding a clear id of `ids`.
 */
export function hashUserAttributes(row: UserRow, pseudonymize: Pseudonymize, piiTraits: readonly string[], ids: ReadonlySet<string>): UserRow {
  const traits: Record<string, string> = {};
  const pii = new Set(piiTraits);
  const isId = (raw: string): boolean => {
    try {
      const v: unknown = JSON.parse(raw);
      return typeof v === 'string' && ids.has(v);
    } catch {
      return false;
    }
  };
  for (const [k, v] of Object.entries(row.traits)) {
    const hashed = pii.has(k) || isId(v) ? hashedTraitValue(v, pseudonymize) : null;
    // TRICKY: defineProperty, so a trait named "__proto__" stays data (as the anonymizer keeps it)
    Object.defineProperty(traits, k, { value: hashed ?? v, enumerable: true, writable: true, configurable: true });
  }
  const out: UserRow = { ...row, traits };
  const hashed = new Set(hashedColumns(piiTraits));
  for (const col of USER_ATTRIBUTE_COLUMNS) {
    const v = row[col];
    if (v !== null && (ids.has(v) || (hashed.has(col) && !PSEUDONYM_RE.test(v)))) out[col] = pseudonymize(v);
  }
  return out;
}

/** A clear id's users row re-keyed under its pseudonym, attributes hashed (hashUserAttributes). */
export function translateUserRow(row: UserRow, pseudonymize: Pseudonymize, piiTraits: readonly string[], ids: ReadonlySet<string>): UserRow {
  return { ...hashUserAttributes(row, pseudonymize, piiTraits, ids), user_id: pseudonymize(row.user_id), identity_anonymized: 1 };
}

/** The latest row of each key (physical rows: several versions may still be on disk). */
export function latestRows(rows: readonly UserRow[]): Map<string, UserRow> {
  const out = new Map<string, UserRow>();
  for (const r of rows) {
    const seen = out.get(r.user_id);
    if (!seen || r.version > seen.version) out.set(r.user_id, r);
  }
  return out;
}

/**
 * The row to write under the pseudonym, given the clear id's latest row (translated) and the
 * pseudonym's latest stored row, if any: the newer version's attributes win, first_seen is the
 * earliest and last_seen the latest of both; its version is above both, so it replaces the
 * stored pseudonym row.
 * NOTE: a clear tombstone (is_deleted) loses to a live pseudonym row: the erased clear id's row
 * held nothing, and the pseudonym's history is newer.
 */
export function mergedUserRow(translated: UserRow, stored: UserRow | undefined, now: number): UserRow {
  if (!stored) return translated;
  const newer = translated.version > stored.version && !(translated.is_deleted === 1 && stored.is_deleted === 0) ? translated : stored;
  return {
    ...newer,
    first_seen: Math.min(translated.first_seen, stored.first_seen),
    last_seen: Math.max(translated.last_seen, stored.last_seen),
    version: Math.max(translated.version, stored.version) + 1,
    updated_at: now,
  };
}

/** Keys of a dead letter's input that carry an identify id (envelope and Segment spellings). */
const ID_KEYS = new Set(['user_id', 'userId', 'previous_id', 'previousId']);

/** Every identify id a dead letter's input carries (recursively: a batch, a wrapped message). */
export function identifyIdsIn(input: unknown, out: string[] = []): string[] {
  if (Array.isArray(input)) for (const x of input) identifyIdsIn(x, out);
  else if (input !== null && typeof input === 'object') {
    for (const [k, v] of Object.entries(input)) {
      if (ID_KEYS.has(k) && typeof v === 'string' && v !== '' && !PSEUDONYM_RE.test(v)) out.push(v);
      else identifyIdsIn(v, out);
    }
  }
  return out;
}

/**
 * Whether a dead letter received before the opt-in goes: it names an identify id in clear, or
 * holds a string equal to one of the tenant's clear ids, or cannot be read (it may hold one:
 * fail closed).
 */
export function deadLetterHoldsClearId(letter: { input: unknown } | { unreadable: Buffer }, error: string | null, clearIds: ReadonlySet<string>): boolean {
  if ('unreadable' in letter) return true;
  if (identifyIdsIn(letter.input).length > 0) return true;
  const strings = jsonStrings(letter.input, error === null ? [] : [error]);
  return strings.some((s) => clearIds.has(s)) || (error !== null && [...clearIds].some((id) => id.length >= 2 && error.includes(id)));
}
