// Receipts of overwrite commands in `overwrite_requests` (one row per command, latest version
// wins): written `pending` when a request is accepted, then by the compactor as it goes; and
// read back per API request (an erasure or a Data Loader chunk is one request of many commands).
import type { ClickHouseClient } from '@clickhouse/client';
import { toNumber } from '../clickhouse/client.js';
import type { OverwriteCommand, OverwriteMode, OverwriteSubject } from '../kafka/record-types.js';
import type { SubjectHash } from './subject-hash.js';

export type ReceiptStatus = 'pending' | 'applied' | 'verified' | 'failed';

export interface Receipt {
  request_id: string;
  tenant_id: string;
  subject: OverwriteSubject;
  /** NOTE: never the clear subject id (a user id may be an email) */
  subject_id_hash: string;
  mode: OverwriteMode;
  status: ReceiptStatus;
  /** table → rows rewritten (events rows whose traits changed, users/accounts rows written, events_deleted) */
  rows_rewritten: Record<string, number>;
  /** why it failed; never a PII value */
  reason: string | null;
  attempts: number;
  requested_at: number;
  applied_at: number | null;
  verified_at: number | null;
}

/** What `GET /v1/admin/requests/:id` answers: the request's commands summed up. */
export interface RequestReceipt {
  requestId: string;
  /** the tenant that made the request (every command of a request is of one tenant) */
  tenantId: string;
  status: ReceiptStatus;
  /** commands the request was split into (one per user of an erasure, per row of a load) */
  commands: number;
  rowsRewritten: Record<string, number>;
  reason: string | null;
  requestedAt: number;
  verifiedAt: number | null;
  /** later events of suppressed users dropped so far */
  suppressedEvents: number;
}

export interface ReceiptStore {
  /** Writes receipts at `version` (the compactor passes its monotonic clock). */
  write(receipts: readonly Receipt[], version: number): Promise<void>;
  /** Writes `pending` receipts for newly accepted commands, below any version the compactor writes. */
  writePending(commands: readonly OverwriteCommand[]): Promise<void>;
  read(commandIds: readonly string[]): Promise<Map<string, Receipt>>;
  /** The request's receipt: its commands are `<requestId>` or `<requestId>/<n>`. */
  forRequest(requestId: string): Promise<RequestReceipt | undefined>;
}

/** the request a command belongs to (`<requestId>/<n>` → `<requestId>`) */
export const requestIdOf = (commandId: string): string => commandId.split('/')[0] ?? commandId;

export function pendingReceipt(cmd: OverwriteCommand, subjectHash: SubjectHash, attempts = 0): Receipt {
  return {
    request_id: cmd.request_id,
    tenant_id: cmd.tenant_id,
    subject: cmd.subject,
    subject_id_hash: subjectHash(cmd.tenant_id, cmd.id),
    mode: cmd.mode,
    status: 'pending',
    rows_rewritten: {},
    reason: null,
    attempts,
    requested_at: cmd.requested_at,
    applied_at: null,
    verified_at: null,
  };
}

// NOTE: the least advanced command decides the request's status.
const STATUS_ORDER = ['failed', 'pending', 'applied', 'verified'] as const;
// NOTE: ids go in query parameters: chunked so a 100k-command request stays far below URL limits.
const IDS_PER_QUERY = 2_000;

/** `subjectHash`: how pending receipts keep the subject id (the compactor's key: subject-hash.ts) */
export function createReceiptStore(client: ClickHouseClient, subjectHash: SubjectHash): ReceiptStore {
  async function insert(receipts: readonly Receipt[], version: number): Promise<void> {
    if (receipts.length === 0) return;
    await client.insert({ table: 'overwrite_requests', format: 'JSONEachRow', values: receipts.map((r) => ({ ...r, version })) });
  }

  return {
    write: insert,
    // TRICKY: version 0: a pending row written by the API (on another host, with another
    // clock) must never win over anything the compactor wrote.
    writePending: (commands) => insert(commands.map((c) => pendingReceipt(c, subjectHash)), 0),

    async read(ids) {
      const out = new Map<string, Receipt>();
      for (let i = 0; i < ids.length; i += IDS_PER_QUERY) {
        const rs = await client.query({
          query: `SELECT request_id, tenant_id, subject, subject_id_hash, mode, status, rows_rewritten, reason, attempts,
                         toUnixTimestamp64Milli(requested_at) AS requested_at,
                         toUnixTimestamp64Milli(applied_at) AS applied_at, toUnixTimestamp64Milli(verified_at) AS verified_at
                  FROM overwrite_requests FINAL WHERE request_id IN {ids:Array(String)}`,
          query_params: { ids: ids.slice(i, i + IDS_PER_QUERY) },
          format: 'JSONEachRow',
        });
        for (const r of await rs.json<Record<string, unknown>>()) {
          const rw: Record<string, number> = {};
          for (const [k, v] of Object.entries(r.rows_rewritten as Record<string, unknown>)) rw[k] = toNumber(v);
          out.set(String(r.request_id), {
            request_id: String(r.request_id),
            tenant_id: String(r.tenant_id),
            subject: r.subject as OverwriteSubject,
            subject_id_hash: String(r.subject_id_hash),
            mode: r.mode as OverwriteMode,
            status: r.status as ReceiptStatus,
            rows_rewritten: rw,
            reason: (r.reason as string | null) ?? null,
            attempts: toNumber(r.attempts),
            requested_at: toNumber(r.requested_at),
            applied_at: r.applied_at === null ? null : toNumber(r.applied_at),
            verified_at: r.verified_at === null ? null : toNumber(r.verified_at),
          });
        }
      }
      return out;
    },

    async forRequest(requestId) {
      // NOTE: aggregated in ClickHouse: a Data Loader request can hold thousands of commands.
      const rs = await client.query({
        query: `SELECT status, any(tenant_id) AS tenant_id, count() AS n, sumMap(rows_rewritten) AS rw, any(reason) AS reason,
                       toUnixTimestamp64Milli(min(requested_at)) AS requested_at,
                       toUnixTimestamp64Milli(max(verified_at)) AS verified_at
                FROM overwrite_requests FINAL
                WHERE request_id = {id:String} OR startsWith(request_id, concat({id:String}, '/'))
                GROUP BY status`,
        query_params: { id: requestId },
        format: 'JSONEachRow',
      });
      const rows = await rs.json<{ status: ReceiptStatus; tenant_id: string; n: unknown; rw: Record<string, unknown>; reason: string | null; requested_at: unknown; verified_at: unknown }>();
      if (rows.length === 0) return undefined;
      const rowsRewritten: Record<string, number> = {};
      for (const r of rows) for (const [table, n] of Object.entries(r.rw)) rowsRewritten[table] = (rowsRewritten[table] ?? 0) + toNumber(n);
      const status = STATUS_ORDER.find((s) => rows.some((r) => r.status === s)) ?? 'pending';
      const sup = await client.query({
        query: `SELECT sum(events) AS n FROM suppressed_events
                WHERE request_id = {id:String} OR startsWith(request_id, concat({id:String}, '/'))`,
        query_params: { id: requestId },
        format: 'JSONEachRow',
      });
      const [suppressed] = await sup.json<{ n: unknown }>();
      return {
        requestId,
        tenantId: rows[0]?.tenant_id ?? '',
        status,
        commands: rows.reduce((n, r) => n + toNumber(r.n), 0),
        rowsRewritten,
        reason: rows.find((r) => r.status === 'failed')?.reason ?? null,
        requestedAt: Math.min(...rows.map((r) => toNumber(r.requested_at))),
        verifiedAt: status === 'verified' ? Math.max(...rows.map((r) => toNumber(r.verified_at ?? 0))) : null,
        suppressedEvents: toNumber(suppressed?.n ?? 0),
      };
    },
  };
}
