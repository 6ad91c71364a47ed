// Embedded mode's path for overwrite commands: an in-process queue drained one batch at a
// time by the compactor, and receipts read back from `overwrite_requests`.
// NOTE: commands wait in memory until the compactor writes their `pending` receipts (within
// milliseconds); a crash in between loses them — the fleet takes them through Kafka instead.
import type { ClickHouseClient } from '../../libs/clickhouse/client.js';
import { toNumber } from '../../libs/clickhouse/client.js';
import type { Compactor } from '../../libs/compactor/compactor.js';
import { safeErrorFields } from '../../libs/core/errors.js';
import type { Logger } from '../../libs/core/logger.js';
import type { OverwriteCommand } from '../../libs/kafka/record-types.js';
import type { RequestReceipt } from '../collector/overwrite-routes.js';

export interface OverwriteQueue {
  submit(commands: OverwriteCommand[]): Promise<void>;
  receipt(requestId: string): Promise<RequestReceipt | undefined>;
  /** resolves when everything submitted so far was applied (or failed); idempotent */
  close(): Promise<void>;
}

const STATUS_ORDER = ['failed', 'pending', 'applied', 'verified'] as const;

export function createOverwriteQueue(deps: { compactor: Compactor; client: ClickHouseClient; logger: Logger }): OverwriteQueue {
  const queued = new Map<string, number>(); // request id → requested_at, until its receipts exist
  let tail: Promise<void> = Promise.resolve();
  let closed = false;

  const requestIdOf = (c: OverwriteCommand) => c.request_id.split('/')[0] ?? c.request_id;

  return {
    async submit(commands) {
      if (closed) throw new Error('overwrite queue is closed');
      for (const c of commands) queued.set(requestIdOf(c), c.requested_at);
      tail = tail.then(async () => {
        try {
          await deps.compactor.apply(commands);
        } catch (err) {
          deps.logger.error({ ...safeErrorFields(err), commands: commands.length }, 'overwrite batch failed');
        } finally {
          for (const c of commands) queued.delete(requestIdOf(c));
        }
      });
    },

    async receipt(requestId) {
      const rs = await deps.client.query({
        query: `SELECT request_id, status, rows_rewritten, reason, toUnixTimestamp64Milli(requested_at) AS requested_at,
                       toUnixTimestamp64Milli(verified_at) AS verified_at
                FROM overwrite_requests FINAL
                WHERE request_id = {id:String} OR startsWith(request_id, concat({id:String}, '/'))`,
        query_params: { id: requestId },
        format: 'JSONEachRow',
      });
      const rows = await rs.json<{ status: string; rows_rewritten: Record<string, unknown>; reason: string | null; requested_at: unknown; verified_at: unknown }>();
      if (rows.length === 0) {
        const at = queued.get(requestId);
        return at === undefined
          ? undefined
          : { requestId, status: 'pending', commands: 0, rowsRewritten: {}, reason: null, requestedAt: at, verifiedAt: null };
      }
      const rowsRewritten: Record<string, number> = {};
      for (const r of rows) for (const [table, n] of Object.entries(r.rows_rewritten)) rowsRewritten[table] = (rowsRewritten[table] ?? 0) + toNumber(n);
      // the request is as far as its least advanced command
      const status = STATUS_ORDER.find((s) => rows.some((r) => r.status === s)) ?? 'pending';
      const verifiedAt = status === 'verified' ? Math.max(...rows.map((r) => toNumber(r.verified_at ?? 0))) : null;
      return {
        requestId,
        status,
        commands: rows.length,
        rowsRewritten,
        reason: rows.find((r) => r.reason)?.reason ?? null,
        requestedAt: Math.min(...rows.map((r) => toNumber(r.requested_at))),
        verifiedAt,
      };
    },

    async close() {
      closed = true;
      await tail;
    },
  };
}
