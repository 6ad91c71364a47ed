// The sync state machine behind a replica's tenant cache (DESIGN.md §3): whether the cache may
// answer (fail closed otherwise), which sync runs next, and what each connection change, change
// message and sync outcome does. Pure: the adapter (redis-tenant-store.ts) feeds it events and
// clock readings, runs the syncs it plans, and carries out the effects it returns.
import { z } from 'zod';
import { createTenantCache, type TenantCacheView, type TenantRecord } from './tenant-cache.js';

export type Connection = 'main' | 'subscriber';
export type LossEvent = 'close' | 'reconnecting' | 'end';
/** An error as name and message only (never a command's arguments). */
export interface ErrorSummary {
  name: string;
  message: string;
}

/** What the adapter must do after an input, in order. */
export type SyncEffect =
  /** No sync loop is running: start one (beginRound … while shouldRunAgain(), then syncsEnded()). */
  | { kind: 'start-syncing' }
  /** available() just became true after a sync: wake whoever waits for it. */
  | { kind: 'available' }
  /** The store was available and no longer is (fail closed until a full reload). */
  | { kind: 'flags-lost'; connection: Connection; event: LossEvent }
  /** A client gave up reconnecting while the store is open: flags stay unavailable. */
  | { kind: 'gave-up'; connection: Connection }
  /** The first failure of a run of failing syncs (later ones of the run are silent). */
  | { kind: 'sync-failing'; err: ErrorSummary }
  /** A sync answered after a run of failures. */
  | { kind: 'sync-recovered' }
  /** The first full load of the current epoch completed. */
  | { kind: 'loaded'; tenants: number }
  /** An invalid record was taken: that tenant's flags are unavailable until it is fixed. */
  | { kind: 'invalid-record'; tenantId: string; rev: number; problem: string }
  /** A sync's reply could not be parsed; nothing was applied. */
  | { kind: 'unexpected-reply' }
  /** A change message could not be parsed; an incremental sync was requested instead. */
  | { kind: 'malformed-message' };

/** One sync to run: read every tenant changed after `from`, or all of them when `from` is -1. */
export interface SyncPlan {
  from: number;
  startedAt: number;
  /** The epoch the sync started in; its reply is discarded in any later one. */
  epoch: number;
}

/** A sync's reply: a consistent snapshot of the registry up to `counter`. */
export interface SyncReply {
  counter: number;
  /** every tenant (a full load), or only those changed after the plan's cursor */
  full: boolean;
  records: TenantRecord[];
}

export interface TenantSyncOptions {
  /** The cache answers only while its last confirmed sync started at most this long ago. */
  staleAfterMs: number;
  /** Whether the main connection is ready when the machine is created. */
  mainReady: boolean;
  /** Whether a subscriber connection must be subscribed before the cache may answer. */
  subscriber: boolean;
}

export interface TenantSyncMachine {
  readonly cache: TenantCacheView;
  readonly closed: boolean;
  /** Open, both connections up, fully loaded in the current epoch, and synced within staleAfterMs. */
  available(now: number): boolean;
  /** The start of the last confirmed sync when `tenantId` is not cached and the store is available. */
  absentSince(tenantId: string, now: number): number | undefined;
  /** The first full load, when the main connection is already ready. */
  start(): SyncEffect[];
  /** The main connection is ready (again). */
  mainReady(): SyncEffect[];
  /** The subscriber is subscribed (again) to the change channel. */
  subscribed(): SyncEffect[];
  connectionLost(connection: Connection, event: LossEvent, now: number): SyncEffect[];
  /** The cursor poll's tick. */
  pollTick(): SyncEffect[];
  /** A message on the change channel. */
  message(text: string): SyncEffect[];
  /** Begins a round of the sync loop: the sync to run, or none while the main connection is down. */
  beginRound(now: number): SyncPlan | undefined;
  syncFailed(err: ErrorSummary): SyncEffect[];
  /** `reply` undefined: it had an unexpected shape. */
  syncReplied(plan: SyncPlan, reply: SyncReply | undefined, now: number): SyncEffect[];
  /** After a round: whether the loop must run another (a sync was requested meanwhile). */
  shouldRunAgain(): boolean;
  /** The loop has ended. */
  syncsEnded(): void;
  /** A record this replica just wrote (read-your-writes). */
  localWrite(record: TenantRecord): SyncEffect[];
  close(): void;
}

const changeMessageSchema = z.object({ tenantId: z.string(), rev: z.number().int() });

export function createTenantSyncMachine(opts: TenantSyncOptions): TenantSyncMachine {
  const cache = createTenantCache();
  /** Counter value the cache is complete up to (-1: needs a full load). */
  let cursor = -1;

  // NOTE: `epoch` moves on every connectivity change; only a full load started in the current
  // epoch makes the store healthy again, and a sync started in an older epoch is discarded.
  let epoch = 0;
  let healthyEpoch = -1;
  let mainUp = opts.mainReady;
  let subUp = !opts.subscriber;
  let lastSyncAt: number | null = null;
  let closed = false;

  // NOTE: at most one sync runs at a time; requests meanwhile fold into one more round.
  let syncing = false;
  let syncAgain = false;
  let fullWanted = true;
  let syncFailing = false;

  function available(now: number): boolean {
    return !closed && mainUp && subUp && healthyEpoch === epoch && lastSyncAt !== null && now - lastSyncAt <= opts.staleAfterMs;
  }

  function request(full: boolean): SyncEffect[] {
    if (full) fullWanted = true;
    if (closed) return [];
    if (syncing) {
      syncAgain = true;
      return [];
    }
    syncing = true;
    return [{ kind: 'start-syncing' }];
  }

  function invalid(taken: readonly TenantRecord[]): SyncEffect[] {
    const out: SyncEffect[] = [];
    for (const { tenantId, decoded } of taken) if (!decoded.ok) out.push({ kind: 'invalid-record', tenantId, rev: decoded.rev, problem: decoded.problem });
    return out;
  }

  return {
    cache,
    get closed() {
      return closed;
    },
    available,
    absentSince: (tenantId, now) => (cache.has(tenantId) || !available(now) ? undefined : (lastSyncAt ?? undefined)),

    start: () => (mainUp ? request(true) : []),

    mainReady() {
      mainUp = true;
      epoch++;
      return request(true);
    },

    // NOTE: pub/sub is at-most-once: a full reload covers whatever was published while unsubscribed.
    subscribed() {
      if (closed) return [];
      subUp = true;
      epoch++;
      return request(true);
    },

    connectionLost(connection, event, now) {
      const wasAvailable = available(now);
      if (connection === 'main') mainUp = false;
      else subUp = false;
      epoch++;
      const out: SyncEffect[] = [];
      if (wasAvailable) out.push({ kind: 'flags-lost', connection, event });
      if (event === 'end' && !closed) out.push({ kind: 'gave-up', connection });
      return out;
    },

    pollTick: () => request(false),

    message(text) {
      let parsed: z.infer<typeof changeMessageSchema>;
      try {
        parsed = changeMessageSchema.parse(JSON.parse(text));
      } catch {
        return [{ kind: 'malformed-message' }, ...request(false)];
      }
      // NOTE: the incremental sync re-reads every tenant changed after the cursor, this one included.
      return parsed.rev > cursor ? request(false) : [];
    },

    beginRound(now) {
      syncAgain = false;
      if (!mainUp) return undefined;
      return { from: fullWanted || cursor < 0 ? -1 : cursor, startedAt: now, epoch };
    },

    syncFailed(err) {
      const first = !closed && !syncFailing;
      syncFailing = true;
      return first ? [{ kind: 'sync-failing', err }] : [];
    },

    syncReplied(plan, reply, now) {
      const out: SyncEffect[] = [];
      if (syncFailing && !closed) out.push({ kind: 'sync-recovered' });
      syncFailing = false;
      if (closed || epoch !== plan.epoch) {
        if (!closed) syncAgain = true;
        return out;
      }
      if (reply === undefined) return [...out, { kind: 'unexpected-reply' }];
      if (reply.full) out.push(...invalid(cache.replaceAll(reply.records, reply.counter)));
      else out.push(...invalid(reply.records.filter((r) => cache.apply(r))));
      cursor = reply.counter;
      if (reply.full) {
        fullWanted = false;
        if (healthyEpoch !== epoch) out.push({ kind: 'loaded', tenants: cache.size });
        healthyEpoch = epoch;
      }
      // TRICKY: freshness counts from the sync's start, not its end: the cache holds every
      // mutation written before that start (propagation-budget.ts). It never moves back.
      lastSyncAt = lastSyncAt === null ? plan.startedAt : Math.max(lastSyncAt, plan.startedAt);
      if (available(now)) out.push({ kind: 'available' });
      return out;
    },

    shouldRunAgain: () => syncAgain && !closed,

    syncsEnded() {
      syncing = false;
    },

    localWrite: (record) => (cache.apply(record) ? invalid([record]) : []),

    close() {
      closed = true;
    },
  };
}
