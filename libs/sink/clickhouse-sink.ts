// The sink stage's writer: buffers CleanEvents from many concurrent callers and group-commits
// them to ClickHouse (events, their trait snapshots, merged users/accounts snapshots), resolving each caller only
// once the flush holding all of its rows is durable (DESIGN.md §6). A flush that fails is
// retried write by write, so one bad write fails only itself (see retryPerWrite).
import type { ClickHouseClient } from '@clickhouse/client';
import type { Logger } from '../core/logger.js';
import { safeErrorFields } from '../core/errors.js';
import type { CleanEvent } from '../events/envelope.js';
import type { DeadLetter } from '../events/dead-letter.js';
import { insertDeadLetters, toDeadLetterRow } from '../clickhouse/tables/dead-letters.js';
import type { EventTuple } from '../clickhouse/tables/events.js';
import type { IdentifySnapshotTuple } from '../clickhouse/tables/identify-snapshots.js';
import { createDimensionStore } from './dimension-store.js';
import { toAccountPatch, toEventTuple, toSnapshotTuple, toUserPatch, type AccountPatch, type UserPatch } from './event-rows.js';
import { createGroupCommit, type FlushBatch, type PartFailures } from './group-commit.js';
import { tupleInserts } from './tuple-insert.js';

export interface ClickHouseSinkOptions {
  client: ClickHouseClient;
  /**
   * Optional second client (same server / same chDB dir) for the users/accounts
   * read-merge-write. NOTE: a chDB connection runs one statement at a time, so on the same
   * client the dimension reads queue behind the events insert; on a client of its own they
   * run in parallel (measured: sink/raw throughput 0.7 → ~0.9 in bench/sink-bench.ts).
   */
  dimensionClient?: ClickHouseClient;
  logger: Logger;
  /** flush when this many event rows are buffered (default 5000) */
  maxRows?: number;
  /** flush a non-empty buffer at the latest this long after its first row (default 50 ms) */
  maxAgeMs?: number;
  /** flushes in flight at once (default 2) */
  maxConcurrentFlushes?: number;
  /** table names, for benchmarks and tests on table copies */
  tables?: { events?: string; snapshots?: string; users?: string; accounts?: string; deadLetters?: string };
  /** clock, for tests */
  now?: () => number;
}

export interface ClickHouseSinkStats {
  /** flushes attempted (one events insert each, plus snapshots and users/accounts inserts when needed) */
  flushes: number;
  /** flushes whose group commit failed (their writes were then retried one by one) */
  failedFlushes: number;
  /** write() parts rejected after their own retry failed (a write split over flushes counts per flush) */
  failedWrites: number;
  eventRows: number;
  /** identify_snapshots rows (events that carried traits) */
  snapshotRows: number;
  userRows: number;
  accountRows: number;
  deadLetterRows: number;
  /** largest flush so far, in event rows */
  maxFlushRows: number;
}

export interface ClickHouseSink {
  /**
   * Resolves once every event is in ClickHouse (events and users/accounts). Rejects if its
   * rows could not be stored, even when retried on their own; other writes of the same flush
   * are not affected. The rejection's message may quote row data (ClickHouse parse errors
   * do): callers must not log it.
   */
  write(events: readonly CleanEvent[]): Promise<void>;
  /** Inserted directly (no batching): dead letters are rare and must not wait on events. */
  writeDeadLetters(letters: readonly DeadLetter[]): Promise<void>;
  /** Flushes everything buffered so far; rejects if any write in those flushes failed. */
  flush(): Promise<void>;
  /** Refuses new writes, flushes the rest. Idempotent. */
  stop(): Promise<void>;
  stats(): ClickHouseSinkStats;
}

/** One event, mapped when it is written: its events row, its trait snapshot and what it says about users/accounts. */
interface SinkRow {
  event: EventTuple;
  snapshot: IdentifySnapshotTuple | null;
  user: UserPatch | null;
  account: AccountPatch | null;
}

function patchesOf(rows: readonly SinkRow[]): { users: UserPatch[]; accounts: AccountPatch[] } {
  const users: UserPatch[] = [];
  const accounts: AccountPatch[] = [];
  for (const r of rows) {
    if (r.user) users.push(r.user);
    if (r.account) accounts.push(r.account);
  }
  return { users, accounts };
}

export function createClickHouseSink(opts: ClickHouseSinkOptions): ClickHouseSink {
  const { client, logger } = opts;
  const now = opts.now ?? Date.now;
  const tables = {
    events: opts.tables?.events ?? 'events',
    snapshots: opts.tables?.snapshots ?? 'identify_snapshots',
    users: opts.tables?.users ?? 'users',
    accounts: opts.tables?.accounts ?? 'accounts',
    deadLetters: opts.tables?.deadLetters ?? 'dead_letters',
  };
  const stats: ClickHouseSinkStats = {
    flushes: 0,
    failedFlushes: 0,
    failedWrites: 0,
    eventRows: 0,
    snapshotRows: 0,
    userRows: 0,
    accountRows: 0,
    deadLetterRows: 0,
    maxFlushRows: 0,
  };
  const inserts = tupleInserts(client);
  const dimensions = createDimensionStore({ client: opts.dimensionClient ?? client, tables, now });
  const commits = createGroupCommit<SinkRow>({
    maxItems: opts.maxRows ?? 5000,
    maxAgeMs: opts.maxAgeMs ?? 50,
    maxConcurrent: opts.maxConcurrentFlushes ?? 2,
    flush: flushBatch,
  });
  let stopping: Promise<void> | undefined;

  /**
   * The events rows and their trait snapshots; counted as stored once both are.
   * TRICKY: one unit for the retry below: an event whose snapshot was not stored is written
   * again with it (both tables collapse a repeated (tenant_id, event_id) under FINAL), so a
   * write never resolves with its traits missing.
   */
  async function insertEvents(rows: readonly SinkRow[], liftPartitionLimit = false): Promise<void> {
    const snapshots = rows.flatMap((r) => (r.snapshot ? [r.snapshot] : []));
    // NOTE: both settle before this rejects, so a retry never overlaps either insert
    const settled = await Promise.allSettled([
      inserts.events(rows.map((r) => r.event), { table: tables.events, liftPartitionLimit }),
      inserts.snapshots(snapshots, { table: tables.snapshots, liftPartitionLimit }),
    ]);
    for (const s of settled) if (s.status === 'rejected') throw s.reason;
    stats.snapshotRows += snapshots.length;
  }

  async function writeDimensions(rows: readonly SinkRow[], after?: Promise<unknown>): Promise<void> {
    const { users, accounts } = patchesOf(rows);
    const written = await dimensions.write(users, accounts, after);
    stats.userRows += written.users;
    stats.accountRows += written.accounts;
  }

  async function flushBatch(batch: FlushBatch<SinkRow>): Promise<PartFailures> {
    const rows = batch.items.length;
    stats.flushes++;
    stats.maxFlushRows = Math.max(stats.maxFlushRows, rows);
    const started = performance.now();
    let eventsStored = false;
    let eventsMs = 0;
    const events = insertEvents(batch.items).then(() => {
      eventsStored = true;
      eventsMs = performance.now() - started;
    });
    // TRICKY: the users/accounts reads overlap the events insert, but their rows are inserted
    // only once the events insert succeeded: if it fails, the retry below writes each write's
    // dimension rows only after its own events are stored, so a rejected write never leaves
    // users/accounts rows behind.
    let dimsMs = 0;
    const dims = writeDimensions(batch.items, events).then(() => {
      dimsMs = performance.now() - started;
    });
    // NOTE: both settle before anything is decided, so a retry never overlaps this insert.
    const [eventsResult, dimsResult] = await Promise.allSettled([events, dims]);
    const failure = eventsResult.status === 'rejected' ? eventsResult : dimsResult.status === 'rejected' ? dimsResult : undefined;
    if (!failure) {
      stats.eventRows += rows;
      logger.debug({ batch: batch.id, rows, ms: Math.round(performance.now() - started), eventsMs: Math.round(eventsMs), dimsMs: Math.round(dimsMs) }, 'sink flush');
      return new Map();
    }
    const err: unknown = failure.reason;
    stats.failedFlushes++;
    if (eventsStored) stats.eventRows += rows;
    // NOTE: a single write has nothing to isolate (unless the partition limit refused it, see
    // InsertEventsOptions), and a transport error (no ClickHouse error code: down, timeout) is
    // not about the rows — retrying would only double the load on a struggling server.
    const retry = isServerError(err) && (batch.parts.length > 1 || isTooManyPartitions(err));
    logger.error(
      { batch: batch.id, rows, writes: batch.parts.length, eventsStored, ...safeErrorFields(err) },
      retry ? 'sink flush failed; retrying its writes one by one' : 'sink flush failed',
    );
    if (retry) return retryPerWrite(batch, eventsStored);
    stats.failedWrites += batch.parts.length;
    return new Map(batch.parts.map((_, i) => [i, err]));
  }

  /**
   * After a failed group commit: each write's rows again, on their own and one write at a
   * time, so a write ClickHouse rejects (unparseable row, too many partitions, …) fails
   * alone and every other write of the flush is stored. One round, no backoff: a write that
   * fails again is rejected and its caller retries (HTTP 500 / Kafka redelivery). If
   * ClickHouse itself is failing, every write fails again and rejects — right, the callers
   * retry; a transport error ends the round early for the writes not yet sent.
   * TRICKY: re-inserting is safe because every table is a ReplacingMergeTree keyed by
   * tenant + id (events: event_id, version received_at): rows the failed insert did store
   * (a server may commit some blocks before the bad row), and the rows a rejected write's
   * caller sends again, collapse to one row (read with FINAL).
   * The partition limit is lifted only here (see InsertEventsOptions): a single write of
   * old or backfilled events may span more than 100 months.
   */
  async function retryPerWrite(batch: FlushBatch<SinkRow>, eventsStored: boolean): Promise<PartFailures> {
    const failures = new Map<number, unknown>();
    for (const [i, part] of batch.parts.entries()) {
      const rows = batch.items.slice(part.from, part.to);
      try {
        if (!eventsStored) await insertEvents(rows, true);
        // the write's users/accounts only once its events are stored (see flushBatch)
        await writeDimensions(rows);
      } catch (err) {
        failures.set(i, err);
        // NOTE: never the error message: ClickHouse parse errors quote the row (user ids, IPs).
        logger.error({ batch: batch.id, write: i, rows: rows.length, ...safeErrorFields(err) }, 'sink write failed');
        if (!isServerError(err)) {
          for (let rest = i + 1; rest < batch.parts.length; rest++) failures.set(rest, err);
          break;
        }
        continue;
      }
      if (!eventsStored) stats.eventRows += rows.length;
    }
    stats.failedWrites += failures.size;
    logger.warn({ batch: batch.id, writes: batch.parts.length, failedWrites: failures.size }, 'sink flush retried per write');
    return failures;
  }

  function write(events: readonly CleanEvent[]): Promise<void> {
    if (stopping) return Promise.reject(new Error('ClickHouse sink is stopped'));
    let rows: SinkRow[];
    try {
      rows = events.map((e) => ({ event: toEventTuple(e), snapshot: toSnapshotTuple(e), user: toUserPatch(e), account: toAccountPatch(e) }));
    } catch (err) {
      // NOTE: a mapping bug rejects the whole write before any of it is buffered.
      return Promise.reject(err);
    }
    return commits.add(rows);
  }

  async function writeDeadLetters(letters: readonly DeadLetter[]): Promise<void> {
    if (letters.length === 0) return;
    await insertDeadLetters(client, letters.map(toDeadLetterRow), tables.deadLetters);
    stats.deadLetterRows += letters.length;
  }

  function stop(): Promise<void> {
    stopping ??= (async () => {
      await commits.stop();
      logger.info({ ...stats }, 'ClickHouse sink stopped');
    })();
    return stopping;
  }

  return { write, writeDeadLetters, flush: () => commits.flush(), stop, stats: () => ({ ...stats }) };
}

/** "Too many partitions for single INSERT block" (TOO_MANY_PARTS, also used for parts backlog). */
function isTooManyPartitions(err: unknown): boolean {
  return safeErrorFields(err).code === '252';
}

/** A ClickHouse server error (it has a ClickHouse error code), i.e. not a transport error. */
function isServerError(err: unknown): boolean {
  return safeErrorFields(err).code !== undefined;
}
