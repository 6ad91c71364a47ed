// The `users` table (schemas/clickhouse/0002_users_accounts.sql): one full snapshot per
// version, a ReplacingMergeTree(version, is_deleted) on (tenant_id, user_id).
import type { ClickHouseClient } from '@clickhouse/client';
import { USER_TRAIT_COLUMNS } from '../../events/envelope.js';
import { flag, ms, nullableStr, selectList, str, type JsonRow } from './row-values.js';
import { insertSnapshots, parseSnapshotColumns, type SnapshotColumns } from './snapshot-columns.js';
import type { AllColumnsListed } from './table-columns.js';

/** The columns that hold Segment's reserved traits (email, first_name, …). */
export type UserAttributeColumn = keyof typeof USER_TRAIT_COLUMNS;
export const USER_ATTRIBUTE_COLUMNS: readonly UserAttributeColumn[] = ['email', 'first_name', 'last_name', 'name', 'phone', 'title', 'company'];

/** One row of `users`; times in ms. */
export interface UserRow extends SnapshotColumns {
  tenant_id: string;
  user_id: string;
  email: string | null;
  first_name: string | null;
  last_name: string | null;
  name: string | null;
  phone: string | null;
  title: string | null;
  company: string | null;
  account_id: string | null;
  first_seen: number;
  last_seen: number;
  identity_anonymized: 0 | 1;
}

export const USER_ROW_COLUMNS = [
  'tenant_id',
  'user_id',
  'email',
  'first_name',
  'last_name',
  'name',
  'phone',
  'title',
  'company',
  'account_id',
  'traits',
  'first_seen',
  'last_seen',
  'identity_anonymized',
  'version',
  'is_deleted',
  'updated_at',
] as const satisfies readonly (keyof UserRow)[];

// Compile-time guards: USER_ROW_COLUMNS names every UserRow key, USER_ATTRIBUTE_COLUMNS every reserved-trait column.
const allUserColumnsListed: AllColumnsListed<UserRow, typeof USER_ROW_COLUMNS> = true;
type MissingAttributeColumns = Exclude<UserAttributeColumn, (typeof USER_ATTRIBUTE_COLUMNS)[number]>;
const allAttributeColumnsListed: MissingAttributeColumns extends never ? true : MissingAttributeColumns = true;
void allUserColumnsListed;
void allAttributeColumnsListed;

/** SELECT list whose rows parseUserRow reads. */
export const USER_SELECT = selectList(USER_ROW_COLUMNS, new Set(['first_seen', 'last_seen', 'updated_at']));

export function parseUserRow(r: JsonRow): UserRow {
  return {
    tenant_id: str(r.tenant_id),
    user_id: str(r.user_id),
    email: nullableStr(r.email),
    first_name: nullableStr(r.first_name),
    last_name: nullableStr(r.last_name),
    name: nullableStr(r.name),
    phone: nullableStr(r.phone),
    title: nullableStr(r.title),
    company: nullableStr(r.company),
    account_id: nullableStr(r.account_id),
    first_seen: ms(r.first_seen),
    last_seen: ms(r.last_seen),
    identity_anonymized: flag(r.identity_anonymized),
    ...parseSnapshotColumns(r),
  };
}

export async function insertUsers(client: ClickHouseClient, rows: readonly UserRow[], table = 'users'): Promise<void> {
  await insertSnapshots(client, table, USER_ROW_COLUMNS, rows);
}
