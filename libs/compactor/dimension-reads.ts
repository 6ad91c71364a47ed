// Reads of the users/accounts rows of a round's subjects (their keys staged in the Set table):
// the current versions the new ones are built on, and every physical copy the verification checks.
import type { ClickHouseClient } from '@clickhouse/client';
import type { OverwriteCommand, OverwriteSubject } from '../events/overwrite-command.js';
import { ACCOUNT_SELECT, parseAccountRow, type AccountRow } from '../clickhouse/tables/accounts.js';
import { parseUserRow, USER_SELECT, type UserRow } from '../clickhouse/tables/users.js';
import { KEYS } from './mutation-sql.js';
import { keyOf } from './round-plan.js';
import { queryRows } from './row-parsers.js';

export interface StoredRows {
  /** by keyOf(subject, tenant, id) */
  users: Map<string, UserRow>;
  accounts: Map<string, AccountRow>;
}

/** The current (FINAL) users/accounts rows of the round's subjects. */
export async function readStored(client: ClickHouseClient, cmds: readonly OverwriteCommand[]): Promise<StoredRows> {
  const users = new Map<string, UserRow>();
  const accounts = new Map<string, AccountRow>();
  if (cmds.some((c) => c.subject === 'user')) {
    for (const raw of await queryRows(client, `SELECT ${USER_SELECT} FROM default.users FINAL WHERE ('user', tenant_id, user_id) IN ${KEYS}`)) {
      const row = parseUserRow(raw);
      users.set(keyOf({ subject: 'user', tenant_id: row.tenant_id, id: row.user_id }), row);
    }
  }
  if (cmds.some((c) => c.subject === 'account')) {
    for (const raw of await queryRows(client, `SELECT ${ACCOUNT_SELECT} FROM default.accounts FINAL WHERE ('account', tenant_id, account_id) IN ${KEYS}`)) {
      const row = parseAccountRow(raw);
      accounts.set(keyOf({ subject: 'account', tenant_id: row.tenant_id, id: row.account_id }), row);
    }
  }
  return { users, accounts };
}

/** Every version of the round's subjects' rows still stored in `from` (no FINAL), by keyOf. */
export async function physicalRows(client: ClickHouseClient, subject: OverwriteSubject, from: string): Promise<Map<string, (UserRow | AccountRow)[]>> {
  const out = new Map<string, (UserRow | AccountRow)[]>();
  const put = (id: string, tenantId: string, row: UserRow | AccountRow): void => {
    const k = keyOf({ subject, tenant_id: tenantId, id });
    out.set(k, [...(out.get(k) ?? []), row]);
  };
  if (subject === 'user') {
    for (const raw of await queryRows(client, `SELECT ${USER_SELECT} FROM ${from} WHERE ('user', tenant_id, user_id) IN ${KEYS}`)) {
      const row = parseUserRow(raw);
      put(row.user_id, row.tenant_id, row);
    }
  } else {
    for (const raw of await queryRows(client, `SELECT ${ACCOUNT_SELECT} FROM ${from} WHERE ('account', tenant_id, account_id) IN ${KEYS}`)) {
      const row = parseAccountRow(raw);
      put(row.account_id, row.tenant_id, row);
    }
  }
  return out;
}
