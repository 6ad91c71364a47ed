// Pure planning for one overwrite command: which attributes change to what (anonymize and
// delete fill in the anonymous values), the new users/accounts snapshot, and how the events'
// trait maps are rewritten (map key → new JSON-encoded value, or key removed).
import { createHash } from 'node:crypto';
import { USER_TRAIT_COLUMNS, type JsonMap } from '../events/envelope.js';
import { blankUserRow } from '../sink/dimension-merge.js';
import type { AccountRow } from '../clickhouse/tables/accounts.js';
import type { UserRow } from '../clickhouse/tables/users.js';
import type { OverwriteCommand, OverwriteSubject } from '../events/overwrite-command.js';

type UserColumn = keyof typeof USER_TRAIT_COLUMNS;
const USER_COLUMN_NAMES = Object.keys(USER_TRAIT_COLUMNS) as UserColumn[];
const ACCOUNT_COLUMNS = ['name', 'domain'] as const;
type AccountColumn = (typeof ACCOUNT_COLUMNS)[number];

/** The user attributes `anonymize` / `delete` always scrub (besides the tenant's PII traits). */
export const USER_PII_COLUMNS: readonly UserColumn[] = ['email', 'first_name', 'last_name', 'name', 'phone'];

/** An attribute change: reserved columns and free traits, new plain value or null (cleared). */
export interface AttributeChanges {
  columns: Record<string, string | null>;
  traits: Record<string, string | null>;
}

/** How one subject's event maps are rewritten: present keys in `repl` get the new value. */
export interface MapRewrite {
  /** events map key (e.g. firstName) → new JSON-encoded value */
  repl: Record<string, string>;
  /** events map keys to remove (the attribute was cleared) */
  drop: string[];
}

export function sha256Hex(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

/** Stable per (tenant, subject id), so re-running an anonymization writes the same value. */
export function anonymousEmail(tenantId: string, id: string): string {
  return `anon-${sha256Hex(`${tenantId}\u0000${id}`).slice(0, 8)}@anonymized.invalid`;
}

const isUserColumn = (col: string): col is UserColumn => (USER_COLUMN_NAMES as readonly string[]).includes(col);

function userColumnOf(attr: string): UserColumn | null {
  for (const col of USER_COLUMN_NAMES) {
    if (col === attr || (USER_TRAIT_COLUMNS[col] as readonly string[]).includes(attr)) return col;
  }
  return null;
}

/**
 * The attribute changes a command asks for. `anonymize`/`delete` scrub the known PII
 * attributes and the tenant's PII traits; explicit `set` entries apply on top.
 */
export function attributeChanges(cmd: OverwriteCommand, piiTraits: readonly string[]): AttributeChanges {
  const columns: Record<string, string | null> = {};
  const traits: Record<string, string | null> = {};
  if (cmd.mode !== 'overwrite') {
    if (cmd.subject === 'user') {
      for (const col of USER_PII_COLUMNS) columns[col] = col === 'email' ? anonymousEmail(cmd.tenant_id, cmd.id) : null;
    } else {
      columns.name = null;
    }
    for (const t of piiTraits) {
      const col = cmd.subject === 'user' ? userColumnOf(t) : (ACCOUNT_COLUMNS as readonly string[]).includes(t) ? t : null;
      // a PII trait stored in a column (title, company, domain, …) is scrubbed there
      if (col === null) traits[t] = null;
      else if (!(col in columns)) columns[col] = null;
    }
  }
  for (const [attr, value] of Object.entries(cmd.set)) {
    const col = cmd.subject === 'user' ? userColumnOf(attr) : (ACCOUNT_COLUMNS as readonly string[]).includes(attr) ? attr : null;
    if (col !== null) columns[col] = value;
    else traits[attr] = value;
  }
  return { columns, traits };
}

/** The events-map rewrite for a subject's changes (identify traits or account traits). */
export function mapRewrite(subject: OverwriteSubject, changes: AttributeChanges): MapRewrite {
  const repl: Record<string, string> = {};
  const drop: string[] = [];
  const put = (key: string, value: string | null): void => {
    if (value === null) drop.push(key);
    else repl[key] = JSON.stringify(value);
  };
  for (const [col, value] of Object.entries(changes.columns)) {
    const keys: readonly string[] = subject === 'user' ? (USER_TRAIT_COLUMNS[col as UserColumn] ?? [col]) : [col];
    for (const k of keys) put(k, value);
  }
  for (const [k, value] of Object.entries(changes.traits)) put(k, value);
  return { repl, drop };
}

function applyTraits(traits: JsonMap, changes: Record<string, string | null>): JsonMap {
  const out: JsonMap = { ...traits };
  for (const [k, v] of Object.entries(changes)) {
    if (v === null) delete out[k];
    else out[k] = JSON.stringify(v);
  }
  return out;
}

/**
 * The new version of a stored row, or null when there is none (nothing to overwrite).
 * TRICKY: version = requested_at, unless the stored row is already newer (an identify
 * received after the request was merged before the compactor ran): then version + 1, so the
 * overwrite still wins over a snapshot that copied the old values forward. The cost: for
 * `overwrite` mode an attribute that later identify set is overwritten too.
 */
export function newUserRow(stored: UserRow | null, cmd: OverwriteCommand, changes: AttributeChanges, now: number): UserRow | null {
  if (!stored && !(cmd.insert_missing === true && cmd.mode === 'overwrite')) return null;
  stored ??= emptyUserRow(cmd);
  const row: UserRow = { ...stored, traits: applyTraits(stored.traits, changes.traits) };
  for (const [col, value] of Object.entries(changes.columns)) if (isUserColumn(col)) row[col] = value;
  row.version = stored.version < cmd.requested_at ? cmd.requested_at : stored.version + 1;
  row.is_deleted = cmd.mode === 'delete' ? 1 : 0;
  row.updated_at = now;
  return row;
}

export function newAccountRow(stored: AccountRow | null, cmd: OverwriteCommand, changes: AttributeChanges, now: number): AccountRow | null {
  if (!stored && !(cmd.insert_missing === true && cmd.mode === 'overwrite')) return null;
  stored ??= emptyAccountRow(cmd);
  const row: AccountRow = { ...stored, traits: applyTraits(stored.traits, changes.traits) };
  for (const [col, value] of Object.entries(changes.columns)) {
    if (col === 'name') row.name = value;
    else if (col === 'domain') row.domain = value;
  }
  row.version = stored.version < cmd.requested_at ? cmd.requested_at : stored.version + 1;
  row.is_deleted = cmd.mode === 'delete' ? 1 : 0;
  row.updated_at = now;
  return row;
}

// NOTE: `--insert-missing` rows start empty at version 0, so the command's version
// (requested_at) wins; first/last seen are the request time (no event seen them yet).
function emptyUserRow(cmd: OverwriteCommand): UserRow {
  return blankUserRow(cmd.tenant_id, cmd.id, cmd.requested_at, /^v\d+:[0-9a-f]{64}$/.test(cmd.id), 0);
}

function emptyAccountRow(cmd: OverwriteCommand): AccountRow {
  return { tenant_id: cmd.tenant_id, account_id: cmd.id, domain: null, source: 'explicit', name: null, traits: {}, version: 0, is_deleted: 0, updated_at: cmd.requested_at };
}

/** Applies a rewrite to one events map (the registry's in-process twin of the mutation). */
export function rewriteMap(map: JsonMap, rw: MapRewrite): JsonMap {
  let out: JsonMap | null = null;
  for (const k of Object.keys(map)) {
    const repl = rw.repl[k];
    if (rw.drop.includes(k)) {
      out ??= { ...map };
      delete out[k];
    } else if (repl !== undefined && map[k] !== repl) {
      out ??= { ...map };
      out[k] = repl;
    }
  }
  return out ?? map;
}

/** Every plain and JSON-encoded form of the values a row holds for the changed attributes. */
export function valuesOf(row: UserRow | AccountRow | null, changes: AttributeChanges): string[] {
  if (!row) return [];
  const out: string[] = [];
  const fields: Readonly<Record<string, unknown>> = { ...row };
  for (const col of Object.keys(changes.columns)) {
    const v = fields[col];
    if (typeof v === 'string') out.push(v, JSON.stringify(v));
  }
  for (const k of Object.keys(changes.traits)) {
    const raw = row.traits[k];
    if (raw !== undefined) {
      out.push(raw);
      try {
        const v: unknown = JSON.parse(raw);
        if (typeof v === 'string') out.push(v);
      } catch {
        // not JSON: the raw form is enough
      }
    }
  }
  return out;
}
