// The sink stage's writer: buffers CleanEvents from many concurrent callers and group-commits
// them to ClickHouse (events + merged users/accounts snapshots), resolving each caller only
// once the flush holding all of its rows is durable (DESIGN.md §6). A flush that fails is
// retried write by write, so one bad write fails only itself (see retryPerWrite).
import type { ClickHouseClient } from '@clickhouse/client';
import type { Logger } from '../core/logger.js';
import type { CleanEvent } from '../events/envelope.js';
import { toNumber } from '../clickhouse/client.js';
import { withIdLookup, type LookupSession } from '../clickhouse/id-lookup.js';
import {
  ACCOUNT_ROW_COLUMNS,
  EVENT_COLUMNS,
  USER_ROW_COLUMNS,
  toAccountPatch,
  toDeadLetterRow,
  toEventTuple,
  toUserPatch,
  type AccountPatch,
  type AccountRow,
  type DeadLetterInput,
  type UserPatch,
  type UserRow,
} from './event-rows.js';
import { safeErrorFields } from '../core/errors.js';
import { accountKey, groupPatches, mergeAccount, mergeUser, userKey } from './dimension-merge.js';

export type { DeadLetterInput };

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
  tables?: { events?: string; users?: string; accounts?: string; deadLetters?: string };
  /** clock, for tests */
  now?: () => number;
}

export interface ClickHouseSinkStats {
  /** flushes attempted (one events insert each, plus users/accounts inserts when needed) */
  flushes: number;
  /** flushes whose group commit failed (their writes were then retried one by one) */
  failedFlushes: number;
  /** write() parts rejected after their own retry failed (a write split over flushes counts per flush) */
  failedWrites: number;
  eventRows: number;
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
  writeDeadLetters(rows: readonly DeadLetterInput[]): Promise<void>;
  /** Flushes everything buffered so far; rejects if any write in those flushes failed. */
  flush(): Promise<void>;
  /** Refuses new writes, flushes the rest. Idempotent. */
  stop(): Promise<void>;
  stats(): ClickHouseSinkStats;
}

/** Deferred promise; its rejection is pre-handled so nobody awaiting it never crashes the process. */
interface Settle {
  readonly done: Promise<void>;
  resolve(): void;
  reject(err: unknown): void;
}

function settle(): Settle {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const done = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // NOTE: a write whose caller is gone (or a batch nobody flushes) must not crash the process.
  done.catch(() => undefined);
  return { done, resolve, reject };
}

/**
 * The rows one write() call put into one batch: contiguous index ranges (a write is
 * buffered synchronously, so nothing interleaves). One HTTP request in embedded mode, one
 * Kafka batch in the fleet; the unit of failure isolation.
 */
interface WritePart extends Settle {
  eventFrom: number;
  eventTo: number;
  userFrom: number;
  userTo: number;
  accountFrom: number;
  accountTo: number;
}

interface Batch extends Settle {
  readonly id: number;
  readonly eventTuples: unknown[][];
  readonly userPatches: UserPatch[];
  readonly accountPatches: AccountPatch[];
  readonly parts: WritePart[];
  /** the age limit passed: flush as soon as a slot is free */
  due: boolean;
  timer: NodeJS.Timeout | undefined;
}

/** users/accounts rows merged for a set of patches, ready to insert */
interface MergedDimensions {
  users: UserRow[];
  accounts: AccountRow[];
}

export function createClickHouseSink(opts: ClickHouseSinkOptions): ClickHouseSink {
  const { client, logger } = opts;
  const dimClient = opts.dimensionClient ?? client;
  const maxRows = Math.max(1, opts.maxRows ?? 5000);
  const maxAgeMs = Math.max(0, opts.maxAgeMs ?? 50);
  const maxConcurrent = Math.max(1, opts.maxConcurrentFlushes ?? 2);
  const now = opts.now ?? Date.now;
  const tables = {
    events: opts.tables?.events ?? 'events',
    users: opts.tables?.users ?? 'users',
    accounts: opts.tables?.accounts ?? 'accounts',
    deadLetters: opts.tables?.deadLetters ?? 'dead_letters',
  };
  const stats: ClickHouseSinkStats = {
    flushes: 0,
    failedFlushes: 0,
    failedWrites: 0,
    eventRows: 0,
    userRows: 0,
    accountRows: 0,
    deadLetterRows: 0,
    maxFlushRows: 0,
  };

  let open: Batch | undefined;
  const sealed: Batch[] = [];
  const inFlight = new Set<Promise<void>>();
  let nextId = 1;
  let stopping: Promise<void> | undefined;
  // NOTE: users/accounts read-modify-write runs one at a time (see dimension-merge.ts), while
  // events inserts of different flushes may overlap.
  let dimensionChain: Promise<void> = Promise.resolve();
  function withDimensionLock<T>(fn: () => Promise<T>): Promise<T> {
    const run = dimensionChain.then(fn);
    // the chain continues even if this step fails
    dimensionChain = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  function newBatch(): Batch {
    const batch: Batch = {
      id: nextId++,
      eventTuples: [],
      userPatches: [],
      accountPatches: [],
      parts: [],
      due: false,
      timer: undefined,
      ...settle(),
    };
    batch.timer = setTimeout(() => {
      batch.timer = undefined;
      batch.due = true;
      pump();
    }, maxAgeMs);
    return batch;
  }

  function seal(batch: Batch): void {
    if (batch.timer) clearTimeout(batch.timer);
    batch.timer = undefined;
    if (open === batch) open = undefined;
    sealed.push(batch);
  }

  /** Start flushes while slots are free: sealed (full) batches first, then a due open one. */
  function pump(): void {
    while (inFlight.size < maxConcurrent) {
      let batch = sealed.shift();
      if (!batch && open && open.due) {
        batch = open;
        seal(batch);
        sealed.shift();
      }
      if (!batch) return;
      const p = runFlush(batch).finally(() => {
        inFlight.delete(p);
        pump();
      });
      inFlight.add(p);
    }
  }

  async function runFlush(batch: Batch): Promise<void> {
    const rows = batch.eventTuples.length;
    stats.flushes++;
    stats.maxFlushRows = Math.max(stats.maxFlushRows, rows);
    const started = performance.now();
    let eventsStored = false;
    const events = insertEvents(batch.eventTuples).then(() => {
      eventsStored = true;
    });
    // TRICKY: the users/accounts reads overlap the events insert, but their rows are inserted
    // only once the events insert succeeded: if it fails, the retry below writes each write's
    // dimension rows only after its own events are stored, so a rejected write never leaves
    // users/accounts rows behind.
    const dims = withDimensionLock(async () => {
      const merged = await mergeDimensions(batch.userPatches, batch.accountPatches);
      await events;
      await insertDimensions(merged);
    });
    // NOTE: both settle before anything is decided, so a retry never overlaps this insert.
    const [eventsResult, dimsResult] = await Promise.allSettled([events, dims]);
    const failure = eventsResult.status === 'rejected' ? eventsResult : dimsResult.status === 'rejected' ? dimsResult : undefined;
    if (!failure) {
      stats.eventRows += rows;
      logger.debug({ batch: batch.id, rows, ms: Math.round(performance.now() - started) }, 'sink flush');
      for (const part of batch.parts) part.resolve();
      batch.resolve();
      return;
    }
    const err: unknown = failure.reason;
    stats.failedFlushes++;
    if (eventsStored) stats.eventRows += rows;
    // NOTE: a single write has nothing to isolate (unless the partition limit refused it, see
    // insertEvents), and a transport error (no ClickHouse error code: down, timeout) is not
    // about the rows — retrying would only double the load on a struggling server.
    const retry = isServerError(err) && (batch.parts.length > 1 || isTooManyPartitions(err));
    logger.error(
      { batch: batch.id, rows, writes: batch.parts.length, eventsStored, ...safeErrorFields(err) },
      retry ? 'sink flush failed; retrying its writes one by one' : 'sink flush failed',
    );
    if (retry) await retryPerWrite(batch, eventsStored);
    else rejectAll(batch, batch.parts, err);
  }

  function rejectAll(batch: Batch, parts: readonly WritePart[], err: unknown): void {
    for (const part of parts) part.reject(err);
    stats.failedWrites += parts.length;
    batch.reject(err);
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
   */
  async function retryPerWrite(batch: Batch, eventsStored: boolean): Promise<void> {
    let firstError: unknown;
    let failed = 0;
    for (const [i, part] of batch.parts.entries()) {
      const rows = part.eventTo - part.eventFrom;
      try {
        if (!eventsStored) await insertEvents(batch.eventTuples.slice(part.eventFrom, part.eventTo), { liftPartitionLimit: true });
        // the write's users/accounts only once its events are stored (see runFlush)
        await withDimensionLock(async () =>
          insertDimensions(
            await mergeDimensions(
              batch.userPatches.slice(part.userFrom, part.userTo),
              batch.accountPatches.slice(part.accountFrom, part.accountTo),
            ),
          ),
        );
      } catch (err) {
        failed++;
        stats.failedWrites++;
        firstError ??= err;
        // NOTE: never the error message: ClickHouse parse errors quote the row (user ids, IPs).
        logger.error({ batch: batch.id, write: i, rows, ...safeErrorFields(err) }, 'sink write failed');
        part.reject(err);
        if (!isServerError(err)) {
          const rest = batch.parts.slice(i + 1);
          failed += rest.length;
          rejectAll(batch, rest, err);
          break;
        }
        continue;
      }
      if (!eventsStored) stats.eventRows += rows;
      part.resolve();
    }
    logger.warn({ batch: batch.id, writes: batch.parts.length, failedWrites: failed }, 'sink flush retried per write');
    // NOTE: batch.done is what flush()/stop() report; a no-op if rejectAll() settled it.
    if (failed > 0) batch.reject(firstError);
    else batch.resolve();
  }

  /**
   * liftPartitionLimit: max_partitions_per_insert_block = 0 (no limit). Events partition by
   * the client's month, and a write of old or backfilled events may span > 100 months, which
   * ClickHouse refuses as a whole ("Too many partitions for single INSERT block", code 252).
   * NOTE: sent only on the per-write retry, not on every group commit: on chDB a per-query
   * setting becomes a `SET …; INSERT …` multi-statement, measured ~15–45 % slower per 5000-row
   * insert. On HTTP the setting is per request; on chDB the SET is session-level and stays on
   * that connection — harmless: it is the sink's own connection (embedded-runner.ts gives
   * analyst queries their own), the value is always the same, and later inserts on it (group
   * commits, dead letters) merely keep the lifted limit.
   */
  async function insertEvents(tuples: unknown[][], opts: { liftPartitionLimit?: boolean } = {}): Promise<void> {
    if (tuples.length === 0) return;
    await client.insert({
      table: tables.events,
      values: tuples,
      format: 'JSONCompactEachRow',
      columns: [...EVENT_COLUMNS],
      ...(opts.liftPartitionLimit ? { clickhouse_settings: { max_partitions_per_insert_block: '0' } } : {}),
    });
  }

  /** Reads the stored users/accounts for these patches and merges; rows that changed only. */
  async function mergeDimensions(userPatches: UserPatch[], accountPatches: AccountPatch[]): Promise<MergedDimensions> {
    const at = now();
    const userGroups = groupPatches(userPatches, userKey);
    const accountGroups = groupPatches(accountPatches, accountKey);
    const keys = [
      ...[...userGroups.keys()].map((k) => lookupRow('user', k)),
      ...[...accountGroups.keys()].map((k) => lookupRow('account', k)),
    ];
    const empty = { storedUsers: new Map<string, UserRow>(), storedAccounts: new Map<string, AccountRow>() };
    // NOTE: one lookup session for both reads, which run one after the other in it
    const { storedUsers, storedAccounts } =
      keys.length === 0
        ? empty
        : await withIdLookup(dimClient, ['subject', 'tenant_id', 'id'], keys, async (lookup) => ({
            storedUsers: userGroups.size > 0 ? await readLatest<UserRow>(lookup, 'user', tables.users, 'user_id', USER_ROW_COLUMNS, userKey, parseUserRow) : empty.storedUsers,
            storedAccounts:
              accountGroups.size > 0
                ? await readLatest<AccountRow>(lookup, 'account', tables.accounts, 'account_id', ACCOUNT_ROW_COLUMNS, accountKey, parseAccountRow)
                : empty.storedAccounts,
          }));
    const users: UserRow[] = [];
    for (const [k, patches] of userGroups) {
      const row = mergeUser(storedUsers.get(k) ?? null, patches, at);
      if (row) users.push(row);
    }
    const accounts: AccountRow[] = [];
    for (const [k, patches] of accountGroups) {
      const row = mergeAccount(storedAccounts.get(k) ?? null, patches, at);
      if (row) accounts.push(row);
    }
    return { users, accounts };
  }

  async function insertDimensions({ users, accounts }: MergedDimensions): Promise<void> {
    await Promise.all([
      users.length > 0
        ? dimClient.insert({
            table: tables.users,
            values: users.map((r) => USER_ROW_COLUMNS.map((c) => r[c])),
            format: 'JSONCompactEachRow',
            columns: [...USER_ROW_COLUMNS],
          })
        : undefined,
      accounts.length > 0
        ? dimClient.insert({
            table: tables.accounts,
            values: accounts.map((r) => ACCOUNT_ROW_COLUMNS.map((c) => r[c])),
            format: 'JSONCompactEachRow',
            columns: [...ACCOUNT_ROW_COLUMNS],
          })
        : undefined,
    ]);
    stats.userRows += users.length;
    stats.accountRows += accounts.length;
  }

  /**
   * Latest stored row per key of `subject` in the lookup table, tombstones included (so no
   * FINAL, which would hide them). The keys are the lookup's data: never in the query text or URL.
   */
  async function readLatest<R>(
    lookup: LookupSession,
    subject: 'user' | 'account',
    table: string,
    idColumn: 'user_id' | 'account_id',
    columns: readonly string[],
    key: (r: R) => string,
    parse: (raw: Record<string, unknown>) => R,
  ): Promise<Map<string, R>> {
    const out = new Map<string, R>();
    const select = columns
      .map((c) => (TIME_COLUMNS.has(c) ? `toUnixTimestamp64Milli(${c}) AS ${c}` : c))
      .join(', ');
    const found = await lookup.rows<Record<string, unknown>>(
      `SELECT ${select} FROM ${table} WHERE (tenant_id, ${idColumn}) GLOBAL IN (SELECT tenant_id, id FROM ${lookup.table} WHERE subject = '${subject}') ` +
        `ORDER BY version DESC, updated_at DESC LIMIT 1 BY tenant_id, ${idColumn}`,
    );
    for (const raw of found) {
      const row = parse(raw);
      out.set(key(row), row);
    }
    return out;
  }

  function write(events: readonly CleanEvent[]): Promise<void> {
    if (stopping) return Promise.reject(new Error('ClickHouse sink is stopped'));
    if (events.length === 0) return Promise.resolve();
    const waits: Promise<void>[] = [];
    let batch: Batch | undefined;
    let part: WritePart | undefined;
    const endPart = (): void => {
      if (!batch || !part) return;
      part.eventTo = batch.eventTuples.length;
      part.userTo = batch.userPatches.length;
      part.accountTo = batch.accountPatches.length;
    };
    try {
      for (const e of events) {
        if (!batch || batch.eventTuples.length >= maxRows) {
          endPart();
          if (batch && batch === open) seal(batch);
          open ??= newBatch();
          batch = open;
          const from = { eventFrom: batch.eventTuples.length, userFrom: batch.userPatches.length, accountFrom: batch.accountPatches.length };
          part = { ...from, eventTo: from.eventFrom, userTo: from.userFrom, accountTo: from.accountFrom, ...settle() };
          batch.parts.push(part);
          waits.push(part.done);
        }
        batch.eventTuples.push(toEventTuple(e));
        const up = toUserPatch(e);
        if (up) batch.userPatches.push(up);
        const ap = toAccountPatch(e);
        if (ap) batch.accountPatches.push(ap);
      }
    } catch (err) {
      // NOTE: a mapping bug must not leave half a write buffered without a waiter; the rows
      // already buffered still flush (idempotent) but this write reports the failure.
      endPart();
      pump();
      return Promise.reject(err);
    }
    endPart();
    if (batch && batch === open && batch.eventTuples.length >= maxRows) seal(batch);
    pump();
    return waits.length === 1 ? (waits[0] as Promise<void>) : Promise.all(waits).then(() => undefined);
  }

  async function writeDeadLetters(rows: readonly DeadLetterInput[]): Promise<void> {
    if (rows.length === 0) return;
    const at = now();
    await client.insert({ table: tables.deadLetters, values: rows.map((d) => toDeadLetterRow(d, at)), format: 'JSONEachRow' });
    stats.deadLetterRows += rows.length;
  }

  async function flush(): Promise<void> {
    const waits: Promise<void>[] = [];
    if (open) {
      open.due = true;
      waits.push(open.done);
    }
    for (const b of sealed) waits.push(b.done);
    pump();
    // NOTE: wait for every flush to settle before reporting the first failure, so stop()
    // never returns while an insert is still running.
    const settled = await Promise.allSettled([...waits, ...inFlight]);
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  function stop(): Promise<void> {
    stopping ??= (async () => {
      await flush();
      logger.info({ ...stats }, 'ClickHouse sink stopped');
    })();
    return stopping;
  }

  return { write, writeDeadLetters, flush, stop, stats: () => ({ ...stats }) };
}

const TIME_COLUMNS: ReadonlySet<string> = new Set(['first_seen', 'last_seen', 'updated_at']);

/** A `tenant \0 id` key of dimension-merge.ts as a lookup row. */
function lookupRow(subject: 'user' | 'account', k: string): { subject: string; tenant_id: string; id: string } {
  const i = k.indexOf('\u0000');
  return { subject, tenant_id: k.slice(0, i), id: k.slice(i + 1) };
}

function str(x: unknown): string {
  return typeof x === 'string' ? x : String(x);
}
function nstr(x: unknown): string | null {
  return x === null || x === undefined ? null : str(x);
}
function map(x: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (x && typeof x === 'object') for (const [k, v] of Object.entries(x)) out[k] = str(v);
  return out;
}
function flag(x: unknown): 0 | 1 {
  return toNumber(x) ? 1 : 0;
}

function parseUserRow(r: Record<string, unknown>): UserRow {
  return {
    tenant_id: str(r.tenant_id),
    user_id: str(r.user_id),
    email: nstr(r.email),
    first_name: nstr(r.first_name),
    last_name: nstr(r.last_name),
    name: nstr(r.name),
    phone: nstr(r.phone),
    title: nstr(r.title),
    company: nstr(r.company),
    account_id: nstr(r.account_id),
    traits: map(r.traits),
    first_seen: toNumber(r.first_seen),
    last_seen: toNumber(r.last_seen),
    identity_anonymized: flag(r.identity_anonymized),
    version: toNumber(r.version),
    is_deleted: flag(r.is_deleted),
    updated_at: toNumber(r.updated_at),
  };
}

function parseAccountRow(r: Record<string, unknown>): AccountRow {
  return {
    tenant_id: str(r.tenant_id),
    account_id: str(r.account_id),
    domain: nstr(r.domain),
    source: r.source === 'explicit' ? 'explicit' : 'email_domain',
    name: nstr(r.name),
    traits: map(r.traits),
    version: toNumber(r.version),
    is_deleted: flag(r.is_deleted),
    updated_at: toNumber(r.updated_at),
  };
}

/** "Too many partitions for single INSERT block" (TOO_MANY_PARTS, also used for parts backlog). */
function isTooManyPartitions(err: unknown): boolean {
  return safeErrorFields(err).code === '252';
}

/** A ClickHouse server error (it has a ClickHouse error code), i.e. not a transport error. */
function isServerError(err: unknown): boolean {
  return safeErrorFields(err).code !== undefined;
}

