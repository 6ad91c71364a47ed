// What a history translation reads and stages (issue 15 item 2): the tenant's clear identify
// ids and PII trait values received before its opt-in, its clear `users` rows and dead letters,
// and the lookup tables (0012) its mutations read, filled on every node and checked there.
// NOTE: ids and values only ever travel as query results and insert bodies, never in SQL text;
// the query parameters hold the tenant, an instant and trait names.
import type { ClickHouseClient } from '@clickhouse/client';
import { parseDeadLetterPayload } from '../clickhouse/tables/dead-letters.js';
import { parseUserRow, USER_SELECT, type UserRow } from '../clickhouse/tables/users.js';
import type { CompactorTarget } from './compactor-target.js';
import { fillLookupTables, type LookupRows } from './lookup-staging.js';
import { DEAD_LETTER_HASH } from './mutation-sql.js';
import { queryRows, str, nullableStr } from './row-parsers.js';
import { deadLetterHoldsClearId, type TraitLookup } from './translation-plan.js';
import { T_DEAD_LETTERS, T_ID_KEYS, T_IDS, T_TENANT, T_TENANTS, T_VALUES, TRANSLATION_TABLES } from './translation-sql.js';

export interface TranslationScope {
  tenantId: string;
  /** ms: rows received before it are translated */
  since: number;
  piiTraits: readonly string[];
}

const NOT_PSEUDONYM = `NOT match(id, '^v[0-9]+:[0-9a-f]{64}$')`;
const params = (s: TranslationScope) => ({ t: s.tenantId, since: s.since, pii: [...s.piiTraits] });
const BEFORE = `tenant_id = {t:String} AND received_at < fromUnixTimestamp64Milli({since:Int64})`;

/** Every clear identify id of the tenant's history before the opt-in (events, snapshots, users). */
export async function clearIds(client: ClickHouseClient, s: TranslationScope): Promise<Set<string>> {
  const rows = await queryRows(
    client,
    `SELECT DISTINCT id FROM (
       SELECT assumeNotNull(user_id) AS id FROM default.events WHERE ${BEFORE} AND identity_anonymized = 0 AND user_id IS NOT NULL
       UNION ALL SELECT assumeNotNull(previous_id) AS id FROM default.events WHERE ${BEFORE} AND identity_anonymized = 0 AND previous_id IS NOT NULL
       UNION ALL SELECT assumeNotNull(user_id) AS id FROM default.identify_snapshots WHERE ${BEFORE} AND user_id IS NOT NULL
       UNION ALL SELECT user_id AS id FROM default.users WHERE tenant_id = {t:String} AND identity_anonymized = 0
     ) WHERE id != '' AND ${NOT_PSEUDONYM}`,
    params(s),
  );
  return new Set(rows.map((r) => str(r.id)));
}

/** The distinct stored values of the tenant's PII traits in its history before the opt-in. */
export async function clearTraitValues(client: ClickHouseClient, s: TranslationScope): Promise<Set<string>> {
  if (s.piiTraits.length === 0) return new Set();
  const piiValues = `arrayJoin(mapValues(mapFilter((k, v) -> has({pii:Array(String)}, k), traits)))`;
  const rows = await queryRows(
    client,
    `SELECT DISTINCT v FROM (
       SELECT ${piiValues} AS v FROM default.events WHERE ${BEFORE} AND identity_anonymized = 0
       UNION ALL SELECT ${piiValues} AS v FROM default.identify_snapshots WHERE ${BEFORE}
     )`,
    params(s),
  );
  return new Set(rows.map((r) => str(r.v)));
}

/** Physical `users` rows of the tenant (every version still on disk) matching `where`. */
export async function userRows(client: ClickHouseClient, from: string, tenantId: string, where: string, extra: Record<string, unknown> = {}): Promise<UserRow[]> {
  const rows = await queryRows(client, `SELECT ${USER_SELECT} FROM ${from} WHERE tenant_id = {t:String} AND ${where}`, { t: tenantId, ...extra });
  return rows.map(parseUserRow);
}

/** Query-parameter chunks: a tenant may have many users; URLs must stay short. */
const CHUNK = 2_000;

/** The stored rows of these pseudonyms (every version on disk). */
export async function pseudonymRows(client: ClickHouseClient, tenantId: string, pseudonyms: readonly string[], from = 'default.users'): Promise<UserRow[]> {
  const out: UserRow[] = [];
  for (let i = 0; i < pseudonyms.length; i += CHUNK) {
    out.push(...(await userRows(client, from, tenantId, 'user_id IN {ids:Array(String)}', { ids: pseudonyms.slice(i, i + CHUNK) })));
  }
  return out;
}

/** DEAD_LETTER_HASH of each dead letter of the tenant received before the opt-in that holds a clear id. */
export async function deadLettersToDelete(client: ClickHouseClient, s: TranslationScope, ids: ReadonlySet<string>, from = 'default.dead_letters'): Promise<string[]> {
  const rows = await queryRows(client, `SELECT toString(${DEAD_LETTER_HASH}) AS h, payload, error FROM ${from} WHERE ${BEFORE}`, params(s));
  return rows.filter((r) => deadLetterHoldsClearId(parseDeadLetterPayload(str(r.payload)), nullableStr(r.error), ids)).map((r) => str(r.h));
}

export interface TranslationLookups {
  keyVersion: number;
  /** clear id → pseudonym */
  ids: ReadonlyMap<string, string>;
  /** stored trait value → its hashed form, and whether under any key (a clear id) or the PII traits' only */
  values: ReadonlyMap<string, TraitLookup>;
}

export interface TranslationStaging {
  stage(s: TranslationScope, l: TranslationLookups): Promise<void>;
  stageDeadLetters(hashes: readonly string[]): Promise<void>;
  /** empties every translation table on every node (they hold clear ids) */
  clear(): Promise<void>;
}

export function createTranslationStaging(target: CompactorTarget): TranslationStaging {
  /** emptied first on every node, and checked there: a node that missed some would leave clear ids */
  const fill = (tables: readonly LookupRows[]): Promise<void> => fillLookupTables(target, tables, tables.map((t) => t.table), 'translation');

  return {
    async stage(s, l) {
      const tenant_id = s.tenantId;
      await fill([
        { table: T_TENANT, values: [{ tenant_id, pii_traits: s.piiTraits, since: s.since, key_version: l.keyVersion }] },
        { table: T_TENANTS, values: [{ tenant_id }] },
        { table: T_IDS, values: [...l.ids].map(([id, pseudonym]) => ({ tenant_id, id, pseudonym })) },
        { table: T_ID_KEYS, values: [...l.ids.keys()].map((id) => ({ tenant_id, id })) },
        { table: T_VALUES, values: [...l.values].map(([value, v]) => ({ tenant_id, value, hashed: v.hashed, any_key: v.anyKey ? 1 : 0 })) },
      ]);
    },
    async stageDeadLetters(hashes) {
      await fill([{ table: T_DEAD_LETTERS, values: [...new Set(hashes)].map((h) => ({ h })) }]);
    },
    async clear() {
      for (const node of target.nodes) for (const t of TRANSLATION_TABLES) await node.command({ query: `TRUNCATE TABLE ${t}` });
    },
  };
}
