// The `accounts` table (schemas/clickhouse/0002_users_accounts.sql): one full snapshot per
// version, a ReplacingMergeTree(version, is_deleted) on (tenant_id, account_id).
import type { ClickHouseClient } from '@clickhouse/client';
import type { AccountSource } from '../../events/envelope.js';
import { nullableStr, selectList, str, type JsonRow } from './row-values.js';
import { insertSnapshots, parseSnapshotColumns, type SnapshotColumns } from './snapshot-columns.js';
import type { AllColumnsListed } from './table-columns.js';

/** One row of `accounts`; times in ms. */
export interface AccountRow extends SnapshotColumns {
  tenant_id: string;
  account_id: string;
  domain: string | null;
  /** `explicit` once any event named the account (group, identify's account), else `email_domain` */
  source: AccountSource;
  name: string | null;
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
    ...parseSnapshotColumns(r),
  };
}

export async function insertAccounts(client: ClickHouseClient, rows: readonly AccountRow[], table = 'accounts'): Promise<void> {
  await insertSnapshots(client, table, ACCOUNT_ROW_COLUMNS, rows);
}
