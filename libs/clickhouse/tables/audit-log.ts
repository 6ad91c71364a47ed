// The `audit_log` table (schemas/clickhouse/0008_audit_log.sql): one row per admin-scope action
// and credential change (issue 11), a MergeTree kept 400 days (TTL); libs/audit/audit-log.ts
// writes it, tenants read their own rows through the query API (no code reads them back).
// NOTE: never a secret or a PII value: key ids, counts and keyed subject hashes only.
import type { ClickHouseClient } from '@clickhouse/client';
import { insertRows, type AllColumnsListed } from './table-columns.js';

export const AUDIT_OUTCOMES = ['ok', 'denied', 'rejected', 'error'] as const;
export type AuditOutcome = (typeof AUDIT_OUTCOMES)[number];

/** One row of `audit_log`; times in ms. */
export interface AuditRow {
  at: number;
  /** '' for an action of no tenant */
  tenant_id: string;
  credential_kind: string;
  key_id: string;
  action: string;
  request_id: string;
  outcome: AuditOutcome;
  status: number;
  /** the client address masked (/24, /48) */
  source: string;
  details: Record<string, string>;
}

export const AUDIT_COLUMNS = ['at', 'tenant_id', 'credential_kind', 'key_id', 'action', 'request_id', 'outcome', 'status', 'source', 'details'] as const satisfies readonly (keyof AuditRow)[];

// Compile-time guard: AUDIT_COLUMNS names every AuditRow key.
const allAuditColumnsListed: AllColumnsListed<AuditRow, typeof AUDIT_COLUMNS> = true;
void allAuditColumnsListed;

export async function insertAuditRows(client: ClickHouseClient, rows: readonly AuditRow[], table = 'audit_log'): Promise<void> {
  await insertRows(client, table, AUDIT_COLUMNS, rows);
}
