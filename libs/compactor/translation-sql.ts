// The SQL text of a history translation's mutations and checks (issue 15 item 2): constants that
// name its lookup tables (schemas/clickhouse/0012_history_translation.sql) and never hold an id
// or a value — system.mutations and query_log keep every mutation's text.
import { DEAD_LETTER_HASH } from './mutation-sql.js';

export const T_TENANT = 'default.overwrite_translation_tenant';
export const T_TENANTS = 'default.overwrite_translation_tenants';
export const T_IDS = 'default.overwrite_translation_ids';
export const T_ID_KEYS = 'default.overwrite_translation_id_keys';
export const T_VALUES = 'default.overwrite_translation_values';
export const T_DEAD_LETTERS = 'default.overwrite_translation_dead_letters';
export const TRANSLATION_TABLES = [T_TENANT, T_TENANTS, T_IDS, T_ID_KEYS, T_VALUES, T_DEAD_LETTERS] as const;

const tenant = (col: 'pii_traits' | 'since' | 'key_version'): string => `joinGet('${T_TENANT}', '${col}', tenant_id)`;
/** a Nullable id column's pseudonym when it holds a clear id of the translation, else itself */
const pseudonymOf = (col: string): string => `ifNull(joinGetOrNull('${T_IDS}', 'pseudonym', tenant_id, assumeNotNull(${col})), ${col})`;
const clearId = (col: string): string => `(${col} IS NOT NULL AND (tenant_id, assumeNotNull(${col})) IN ${T_ID_KEYS})`;
/** whether the stored trait value `v` under key `k` is one the translation hashes */
const HASHED = `(has(${tenant('pii_traits')}, k) OR joinGet('${T_VALUES}', 'any_key', tenant_id, v) = 1)`;
/** the traits map with PII trait values and clear ids hashed (the anonymizer's form) */
const TRAITS = `mapApply((k, v) -> (k, if(${HASHED}, ifNull(joinGetOrNull('${T_VALUES}', 'hashed', tenant_id, v), v), v)), traits)`;
/** a traits map still holding a clear PII trait value or a clear id */
const CLEAR_TRAIT = `arrayExists((k, v) -> ${HASHED} AND joinGetOrNull('${T_VALUES}', 'hashed', tenant_id, v) IS NOT NULL, mapKeys(traits), mapValues(traits))`;

/** the translated tenant's rows received before its opt-in */
export const BEFORE_OPT_IN = `tenant_id IN ${T_TENANTS} AND received_at < ${tenant('since')}`;

// NOTE: every row of the tenant received before the opt-in becomes a pseudonymized one, with or
// without a user id — as the anonymizer marks every event its rule covers. Run again (a retry),
// it finds none: `identity_anonymized = 0` is the progress mark.
// TRICKY: on a cluster `events` is sharded by (tenant, user_id): the translated rows stay on the
// clear id's shard. Harmless — reads go through the Distributed table, and the copies FINAL
// collapses (redeliveries) were all written before the opt-in, on that same shard.
export const TRANSLATE_EVENTS =
  `ALTER TABLE default.events UPDATE user_id = ${pseudonymOf('user_id')}, previous_id = ${pseudonymOf('previous_id')}, ` +
  `traits = ${TRAITS}, identity_anonymized = 1, key_version = ${tenant('key_version')} ` +
  `WHERE ${BEFORE_OPT_IN} AND identity_anonymized = 0 SETTINGS mutations_sync = 2`;

// NOTE: idempotent without a mark: a pseudonym is not a key of the id table, nor a hashed value one of the value table.
export const TRANSLATE_SNAPSHOTS =
  `ALTER TABLE default.identify_snapshots UPDATE user_id = ${pseudonymOf('user_id')}, traits = ${TRAITS} ` +
  `WHERE ${BEFORE_OPT_IN} AND (${clearId('user_id')} OR ${CLEAR_TRAIT}) SETTINGS mutations_sync = 2`;

/** the clear-id rows of `users`, once their pseudonym rows are written */
export const DELETE_CLEAR_USERS = `ALTER TABLE default.users DELETE WHERE (tenant_id, user_id) IN ${T_ID_KEYS} SETTINGS mutations_sync = 2`;
export const OPTIMIZE_USERS_FINAL = 'OPTIMIZE TABLE default.users FINAL';
export const DELETE_DEAD_LETTERS = `ALTER TABLE default.dead_letters DELETE WHERE ${DEAD_LETTER_HASH} IN ${T_DEAD_LETTERS} SETTINGS mutations_sync = 2`;

/** What must be 0 after a translation, per table, over `from` (every physical copy). */
export const leftoverQuery = {
  events: (from: string) =>
    `SELECT count() AS n FROM ${from} WHERE tenant_id IN ${T_TENANTS} AND ` +
    `((received_at < ${tenant('since')} AND identity_anonymized = 0) OR ${clearId('user_id')} OR ${clearId('previous_id')} OR ${CLEAR_TRAIT})`,
  identify_snapshots: (from: string) => `SELECT count() AS n FROM ${from} WHERE tenant_id IN ${T_TENANTS} AND (${clearId('user_id')} OR ${CLEAR_TRAIT})`,
  users: (from: string) => `SELECT count() AS n FROM ${from} WHERE (tenant_id, user_id) IN ${T_ID_KEYS} OR (tenant_id IN ${T_TENANTS} AND ${CLEAR_TRAIT})`,
} as const;

/** Counts before the rewrite (for the receipt): the rows each statement above changes. */
export const pendingQuery = {
  events: `SELECT count() AS n FROM default.events WHERE ${BEFORE_OPT_IN} AND identity_anonymized = 0`,
  identify_snapshots: `SELECT count() AS n FROM default.identify_snapshots WHERE ${BEFORE_OPT_IN} AND (${clearId('user_id')} OR ${CLEAR_TRAIT})`,
} as const;
