// The sink stage's writer: buffers CleanEvents from many concurrent callers and group-commits
// them to ClickHouse (events + merged users/accounts snapshots), resolving each caller only
// once the flush holding all of its rows is durable (DESIGN.md §6).
import { TupleParam, type ClickHouseClient } from '@clickhouse/client';
import type { Logger } from '../core/logger.js';
import type { CleanEvent } from '../events/envelope.js';
import { toNumber } from '../clickhouse/client.js';
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
  failedFlushes: number;
  eventRows: number;
  userRows: number;
  accountRows: number;
  deadLetterRows: number;
  /** largest flush so far, in event rows */
  maxFlushRows: number;
}

export interface ClickHouseSink {
  /** Resolves once every event is in ClickHouse; rejects if the flush holding any failed. */
  write(events: readonly CleanEvent[]): Promise<void>;
  /** Inserted directly (no batching): dead letters are rare and must not wait on events. */
  writeDeadLetters(rows: readonly DeadLetterInput[]): Promise<void>;
  /** Flushes everything buffered so far; rejects if any of those flushes failed. */
  flush(): Promise<void>;
  /** Refuses new writes, flushes the rest. Idempotent. */
  stop(): Promise<void>;
  stats(): ClickHouseSinkStats;
}

interface Batch {
  readonly id: number;
  readonly eventTuples: unknown[][];
  readonly userPatches: UserPatch[];
  readonly accountPatches: AccountPatch[];
  /** the age limit passed: flush as soon as a slot is free */
  due: boolean;
  timer: NodeJS.Timeout | undefined;
  readonly done: Promise<void>;
  resolve(): void;
  reject(err: unknown): void;
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
  // NOTE: users/accounts read-modify-write runs one flush at a time (see dimension-merge.ts),
  // while events inserts of different flushes may overlap.
  let dimensionChain: Promise<void> = Promise.resolve();

  function newBatch(): Batch {
    let resolve!: () => void;
    let reject!: (err: unknown) => void;
    const done = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // NOTE: a batch nobody awaits any more (all writers gone) must not crash the process.
    done.catch(() => undefined);
    const batch: Batch = {
      id: nextId++,
      eventTuples: [],
      userPatches: [],
      accountPatches: [],
      due: false,
      timer: undefined,
      done,
      resolve,
      reject,
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
    try {
      const dims = dimensionChain.then(() => writeDimensions(batch.userPatches, batch.accountPatches));
      // the chain continues even if this flush's dimension write fails
      dimensionChain = dims.catch(() => undefined);
      await Promise.all([insertEvents(batch.eventTuples), dims]);
      stats.eventRows += rows;
      logger.debug({ batch: batch.id, rows, ms: Math.round(performance.now() - started) }, 'sink flush');
      batch.resolve();
    } catch (err) {
      stats.failedFlushes++;
      logger.error({ batch: batch.id, rows, err: errorSummary(err) }, 'sink flush failed');
      batch.reject(err);
    }
  }

  async function insertEvents(tuples: unknown[][]): Promise<void> {
    if (tuples.length === 0) return;
    await client.insert({ table: tables.events, values: tuples, format: 'JSONCompactEachRow', columns: [...EVENT_COLUMNS] });
  }

  async function writeDimensions(userPatches: UserPatch[], accountPatches: AccountPatch[]): Promise<void> {
    const at = now();
    const userGroups = groupPatches(userPatches, userKey);
    const accountGroups = groupPatches(accountPatches, accountKey);
    const [storedUsers, storedAccounts] = await Promise.all([
      readLatest<UserRow>(tables.users, 'user_id', USER_ROW_COLUMNS, userGroups, userKey, parseUserRow),
      readLatest<AccountRow>(tables.accounts, 'account_id', ACCOUNT_ROW_COLUMNS, accountGroups, accountKey, parseAccountRow),
    ]);
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
   * Latest stored row per key, tombstones included (so no FINAL, which would hide them).
   * Keys travel as a query parameter: ids never appear in the query text.
   */
  async function readLatest<R>(
    table: string,
    idColumn: 'user_id' | 'account_id',
    columns: readonly string[],
    groups: Map<string, unknown[]>,
    key: (r: R) => string,
    parse: (raw: Record<string, unknown>) => R,
  ): Promise<Map<string, R>> {
    const out = new Map<string, R>();
    if (groups.size === 0) return out;
    const keys = [...groups.keys()].map((k) => {
      const i = k.indexOf('\u0000');
      return new TupleParam([k.slice(0, i), k.slice(i + 1)]);
    });
    const select = columns
      .map((c) => (TIME_COLUMNS.has(c) ? `toUnixTimestamp64Milli(${c}) AS ${c}` : c))
      .join(', ');
    const rs = await dimClient.query({
      query:
        `SELECT ${select} FROM ${table} WHERE (tenant_id, ${idColumn}) IN {keys:Array(Tuple(String, String))} ` +
        `ORDER BY version DESC, updated_at DESC LIMIT 1 BY tenant_id, ${idColumn}`,
      query_params: { keys },
      format: 'JSONEachRow',
    });
    for (const raw of await rs.json<Record<string, unknown>>()) {
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
    try {
      for (const e of events) {
        if (!batch || batch.eventTuples.length >= maxRows) {
          if (batch && batch === open) seal(batch);
          open ??= newBatch();
          batch = open;
          waits.push(batch.done);
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
      pump();
      return Promise.reject(err);
    }
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

/** Error text for logs: the message only, never the rows it was about. */
function errorSummary(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message.slice(0, 500)}` : String(err).slice(0, 500);
}
