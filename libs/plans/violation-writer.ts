// Buffers violation rows and writes them to `violations` in batches: flushed when a batch is
// full or a second old, one insert at a time, the backlog bounded. Ingestion never waits on it
// and never fails because of it: a refused insert is logged (without values) and counted.
import type { ClickHouseClient } from '@clickhouse/client';
import { insertViolations, type ViolationRow } from '../clickhouse/tables/violations.js';
import { safeErrorFields } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { PlanMetrics } from './plan-metrics.js';

export interface ViolationSink {
  /** synchronous and cheap: the collector's hot path */
  record(rows: readonly ViolationRow[]): void;
}

export interface ViolationWriter extends ViolationSink {
  flush(): Promise<void>;
  /** flushes what is buffered; idempotent */
  stop(): Promise<void>;
}

export interface ViolationWriterOptions {
  insert: (rows: readonly ViolationRow[]) => Promise<void>;
  logger: Logger;
  metrics?: PlanMetrics;
  /** rows per insert; default 1,000 */
  maxRows?: number;
  /** a row waits at most this long; default 1,000 ms */
  maxAgeMs?: number;
  /** rows held at most (beyond: discarded and counted); default 20,000 (a few MB) */
  maxBuffered?: number;
}

export function clickhouseViolationInsert(client: ClickHouseClient): (rows: readonly ViolationRow[]) => Promise<void> {
  return (rows) => insertViolations(client, rows);
}

export function createViolationWriter(opts: ViolationWriterOptions): ViolationWriter {
  const maxRows = opts.maxRows ?? 1_000;
  const maxAgeMs = opts.maxAgeMs ?? 1_000;
  const maxBuffered = opts.maxBuffered ?? 20_000;
  let buffer: ViolationRow[] = [];
  let timer: NodeJS.Timeout | null = null;
  let writing: Promise<void> | null = null;
  let stopped: Promise<void> | null = null;

  function schedule(): void {
    if (timer !== null || buffer.length === 0) return;
    timer = setTimeout(() => {
      timer = null;
      void flush();
    }, maxAgeMs);
    timer.unref();
  }

  async function writeBatches(): Promise<void> {
    while (buffer.length > 0) {
      const batch = buffer.slice(0, maxRows);
      buffer = buffer.slice(batch.length);
      try {
        await opts.insert(batch);
      } catch (err) {
        // NOTE: the error's class and code only: a ClickHouse message may quote the rows
        opts.logger.error({ ...safeErrorFields(err), rows: batch.length }, 'could not write violation rows: they are lost (the events were handled as the plan says)');
        opts.metrics?.rowsLost.inc({ reason: 'write_failed' }, batch.length);
      }
    }
  }

  function flush(): Promise<void> {
    if (timer !== null) {
      clearTimeout(timer);
      timer = null;
    }
    // NOTE: one insert at a time; rows recorded meanwhile are written by the same loop
    writing ??= writeBatches().finally(() => {
      writing = null;
      schedule();
    });
    return writing;
  }

  return {
    record(rows) {
      if (rows.length === 0) return;
      const room = Math.max(0, maxBuffered - buffer.length);
      if (room < rows.length) opts.metrics?.rowsLost.inc({ reason: 'buffer_full' }, rows.length - room);
      if (room > 0) buffer.push(...rows.slice(0, room));
      if (buffer.length >= maxRows) void flush();
      else schedule();
    },
    flush,
    stop() {
      stopped ??= (async () => {
        await writing;
        await flush();
      })();
      return stopped;
    },
  };
}
