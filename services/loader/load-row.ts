// One line of a Data Loader file, checked against the admin API's per-row limits, so a bad
// line is reported with its line number before anything is sent. Reasons name the column
// or key and the rule, never a value or an id (both may be PII).
import { LIMITS } from '../../libs/events/envelope.js';

export type LoadSubject = 'user' | 'account';

/** What one row asks for: attribute → new value, or null to clear it. */
export type AttributeSet = Record<string, string | null>;

export type LoadLine =
  /** a row to send; `line` is its first 1-based line in the file */
  | { kind: 'row'; line: number; id: string; set: AttributeSet }
  /** a line that cannot be applied, and why */
  | { kind: 'bad'; line: number; reason: string }
  /** a well-formed row that changes nothing (every CSV cell empty, or only an id) */
  | { kind: 'noop'; line: number };

export interface BadLine {
  line: number;
  reason: string;
}

/** A column or key name as it may appear in a reason: names are schema, not PII, but may be long. */
export function quoteName(name: string): string {
  const shown = name.length > 60 ? `${name.slice(0, 57)}…` : name;
  return JSON.stringify(shown);
}

/**
 * Checks one row. `entries` are the attributes the line sets, in file order (CSV: non-empty
 * cells only); `noun` is what the file calls an attribute in a reason ("column", "key").
 * TRICKY: the set is built with Object.fromEntries so a key named "__proto__" becomes an own
 * property (the server judges it like any other name) instead of replacing the prototype.
 */
export function checkRow(
  line: number,
  rawId: string,
  entries: readonly (readonly [string, string | null])[],
  noun: 'column' | 'key' = 'key',
): LoadLine {
  const id = rawId.trim();
  if (id.length === 0) return { kind: 'bad', line, reason: 'id is empty' };
  if (id.length > LIMITS.idChars) return { kind: 'bad', line, reason: `id longer than ${LIMITS.idChars} characters` };
  if (entries.length > LIMITS.mapEntries) {
    return { kind: 'bad', line, reason: `sets ${entries.length} attributes, at most ${LIMITS.mapEntries} are allowed per row` };
  }
  const seen = new Set<string>();
  for (const [name, value] of entries) {
    if (name.length === 0) return { kind: 'bad', line, reason: `${noun} name is empty` };
    if (name.length > LIMITS.mapKeyChars) return { kind: 'bad', line, reason: `${noun} name longer than ${LIMITS.mapKeyChars} characters` };
    if (seen.has(name)) return { kind: 'bad', line, reason: `${noun} ${quoteName(name)} given twice` };
    seen.add(name);
    if (value !== null && value.length > LIMITS.mapValueChars) {
      return { kind: 'bad', line, reason: `${noun} ${quoteName(name)}: value longer than ${LIMITS.mapValueChars} characters` };
    }
  }
  if (entries.length === 0) return { kind: 'noop', line };
  return { kind: 'row', line, id, set: Object.fromEntries(entries) };
}
