// The SQL text of the compactor's mutations and of the predicates its scans share: constants
// that name the lookup tables (lookup-staging.ts fills them) and never hold a value.
// NOTE: every value comes from the Join table, so system.mutations / query_log never see one
// (checked in compactor.integration.test.ts).
import type { OverwriteSubject } from '../events/overwrite-command.js';

export const JOIN = 'default.overwrite_join';
export const KEYS = 'default.overwrite_keys';
export const DELETE_KEYS = 'default.overwrite_delete_keys';
export const SUPPRESS_KEYS = 'default.overwrite_suppress_keys';
export const DEAD_LETTER_HASHES = 'default.overwrite_dead_letter_hashes';
export const ERASE_KEYS = 'default.overwrite_erase_keys';
export const ID_JOIN = 'default.overwrite_id_join';
export const REPLACE_KEYS = 'default.overwrite_replace_keys';
export const REPLACED_REQUESTS = 'default.overwrite_replaced_requests';
export const LOOKUP_TABLES = [JOIN, KEYS, DELETE_KEYS, SUPPRESS_KEYS, ERASE_KEYS, DEAD_LETTER_HASHES, ID_JOIN, REPLACE_KEYS, REPLACED_REQUESTS] as const;

/** a column of the subject's Join entry for the row's (tenant, id) */
const jg = (col: string, subject: OverwriteSubject, idExpr: string): string =>
  `joinGet('${JOIN}', '${col}', '${subject}', tenant_id, ${idExpr})`;
export const USER_ID = 'assumeNotNull(user_id)';
const ACCOUNT_ID = 'assumeNotNull(account_id)';

/** rewritten map: present keys in repl take the new value, keys in drop_keys go. */
function rewriteExpr(mapCol: string, subject: OverwriteSubject, idExpr: string): string {
  return (
    `mapFilter((k, v) -> NOT has(${jg('drop_keys', subject, idExpr)}, k), ` +
    `mapApply((k, v) -> (k, if(mapContains(${jg('repl', subject, idExpr)}, k), ${jg('repl', subject, idExpr)}[k], v)), ${mapCol}))`
  );
}
/** the part of a map the batch's rewrite concerns (its old or new values) */
export function affectedExpr(mapCol: string, subject: OverwriteSubject, idExpr: string): string {
  return `mapFilter((k, v) -> mapContains(${jg('repl', subject, idExpr)}, k) OR has(${jg('drop_keys', subject, idExpr)}, k), ${mapCol})`;
}
/** a map still holding something other than the new values for the batch's keys */
export function staleExpr(mapCol: string, subject: OverwriteSubject, idExpr: string): string {
  return (
    `arrayExists((k, v) -> has(${jg('drop_keys', subject, idExpr)}, k) OR (mapContains(${jg('repl', subject, idExpr)}, k) AND v != ${jg('repl', subject, idExpr)}[k]), ` +
    `mapKeys(${mapCol}), mapValues(${mapCol}))`
  );
}
const idCol = (subject: OverwriteSubject): 'user_id' | 'account_id' => (subject === 'user' ? 'user_id' : 'account_id');
export const idExprOf = (subject: OverwriteSubject): string => (subject === 'user' ? USER_ID : ACCOUNT_ID);
// NOTE: on a group event `traits` holds the account's traits (Segment), not the user's: user
// rewrites skip group events, and account rewrites touch `traits` only on them.
export function historyWhere(subject: OverwriteSubject): string {
  const id = idExprOf(subject);
  const base = `${idCol(subject)} IS NOT NULL AND ('${subject}', tenant_id, ${id}) IN ${KEYS} AND received_at <= ${jg('requested_at', subject, id)}`;
  return subject === 'user' ? `${base} AND type != 'group'` : base;
}
export const GROUP_TRAITS = "if(type = 'group', traits, CAST(map(), 'Map(String, String)'))";

/**
 * The tables holding trait snapshots: identify_snapshots (the sink writes them there), and
 * `events` for rows written before migration 0010 (eventsHoldSnapshots in history-scans.ts
 * tells whether any are left). Both have the columns every statement below reads.
 */
export const HISTORY_TABLES = ['identify_snapshots', 'events'] as const;
export type HistoryTable = (typeof HISTORY_TABLES)[number];

export const userHistoryMutation = (table: HistoryTable): string =>
  `ALTER TABLE default.${table} UPDATE traits = ${rewriteExpr('traits', 'user', USER_ID)} ` +
  `WHERE ${historyWhere('user')} SETTINGS mutations_sync = 2`;
// NOTE: a group call may carry the account's traits Segment-style in `traits` too.
export const accountHistoryMutation = (table: HistoryTable): string =>
  `ALTER TABLE default.${table} UPDATE account_traits = ${rewriteExpr('account_traits', 'account', ACCOUNT_ID)}, ` +
  `traits = if(type = 'group', ${rewriteExpr('traits', 'account', ACCOUNT_ID)}, traits) ` +
  `WHERE ${historyWhere('account')} SETTINGS mutations_sync = 2`;
/** every event of a deleted user received before the request, with or without traits */
export const DELETED_EVENTS_WHERE = `user_id IS NOT NULL AND (tenant_id, ${USER_ID}) IN ${DELETE_KEYS} AND received_at <= ${jg('requested_at', 'user', USER_ID)}`;
/** a deleted user's events, and their snapshots in identify_snapshots, go */
export const deleteEventsMutation = (table: HistoryTable): string => `ALTER TABLE default.${table} DELETE WHERE ${DELETED_EVENTS_WHERE} SETTINGS mutations_sync = 2`;

export const DEAD_LETTER_HASH = "cityHash64(payload, ifNull(error, ''))";
/** a deleted subject leaves no row at all (after the merge only its scrubbed tombstone was left) */
export const ERASE_USERS_MUTATION = `ALTER TABLE default.users DELETE WHERE ('user', tenant_id, user_id) IN ${ERASE_KEYS} SETTINGS mutations_sync = 2`;
export const OPTIMIZE_USERS = 'OPTIMIZE TABLE default.users FINAL';
export const OPTIMIZE_ACCOUNTS = 'OPTIMIZE TABLE default.accounts FINAL';
export const ERASE_ACCOUNTS_MUTATION = `ALTER TABLE default.accounts DELETE WHERE ('account', tenant_id, account_id) IN ${ERASE_KEYS} SETTINGS mutations_sync = 2`;
/** dead letters (poison records, kept as sent) holding an old value of the batch go entirely */
export const DEAD_LETTERS_MUTATION = `ALTER TABLE default.dead_letters DELETE WHERE ${DEAD_LETTER_HASH} IN ${DEAD_LETTER_HASHES} SETTINGS mutations_sync = 2`;

/** events of a suppressed user received after the request */
export const SUPPRESSED_WHERE =
  `user_id IS NOT NULL AND (tenant_id, ${USER_ID}) IN ${SUPPRESS_KEYS} AND received_at > ${jg('requested_at', 'user', USER_ID)}`;
/** events of a suppressed user received after the request but stored before the sinks knew (and their snapshots) */
export const suppressEventsMutation = (table: HistoryTable): string => `ALTER TABLE default.${table} DELETE WHERE ${SUPPRESSED_WHERE} SETTINGS mutations_sync = 2`;

// --- replaceId (issue 15 item 3): the subject's kept history takes its new id ---------------

/** the id columns of a history table a subject's id can be in (an alias's previous id is a user id too) */
export const idColumnsOf = (table: HistoryTable): readonly ('user_id' | 'previous_id')[] => (table === 'events' ? ['user_id', 'previous_id'] : ['user_id']);
/** `col` holds a replaced id, in a row received before its request */
const replacedIn = (col: string): string =>
  `${col} IS NOT NULL AND (tenant_id, assumeNotNull(${col})) IN ${REPLACE_KEYS} AND received_at <= joinGet('${ID_JOIN}', 'requested_at', tenant_id, assumeNotNull(${col}))`;
/** rows whose user is replaced */
export const REPLACED_USER_WHERE = replacedIn('user_id');
/** rows of `table` still holding a replaced id */
export const replacedWhere = (table: HistoryTable): string => idColumnsOf(table).map((c) => `(${replacedIn(c)})`).join(' OR ');
/**
 * NOTE: user_id / previous_id are no key columns (both tables are ORDER BY (tenant_id, event_id)),
 * so they are updated in place. On a cluster the rows stay on the shard their old id chose.
 */
export const replaceIdsMutation = (table: HistoryTable): string =>
  `ALTER TABLE default.${table} UPDATE ` +
  idColumnsOf(table).map((c) => `${c} = if(${replacedIn(c)}, joinGet('${ID_JOIN}', 'new_id', tenant_id, assumeNotNull(${c})), ${c})`).join(', ') +
  ` WHERE ${replacedWhere(table)} SETTINGS mutations_sync = 2`;
/** a verified request's new id leaves replaced_ids: nothing links it to the old one any more */
export const FORGET_REPLACEMENTS_MUTATION = `ALTER TABLE default.replaced_ids UPDATE sealed = '' WHERE request_id IN ${REPLACED_REQUESTS} SETTINGS mutations_sync = 2`;
