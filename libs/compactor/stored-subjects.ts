// Which of a tenant's user/account ids have a stored (not deleted) row: the Data Loader's
// dry run reports the others as missing (created only with --insert-missing).
import type { ClickHouseClient } from '@clickhouse/client';
import { withIdLookup } from '../clickhouse/id-lookup.js';
import type { OverwriteSubject } from '../events/overwrite-command.js';

export async function storedSubjectIds(client: ClickHouseClient, tenantId: string, subject: OverwriteSubject, ids: readonly string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const [table, col] = subject === 'user' ? ['users', 'user_id'] : ['accounts', 'account_id'];
  // NOTE: the ids (and the tenant) travel as an INSERT's data, never in a URL or the SQL text
  const found = await withIdLookup(client, ['tenant_id', 'id'], ids.map((id) => ({ tenant_id: tenantId, id })), (lookup) =>
    lookup.rows<{ id: string }>(
      `SELECT ${col} AS id FROM ${table} FINAL WHERE (tenant_id, ${col}) GLOBAL IN (SELECT tenant_id, id FROM ${lookup.table}) AND is_deleted = 0`,
    ),
  );
  return new Set(found.map((r) => r.id));
}
