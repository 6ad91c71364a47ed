// The users/accounts read-merge-write: per call it reads the latest stored row of every key
// the patches name, folds the patches in (dimension-merge.ts) and inserts the rows that
// changed. Calls run one at a time, so each sees the rows the previous one wrote.
import type { ClickHouseClient } from '@clickhouse/client';
import { withIdLookup, type LookupSession } from '../clickhouse/id-lookup.js';
import { ACCOUNT_SELECT, insertAccounts, parseAccountRow, type AccountRow } from '../clickhouse/tables/accounts.js';
import type { JsonRow } from '../clickhouse/tables/row-values.js';
import { USER_SELECT, insertUsers, parseUserRow, type UserRow } from '../clickhouse/tables/users.js';
import { accountKey, groupPatches, mergeAccount, mergeUser, needsLinkSource, userKey } from './dimension-merge.js';
import type { AccountPatch, UserPatch } from './event-rows.js';

export interface DimensionStoreOptions {
  client: ClickHouseClient;
  tables: { users: string; accounts: string };
  now: () => number;
}

/** Rows inserted by one write. */
export interface DimensionCounts {
  users: number;
  accounts: number;
}

export interface DimensionStore {
  /**
   * Merges the patches into the stored rows and inserts the changed ones, after every earlier
   * write settled. The rows are inserted only once `after` resolved (the events they came with
   * are stored); if it rejects, nothing is inserted and the write rejects with its error.
   */
  write(users: readonly UserPatch[], accounts: readonly AccountPatch[], after?: Promise<unknown>): Promise<DimensionCounts>;
}

interface Stored {
  users: Map<string, UserRow>;
  accounts: Map<string, AccountRow>;
}

export function createDimensionStore(opts: DimensionStoreOptions): DimensionStore {
  const { client, tables, now } = opts;
  // NOTE: read-merge-write one at a time: two overlapping merges of one key would each miss
  // the other's row. The chain continues whether a step fails or not.
  let chain: Promise<void> = Promise.resolve();

  async function readStored(users: readonly string[], accounts: readonly string[], linksMayMove: boolean): Promise<Stored> {
    const stored: Stored = { users: new Map(), accounts: new Map() };
    const keys = [...users.map((k) => lookupRow('user', k)), ...accounts.map((k) => lookupRow('account', k))];
    if (keys.length === 0) return stored;
    // NOTE: one lookup session for both reads, which run one after the other in it
    await withIdLookup(client, ['subject', 'tenant_id', 'id'], keys, async (lookup) => {
      if (users.length > 0) {
        for (const raw of await readLatest(lookup, tables.users, 'user_id', USER_SELECT, `(tenant_id, user_id) ${inLookup(lookup, 'user')}`)) {
          const row = parseUserRow(raw);
          stored.users.set(userKey(row), row);
        }
      }
      // TRICKY: when an email-domain link may replace a stored one, the accounts of the stored
      // users' links are read too: whether those are `explicit` decides (dimension-merge.ts).
      const conditions = [
        ...(accounts.length > 0 ? [`(tenant_id, account_id) ${inLookup(lookup, 'account')}`] : []),
        ...(linksMayMove && users.length > 0
          ? [
              `(tenant_id, account_id) GLOBAL IN (SELECT tenant_id, assumeNotNull(account_id) FROM ${tables.users} ` +
                `WHERE account_id IS NOT NULL AND (tenant_id, user_id) ${inLookup(lookup, 'user')})`,
            ]
          : []),
      ];
      if (conditions.length === 0) return;
      for (const raw of await readLatest(lookup, tables.accounts, 'account_id', ACCOUNT_SELECT, conditions.join(' OR '))) {
        const row = parseAccountRow(raw);
        stored.accounts.set(accountKey(row), row);
      }
    });
    return stored;
  }

  async function merge(userPatches: readonly UserPatch[], accountPatches: readonly AccountPatch[]): Promise<{ users: UserRow[]; accounts: AccountRow[] }> {
    const at = now();
    const userGroups = groupPatches(userPatches, userKey);
    const accountGroups = groupPatches(accountPatches, accountKey);
    const linksMayMove = userPatches.some((p) => p.account_id !== null && p.account_source !== 'explicit');
    const stored = await readStored([...userGroups.keys()], [...accountGroups.keys()], linksMayMove);
    const users: UserRow[] = [];
    for (const [k, patches] of userGroups) {
      const s = stored.users.get(k) ?? null;
      const link = s !== null && s.account_id !== null && needsLinkSource(s, patches) ? { tenant_id: s.tenant_id, account_id: s.account_id } : null;
      const linkAccount = link ? stored.accounts.get(accountKey(link)) : undefined;
      const row = mergeUser(s, patches, at, { storedLinkExplicit: linkAccount?.source === 'explicit' });
      if (row) users.push(row);
    }
    const accounts: AccountRow[] = [];
    for (const [k, patches] of accountGroups) {
      const row = mergeAccount(stored.accounts.get(k) ?? null, patches, at);
      if (row) accounts.push(row);
    }
    return { users, accounts };
  }

  function write(userPatches: readonly UserPatch[], accountPatches: readonly AccountPatch[], after?: Promise<unknown>): Promise<DimensionCounts> {
    const run = chain.then(async () => {
      const merged = await merge(userPatches, accountPatches);
      await after;
      await Promise.all([insertUsers(client, merged.users, tables.users), insertAccounts(client, merged.accounts, tables.accounts)]);
      return { users: merged.users.length, accounts: merged.accounts.length };
    });
    chain = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  return { write };
}

function inLookup(lookup: LookupSession, subject: 'user' | 'account'): string {
  return `GLOBAL IN (SELECT tenant_id, id FROM ${lookup.table} WHERE subject = '${subject}')`;
}

/**
 * Latest stored row per key among the rows `where` selects, tombstones included (so no
 * FINAL, which would hide them). The keys are the lookup's data: never in the query text or URL.
 */
function readLatest(lookup: LookupSession, table: string, idColumn: 'user_id' | 'account_id', select: string, where: string): Promise<JsonRow[]> {
  return lookup.rows<JsonRow>(`SELECT ${select} FROM ${table} WHERE ${where} ORDER BY version DESC, updated_at DESC LIMIT 1 BY tenant_id, ${idColumn}`);
}

/** A `tenant \0 id` key of dimension-merge.ts as a lookup row. */
function lookupRow(subject: 'user' | 'account', k: string): { subject: string; tenant_id: string; id: string } {
  const i = k.indexOf('\u0000');
  return { subject, tenant_id: k.slice(0, i), id: k.slice(i + 1) };
}
