// Folds user / account patches (what events said) into the full snapshot rows stored in
// the `users` / `accounts` ReplacingMergeTree tables. Pure; dimension-store.ts does the reads/writes.
//
// TRICKY: ReplacingMergeTree keeps the whole latest row per key, so a row must be a full
// snapshot: an identify carrying only `email` must not blank a stored first_name. The sink
// therefore does read-modify-write: per flush it reads the latest stored row of every key in
// the batch (one primary-key query, including is_deleted rows), folds the batch's patches in
// version order and inserts one row per changed key. That is one small query per flush
// instead of a per-column argMax view analysts would have to know about, and it keeps the
// compactor's contract simple (it too writes whole rows). Rules:
//   * patches apply in version (received_at) order; a patch with version >= the current row
//     version overwrites the columns / trait keys it carries (equal versions: one HTTP batch
//     shares received_at, so later-in-batch wins);
//   * a patch OLDER than the stored row changes no attribute: the stored row may be a
//     compactor overwrite (version = request time) and an event received before that
//     request must not bring the old PII back (DESIGN.md §5 step 4). It may still widen
//     first_seen / last_seen;
//   * a deleted row (is_deleted = 1) is a tombstone: only newer patches start a fresh row;
//   * accounts: `explicit` source wins over `email_domain` whatever the order;
//   * a user's account link: an explicit link (group call, identify's account) wins over an
//     email-domain one whatever the order, within a batch and across batches. Among links of
//     one kind the newest wins. An explicit link older than the row still replaces an
//     email-domain one (the compactor never writes account_id, so no overwrite is undone).
//     The users table keeps no link source: a stored link counts as explicit when its
//     account's row is `explicit` (every explicit link comes with an explicit account patch).
// Concurrency: the sink runs these read-merge-writes one flush at a time, and a user's
// events stay on one partition (one consumer), so no two writers race on a key.
import type { AccountRow } from '../clickhouse/tables/accounts.js';
import { USER_ATTRIBUTE_COLUMNS, type UserRow } from '../clickhouse/tables/users.js';
import type { AccountPatch, UserPatch } from './event-rows.js';

export function userKey(r: { tenant_id: string; user_id: string }): string {
  return `${r.tenant_id}\u0000${r.user_id}`;
}

export function accountKey(r: { tenant_id: string; account_id: string }): string {
  return `${r.tenant_id}\u0000${r.account_id}`;
}

/** Group patches by key, each group sorted by version (stable: ties keep arrival order). */
export function groupPatches<P extends { version: number }>(patches: readonly P[], key: (p: P) => string): Map<string, P[]> {
  const groups = new Map<string, P[]>();
  for (const p of patches) {
    const k = key(p);
    const g = groups.get(k);
    if (g) g.push(p);
    else groups.set(k, [p]);
  }
  for (const g of groups.values()) g.sort((a, b) => a.version - b.version);
  return groups;
}

/**
 * The new snapshot for one user, or null when nothing changed (no row to write).
 * `patches` must share tenant/user and be sorted by version.
 */
export interface MergeUserOptions {
  /** the stored row's account link is explicit (its account's row is `explicit`) */
  storedLinkExplicit?: boolean;
}

/**
 * The new snapshot for one user, or null when nothing changed (no row to write).
 * `patches` must share tenant/user and be sorted by version.
 */
export function mergeUser(stored: UserRow | null, patches: readonly UserPatch[], now: number, opts: MergeUserOptions = {}): UserRow | null {
  const first = patches[0];
  if (!first) return null;
  let row: UserRow | null = stored ? { ...stored, traits: { ...stored.traits } } : null;
  let linkExplicit = row !== null && row.account_id !== null && opts.storedLinkExplicit === true;
  let changed = false;
  for (const p of patches) {
    if (row === null || (row.is_deleted === 1 && p.version > row.version)) {
      row = blankUserRow(p.tenant_id, p.user_id, p.version, p.identity_anonymized, p.version);
      linkExplicit = false;
      changed = true;
    }
    if (row.is_deleted === 1) continue; // tombstone newer than the patch
    if (p.version < row.first_seen) {
      row.first_seen = p.version;
      changed = true;
    }
    if (p.version > row.last_seen) {
      row.last_seen = p.version;
      changed = true;
    }
    const older = p.version < row.version;
    if (p.account_id !== null) {
      const explicit = p.account_source === 'explicit';
      if (explicit ? !older || !linkExplicit : !older && !linkExplicit) {
        if (row.account_id !== p.account_id) {
          row.account_id = p.account_id;
          changed = true;
        }
        if (explicit) linkExplicit = true;
      }
    }
    if (older) continue; // older than the stored state: attributes stay
    for (const col of USER_ATTRIBUTE_COLUMNS) {
      const v = p.columns[col];
      if (v !== undefined && row[col] !== v) {
        row[col] = v;
        changed = true;
      }
    }
    for (const [k, v] of Object.entries(p.traits)) {
      if (row.traits[k] !== v) {
        row.traits[k] = v;
        changed = true;
      }
    }
    const anonymized = p.identity_anonymized ? 1 : 0;
    if (row.identity_anonymized !== anonymized) {
      row.identity_anonymized = anonymized;
      changed = true;
    }
    if (p.version > row.version) row.version = p.version;
  }
  if (!changed || row === null) return null;
  row.updated_at = now;
  return row;
}

/**
 * Whether merging `patches` into `stored` depends on the source of the stored account link:
 * an email-domain patch would move a link that may be explicit.
 */
export function needsLinkSource(stored: UserRow, patches: readonly UserPatch[]): boolean {
  const link = stored.account_id;
  if (link === null || stored.is_deleted === 1) return false;
  return patches.some((p) => p.account_id !== null && p.account_id !== link && p.account_source !== 'explicit');
}

/** A user row with no attribute set yet, first and last seen `at` (shared with the compactor's --insert-missing). */
export function blankUserRow(tenantId: string, userId: string, at: number, identityAnonymized: boolean, version: number): UserRow {
  return {
    tenant_id: tenantId,
    user_id: userId,
    email: null,
    first_name: null,
    last_name: null,
    name: null,
    phone: null,
    title: null,
    company: null,
    account_id: null,
    traits: {},
    first_seen: at,
    last_seen: at,
    identity_anonymized: identityAnonymized ? 1 : 0,
    version,
    is_deleted: 0,
    updated_at: at,
  };
}

/** The new snapshot for one account, or null when nothing changed. Patches sorted by version. */
export function mergeAccount(stored: AccountRow | null, patches: readonly AccountPatch[], now: number): AccountRow | null {
  let row: AccountRow | null = stored ? { ...stored, traits: { ...stored.traits } } : null;
  let changed = false;
  for (const p of patches) {
    if (row === null || (row.is_deleted === 1 && p.version > row.version)) {
      row = {
        tenant_id: p.tenant_id,
        account_id: p.account_id,
        domain: null,
        source: p.source,
        name: null,
        traits: {},
        version: p.version,
        is_deleted: 0,
        updated_at: now,
      };
      changed = true;
    }
    if (row.is_deleted === 1) continue;
    if (p.source === 'explicit' && row.source !== 'explicit') {
      row.source = 'explicit';
      changed = true;
    }
    if (p.version < row.version) {
      // NOTE: an older event may still fill a domain nobody has set (not PII: a company domain).
      if (row.domain === null && p.domain !== null) {
        row.domain = p.domain;
        changed = true;
      }
      continue;
    }
    if (p.domain !== null && row.domain !== p.domain) {
      row.domain = p.domain;
      changed = true;
    }
    if (p.name !== undefined && row.name !== p.name) {
      row.name = p.name;
      changed = true;
    }
    for (const [k, v] of Object.entries(p.traits)) {
      if (row.traits[k] !== v) {
        row.traits[k] = v;
        changed = true;
      }
    }
    if (changed && p.version > row.version) row.version = p.version;
  }
  if (!changed || row === null) return null;
  row.updated_at = now;
  return row;
}
