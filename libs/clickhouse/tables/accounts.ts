// The `accounts` table (schemas/clickhouse/0002_users_accounts.sql): one full snapshot per
// version, a ReplacingMergeTree(version, is_deleted) on (tenant_id, account_id).
import type { ClickHouseClient } from '@clickhouse/client';
import type { AccountSource, JsonMap } from '../../events/envelope.js';
import { flag, ms, nullableStr, num, selectList, str, stringMap, type JsonRow } from './row-values.js';

/** One row of `accounts`; times in ms. */
export interface AccountRow {
  tenant_id: string;
  account_id: string;
  domain: string | null;
  /** `explicit` once any event named the account (group, identify's account), else `email_domain` */
  source: AccountSource;
  name: string | null;
  traits: JsonMap;
  version: number;
  is_deleted: 0 | 1;
  updated_at: number;
}

export const ACCOUNT_ROW_COLUMNS = [
  'tenant_id',
  'account_id',
  'domain',
  'source',
  'name',
  'traits',
  'version',
  'is_deleted',
  'updated_at',
] as const satisfies readonly (keyof AccountRow)[];

// Compile-time guard: ACCOUNT_ROW_COLUMNS names every AccountRow key.
type MissingAccountColumns = Exclude<keyof AccountRow, (typeof ACCOUNT_ROW_COLUMNS)[number]>;
const allAccountColumnsListed: MissingAccountColumns extends never ? true : MissingAccountColumns = true;
void allAccountColumnsListed;

/** SELECT list whose rows parseAccountRow reads. */
export const ACCOUNT_SELECT = selectList(ACCOUNT_ROW_COLUMNS, new Set(['updated_at']));

/** NOTE: any source other than `explicit` reads as `email_domain`, the weaker claim. */
export function parseAccountRow(r: JsonRow): AccountRow {
  return {
    tenant_id: str(r.tenant_id),
    account_id: str(r.account_id),
    domain: nullableStr(r.domain),
    source: r.source === 'explicit' ? 'explicit' : 'email_domain',
    name: nullableStr(r.name),
    traits: stringMap(r.traits),
    version: num(r.version),
    is_deleted: flag(r.is_deleted),
    updated_at: ms(r.updated_at),
  };
}

/** Inserts whole snapshots (never partial rows: a ReplacingMergeTree keeps the latest whole row). */
export async function insertAccounts(client: ClickHouseClient, rows: readonly AccountRow[], table = 'accounts'): Promise<void> {
  if (rows.length === 0) return;
  await client.insert({
    table,
    values: rows.map((r) => ACCOUNT_ROW_COLUMNS.map((c) => r[c])),
    format: 'JSONCompactEachRow',
    columns: [...ACCOUNT_ROW_COLUMNS],
  });
}
