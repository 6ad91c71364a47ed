// Which of a tenant's user/account ids have a stored (not deleted) row: the Data Loader's
// dry run reports the others as missing (created only with --insert-missing).
import type { ClickHouseClient } from '@clickhouse/client';
import type { OverwriteSubject } from '../kafka/record-types.js';

// NOTE: ids travel as query parameters: chunks keep a request far below URL limits.
const IDS_PER_QUERY = 1_000;

export async function storedSubjectIds(client: ClickHouseClient, tenantId: string, subject: OverwriteSubject, ids: readonly string[]): Promise<Set<string>> {
  const [table, col] = subject === 'user' ? ['users', 'user_id'] : ['accounts', 'account_id'];
  const out = new Set<string>();
  for (let i = 0; i < ids.length; i += IDS_PER_QUERY) {
    const rs = await client.query({
      query: `SELECT ${col} AS id FROM ${table} FINAL WHERE tenant_id = {tenant:String} AND ${col} IN {ids:Array(String)} AND is_deleted = 0`,
      query_params: { tenant: tenantId, ids: ids.slice(i, i + IDS_PER_QUERY) },
      format: 'JSONEachRow',
    });
    for (const r of await rs.json<{ id: string }>()) out.add(r.id);
  }
  return out;
}
