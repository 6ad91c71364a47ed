// What one round of the compactor works from: each command with its attribute changes (staged
// before the stored rows are read), then with its stored and new rows, the old and new values
// to look for, and its receipt. Pure.
import type { OverwriteCommand } from '../events/overwrite-command.js';
import type { AccountRow } from '../clickhouse/tables/accounts.js';
import type { UserRow } from '../clickhouse/tables/users.js';
import { attributeChanges, mapRewrite, newAccountRow, newUserRow, valuesOf, type AttributeChanges, type MapRewrite } from './overwrite-plan.js';
import type { Receipt } from './receipts.js';

/** A command with its changes, before the stored rows are read. */
export interface Staged {
  cmd: OverwriteCommand;
  changes: AttributeChanges;
  rewrite: MapRewrite;
}

export interface Plan extends Staged {
  storedUser: UserRow | null;
  storedAccount: AccountRow | null;
  newUser: UserRow | null;
  newAccount: AccountRow | null;
  /** old values (plain and JSON-encoded) — in memory only, never logged or persisted */
  oldValues: Set<string>;
  newValues: Set<string>;
  receipt: Receipt;
}

/** One subject (subject, tenant, id): the unit the lookup tables hold one entry of per round. */
export const keyOf = (c: { subject: string; tenant_id: string; id: string }): string => `${c.subject}\u0000${c.tenant_id}\u0000${c.id}`;

export const suppresses = (c: OverwriteCommand): boolean => c.subject === 'user' && c.suppress;
export const deletesEvents = (c: OverwriteCommand): boolean => c.subject === 'user' && c.mode === 'delete' && c.delete_events;
/** replaceId: the user's kept history takes `replacement_id` instead of its id */
export const replacesId = (c: OverwriteCommand): c is OverwriteCommand & { replacement_id: string } =>
  c.subject === 'user' && c.replacement_id !== undefined && !deletesEvents(c);
/** the subject leaves users/accounts under its id: deleted, or re-keyed to its new id */
export const erasesRow = (c: OverwriteCommand): boolean => c.mode === 'delete' || replacesId(c);

export function stageCommand(cmd: OverwriteCommand, piiTraits: readonly string[]): Staged {
  const changes = attributeChanges(cmd, piiTraits);
  return { cmd, changes, rewrite: mapRewrite(cmd.subject, changes) };
}

/** The plan of a staged command, given its stored row (if any) and the time of the new version. */
export function planCommand(
  { cmd, changes, rewrite }: Staged,
  stored: { users: ReadonlyMap<string, UserRow>; accounts: ReadonlyMap<string, AccountRow> },
  receipt: Receipt,
  now: number,
): Plan {
  const storedUser = cmd.subject === 'user' ? (stored.users.get(keyOf(cmd)) ?? null) : null;
  const storedAccount = cmd.subject === 'account' ? (stored.accounts.get(keyOf(cmd)) ?? null) : null;
  const newValues = new Set<string>();
  for (const v of [...Object.values(changes.columns), ...Object.values(changes.traits)]) {
    if (v !== null) newValues.add(v).add(JSON.stringify(v));
  }
  const oldValues = new Set(valuesOf(storedUser ?? storedAccount, changes));
  let newUser = cmd.subject === 'user' ? newUserRow(storedUser, cmd, changes, now) : null;
  if (replacesId(cmd)) {
    // NOTE: the id itself is an old value: a dead letter holding it goes, and no row may keep it
    oldValues.add(cmd.id).add(JSON.stringify(cmd.id));
    // an anonymized user's row moves to its new id (users is keyed by user_id: a new row, the
    // old ones erased); a deleted user's tombstone stays under the old id until it is erased
    if (newUser && cmd.mode !== 'delete') newUser = { ...newUser, user_id: cmd.replacement_id };
  }
  return {
    cmd,
    changes,
    rewrite,
    storedUser,
    storedAccount,
    newUser,
    newAccount: cmd.subject === 'account' ? newAccountRow(storedAccount, cmd, changes, now) : null,
    oldValues,
    newValues,
    receipt,
  };
}

/**
 * Per table the larger count. NOTE: a round run again after a crash or a failed step finds done
 * what the earlier one did (events deleted, a tombstone written) and counts less: the receipt
 * keeps what the request rewrote in all.
 */
export function maxCounts(a: Readonly<Record<string, number>>, b: Readonly<Record<string, number>>): Record<string, number> {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = Math.max(out[k] ?? 0, v);
  return out;
}
