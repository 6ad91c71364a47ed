// The ClickHouse reads of a subject access export (subject-export.ts): users, accounts, events
// and receipts, parsed by their table modules. Ids and subject hashes travel as an INSERT's data
// into a lookup table (libs/clickhouse/id-lookup.ts), never in a URL or the SQL text (the page
// cursor too); each read (each page of events) has a lookup of its own, so a slow reader holds no
// session open.
import type { ClickHouseClient } from '@clickhouse/client';
import { withIdLookup } from '../clickhouse/id-lookup.js';
import { ACCOUNT_SELECT, parseAccountRow } from '../clickhouse/tables/accounts.js';
import { EVENT_PAGE_LOOKUP_COLUMNS, readEventsStoredUnder } from '../clickhouse/tables/events.js';
import { OVERWRITE_REQUEST_SELECT, parseReceipt } from '../clickhouse/tables/overwrite-requests.js';
import type { JsonRow } from '../clickhouse/tables/row-values.js';
import { STORED_IDENTITY_COLUMNS, storedUnder, type StoredIdentityRow } from '../clickhouse/tables/stored-identity.js';
import { parseUserRow, USER_SELECT } from '../clickhouse/tables/users.js';
import { ALIAS_COMMAND_PATTERN, type SubjectExportSource, type SubjectIdentity } from './subject-export.js';

/** events per page (one query each) */
export const EXPORT_PAGE_ROWS = 5_000;

const IDENTITY_COLUMNS = [...STORED_IDENTITY_COLUMNS, 'id_hash'] as const;

function identityRows(tenantId: string, identities: readonly SubjectIdentity[]): (StoredIdentityRow & { id_hash: string })[] {
  return identities.map((i) => ({ tenant_id: tenantId, user_id: i.userId, anonymized: i.anonymized ? '1' : '0', id_hash: i.idHash }));
}

export function clickhouseExportSource(client: ClickHouseClient, opts: { pageRows?: number } = {}): SubjectExportSource {
  const pageRows = opts.pageRows ?? EXPORT_PAGE_ROWS;
  return {
    profiles: (tenantId, identities) =>
      withIdLookup(client, IDENTITY_COLUMNS, identityRows(tenantId, identities), async (lookup) =>
        (await lookup.rows<JsonRow>(`SELECT ${USER_SELECT} FROM users FINAL WHERE ${storedUnder(lookup.table)} AND is_deleted = 0 ORDER BY user_id`)).map(parseUserRow),
      ),

    accounts: (tenantId, accountIds) =>
      withIdLookup(client, ['tenant_id', 'account_id'], accountIds.map((id) => ({ tenant_id: tenantId, account_id: id })), async (lookup) =>
        (
          await lookup.rows<JsonRow>(
            `SELECT ${ACCOUNT_SELECT} FROM accounts FINAL
             WHERE (tenant_id, account_id) GLOBAL IN (SELECT tenant_id, account_id FROM ${lookup.table}) AND is_deleted = 0 ORDER BY account_id`,
          )
        ).map(parseAccountRow),
      ),

    async *eventPages(tenantId, identities) {
      const rows = identityRows(tenantId, identities);
      // NOTE: the cursor is the last event id of the page before; every page's rows are of this one tenant
      for (let after = ''; ; ) {
        const cursor = after;
        const page = await withIdLookup(client, EVENT_PAGE_LOOKUP_COLUMNS, rows.map((r) => ({ tenant_id: r.tenant_id, user_id: r.user_id, anonymized: r.anonymized, after: cursor })), (lookup) =>
          readEventsStoredUnder(lookup, pageRows),
        );
        if (page.length > 0) yield page;
        const last = page.at(-1);
        if (page.length < pageRows || last === undefined) return;
        after = last.event_id;
      }
    },

    receipts: (tenantId, identities) =>
      withIdLookup(client, IDENTITY_COLUMNS, identityRows(tenantId, identities), async (lookup) =>
        (
          await lookup.rows<JsonRow>(
            // NOTE: a clear id's hash counts for the commands that named it, a pseudonym's for the
            // compactor's alias commands only (subject-export.ts receiptConcerns)
            `SELECT ${OVERWRITE_REQUEST_SELECT} FROM overwrite_requests FINAL
             WHERE subject = 'user'
               AND (tenant_id, subject_id_hash, toString(match(request_id, '${ALIAS_COMMAND_PATTERN}')))
                   GLOBAL IN (SELECT tenant_id, id_hash, anonymized FROM ${lookup.table})
             ORDER BY requested_at, request_id`,
          )
        ).map(parseReceipt),
      ),
  };
}
