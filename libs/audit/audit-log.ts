// The one writer of the `audit_log` table (its row: libs/clickhouse/tables/audit-log.ts).
// One row per admin-scope action and credential change; never a secret or a PII value —
// callers pass key ids, counts and keyed subject hashes only.
import type { ClickHouseClient } from '@clickhouse/client';
import { insertAuditRows, type AuditOutcome, type AuditRow } from '../clickhouse/tables/audit-log.js';
import { safeErrorFields } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { maskIp } from '../enrich/ip-address.js';

export type { AuditOutcome, AuditRow };

export interface AuditEntry {
  at: number;
  /** '' for an action of no tenant */
  tenantId: string;
  credentialKind: 'operator' | 'api_key';
  keyId: string;
  /** e.g. `flags.update`, `api_key.create`, `erasure.create` */
  action: string;
  requestId: string;
  status: number;
  /** the client address as TRUST_PROXY resolves it; stored masked (/24, /48) */
  source: string;
  /** counts, key ids, keyed hashes: never a value a tenant sent */
  details?: Record<string, string>;
}

export function outcomeOf(status: number): AuditOutcome {
  if (status < 400) return 'ok';
  if (status === 401 || status === 403 || status === 404) return 'denied';
  if (status < 500) return 'rejected';
  return 'error';
}

export function auditRow(e: AuditEntry): AuditRow {
  return {
    at: e.at,
    tenant_id: e.tenantId,
    credential_kind: e.credentialKind,
    key_id: e.keyId,
    action: e.action,
    request_id: e.requestId,
    outcome: outcomeOf(e.status),
    status: e.status,
    source: maskIp(e.source) ?? 'unknown',
    details: e.details ?? {},
  };
}

export interface AuditLog {
  /** Writes the row; a failure is logged (without values) and does not fail the action. */
  record(entry: AuditEntry): Promise<void>;
}

export function createAuditLog(opts: { client: ClickHouseClient; logger: Logger }): AuditLog {
  return {
    async record(entry) {
      try {
        await insertAuditRows(opts.client, [auditRow(entry)]);
      } catch (err) {
        opts.logger.error({ ...safeErrorFields(err), action: entry.action, tenantId: entry.tenantId, requestId: entry.requestId }, 'could not write an audit row');
      }
    },
  };
}
