// The `accounts` table (schemas/clickhouse/0002_users_accounts.sql): one full snapshot per
// version, a ReplacingMergeTree(version, is_deleted) on (tenant_id, account_id).
import type { ClickHouseClient } from '@clickhouse/client';
import type { AccountSource, JsonMap } from '../../events/envelope.js';
import { flag, ms, nullableStr, num, selectList, str, stringMap, type JsonRow } from './row-values.js';
import { insertRows, type AllColumnsListed } from './table-columns.js';

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
const allAccountColumnsListed: AllColumnsListed<AccountRow, typeof ACCOUNT_ROW_COLUMNS> = true;
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
  await insertRows(client, table, ACCOUNT_ROW_COLUMNS, rows);
}
