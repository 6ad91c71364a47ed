// The fleet's tenant registry and flags in Redis (DESIGN.md §3): the TenantStore every collector,
// enricher and anonymizer replica shares, served synchronously from an in-process cache that
// pub/sub and a frequent cursor poll keep fresh, and that fails closed when it cannot be.
//
// This module adapts Redis to the pure sync machine (tenant-sync-machine.ts): it turns client
// events, change messages and poll ticks into the machine's inputs, runs the syncs it plans and
// carries out its effects. Data model and scripts: redis-tenant-records.ts; writes:
// redis-tenant-mutations.ts; the timing rules that make a late flip safe: propagation-budget.ts.
import { Redis } from 'ioredis';
import { closeRedis, openRedis, redisConnectionOfUrl, redisStartupProblem, type RedisConnectionConfig } from '../config/redis-connection.js';
import type { Logger } from '../core/logger.js';
import {
  DEFAULT_MAX_CLOCK_SKEW_MS,
  DEFAULT_PROPAGATION_WINDOW_MS,
  DEFAULT_RECONCILE_INTERVAL_MS,
  DEFAULT_STALE_AFTER_MS,
  writeSlackMs,
  type TimingBudget,
} from './propagation-budget.js';
import { createRedisTenantMutations } from './redis-tenant-mutations.js';
import { parseSyncReply, registryKeys, runScript, SYNC } from './redis-tenant-records.js';
import { keyHash, WRITE_KEY_RE } from './tenant-keys.js';
import { TenantStoreError, type TenantStore } from './tenant-store.js';
import { createTenantSyncMachine, type Connection, type ErrorSummary, type LossEvent, type SyncEffect, type SyncPlan } from './tenant-sync-machine.js';

export {
  DEFAULT_MAX_CLOCK_SKEW_MS,
  DEFAULT_PROPAGATION_WINDOW_MS,
  DEFAULT_RECONCILE_INTERVAL_MS,
  DEFAULT_STALE_AFTER_MS,
  MIN_WRITE_SLACK_MS,
  writeSlackMs,
  type TimingBudget,
} from './propagation-budget.js';
export { decodeFlags, decodeKeys, decodeTenant, type DecodedTenant, type TenantFields } from './redis-tenant-records.js';

export interface RedisTenantStoreOptions {
  /**
   * An ioredis client (left open by close()), or a URL or the connection settings
   * (libs/config/redis-connection.ts): the store opens and owns the client.
   */
  redis: Redis | string | RedisConnectionConfig;
  /** Default `tracklane:`; tests use a unique prefix each. */
  keyPrefix?: string;
  logger: Logger;
  /** Clock for createdAt and freshness; defaults to Date.now. */
  now?: () => number;
  /** get() returns undefined once the last confirmed sync started longer ago than this. */
  staleAfterMs?: number;
  /** Cursor poll period (cheap: one EVALSHA answering one integer when nothing changed). */
  reconcileIntervalMs?: number;
  /** anonymizeSince is stamped this far after the flip; the cross-replica propagation contract. */
  propagationWindowMs?: number;
  /** Assumed bound on clock differences between collectors, workers and Redis (NTP). */
  maxClockSkewMs?: number;
  /**
   * false: no pub/sub subscriber, the cursor poll alone keeps the cache fresh (tests use it to
   * model a replica that misses every message). Default true.
   */
  pubsub?: boolean;
  /** open() rejects when the first full load has not completed within this. Default 10 s. */
  openTimeoutMs?: number;
}

export interface RedisTenantStore extends TenantStore {
  /** Whether get() currently answers (connected, subscribed, synced within staleAfterMs). */
  available(): boolean;
  /** Resolves true as soon as available(), false after `timeoutMs`. */
  waitUntilAvailable(timeoutMs: number): Promise<boolean>;
  /** See FlagSource.absentSince: the last full sync's start for a tenant Redis does not hold. */
  absentSince(tenantId: string): number | undefined;
}

export const writeKeyHash = keyHash;

/**
 * Connects, subscribes, loads every tenant, and resolves once get() can answer; rejects with a
 * TenantStoreError (after releasing what it opened) when that takes longer than openTimeoutMs
 * or the timing options are unsound.
 */
export async function openRedisTenantStore(opts: RedisTenantStoreOptions): Promise<RedisTenantStore> {
  const budget: TimingBudget = {
    propagationWindowMs: opts.propagationWindowMs ?? DEFAULT_PROPAGATION_WINDOW_MS,
    staleAfterMs: opts.staleAfterMs ?? DEFAULT_STALE_AFTER_MS,
    maxClockSkewMs: opts.maxClockSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS,
    reconcileIntervalMs: opts.reconcileIntervalMs ?? DEFAULT_RECONCILE_INTERVAL_MS,
  };
  const slackMs = writeSlackMs(budget);
  const clock = opts.now ?? Date.now;
  const log = opts.logger.child({ component: 'redis-tenant-store' });
  const keys = registryKeys(opts.keyPrefix ?? 'tracklane:');

  const ownsMain = !(opts.redis instanceof Redis);
  // NOTE: few retries per command: a mutation during an outage should fail to the admin rather
  // than hang; the cache's own syncs are retried by the poll anyway.
  const main =
    opts.redis instanceof Redis
      ? opts.redis
      : openRedis(typeof opts.redis === 'string' ? redisConnectionOfUrl(opts.redis) : opts.redis, 'tenant-store', { maxRetriesPerRequest: 2 });
  // A subscribed connection cannot run commands, so the subscriber is always a connection of our own.
  const sub = opts.pubsub === false ? null : main.duplicate(ownsMain ? { connectionName: 'tracklane-tenant-store-sub' } : {});
  /**
   * The last error of a connection or a sync, as name, message and code only (an ioredis reply
   * error also holds its command's arguments: AUTH's are the password); the cause of open()'s
   * rejection, so start-up can say what is wrong (redisStartupProblem).
   */
  let lastFailure: Error | undefined;
  const noteFailure = (err: unknown): void => {
    lastFailure = sanitizedError(err);
  };

  const sync = createTenantSyncMachine({ staleAfterMs: budget.staleAfterMs, mainReady: main.status === 'ready', subscriber: sub !== null });
  const available = (): boolean => sync.available(clock());
  const waiters = new Set<() => void>();

  function handle(effects: readonly SyncEffect[]): void {
    for (const e of effects) {
      switch (e.kind) {
        case 'start-syncing':
          void runSyncs();
          break;
        case 'available':
          for (const w of [...waiters]) w();
          break;
        case 'flags-lost':
          log.warn({ connection: e.connection, event: e.event }, 'redis connection lost: tenant flags unavailable (fail closed) until a full reload');
          break;
        case 'gave-up':
          log.error({ connection: e.connection }, 'redis client gave up reconnecting: tenant flags stay unavailable');
          break;
        case 'sync-failing':
          log.warn({ err: e.err }, 'tenant registry sync failing; retrying every poll');
          break;
        case 'sync-recovered':
          log.info('tenant registry sync recovered');
          break;
        case 'loaded':
          log.info({ tenants: e.tenants }, 'tenant registry loaded from redis');
          break;
        case 'invalid-record':
          // NOTE: the problem names fields and expectations only, never values.
          log.error({ tenantId: e.tenantId, rev: e.rev, problem: e.problem }, 'tenant record in redis is invalid: its flags are unavailable (fail closed) until it is fixed');
          break;
        case 'unexpected-reply':
          log.error('tenant registry sync: unexpected reply shape');
          break;
        case 'malformed-message':
          log.warn('ignoring malformed message on the tenant channel');
          break;
      }
    }
  }

  async function runSyncs(): Promise<void> {
    try {
      do {
        const plan = sync.beginRound(clock());
        if (plan !== undefined) await runSync(plan);
      } while (sync.shouldRunAgain());
    } finally {
      sync.syncsEnded();
    }
  }

  async function runSync(plan: SyncPlan): Promise<void> {
    let reply: unknown;
    try {
      // TRICKY: bounded wait: a black-holed connection emits no event, and a sync stuck on it
      // would block every later one; staleness already fails get() closed meanwhile.
      reply = await withTimeout(runScript(main, SYNC, [keys.rev, keys.tenants], [String(plan.from), keys.tenantPrefix]), budget.staleAfterMs);
    } catch (err) {
      noteFailure(err);
      handle(sync.syncFailed(errorSummary(err)));
      return;
    }
    handle(sync.syncReplied(plan, parseSyncReply(reply), clock()));
  }

  // --- connection events -------------------------------------------------------------------
  const lost = (connection: Connection, event: LossEvent) => (): void => handle(sync.connectionLost(connection, event, clock()));
  const onMainReady = (): void => {
    lastError = '';
    handle(sync.mainReady());
  };
  const onMainClose = lost('main', 'close');
  const onMainReconnecting = lost('main', 'reconnecting');
  const onMainEnd = lost('main', 'end');
  // NOTE: a reconnect loop repeats the same error many times a second; log it when it changes.
  let lastError = '';
  const onError = (err: unknown): void => {
    noteFailure(err);
    const summary = errorSummary(err);
    if (sync.closed || summary.message === lastError) return;
    lastError = summary.message;
    log.warn({ err: summary }, 'redis client error');
  };
  main.on('ready', onMainReady);
  main.on('close', onMainClose);
  main.on('reconnecting', onMainReconnecting);
  main.on('end', onMainEnd);
  main.on('error', onError);

  if (sub !== null) {
    sub.on('error', onError);
    sub.on('close', lost('subscriber', 'close'));
    sub.on('reconnecting', lost('subscriber', 'reconnecting'));
    sub.on('end', lost('subscriber', 'end'));
    // NOTE: ioredis resubscribes by itself on reconnect; subscribing again here is harmless
    // and lets us know when the subscription is back.
    sub.on('ready', () => {
      void sub.subscribe(keys.channel).then(
        () => handle(sync.subscribed()),
        (err: unknown) => {
          noteFailure(err);
          log.warn({ err: errorSummary(err) }, 'tenant channel subscribe failed');
        },
      );
    });
    sub.on('message', (ch: string, message: string) => {
      if (ch === keys.channel) handle(sync.message(message));
    });
  }

  const poll = setInterval(() => handle(sync.pollTick()), budget.reconcileIntervalMs);
  poll.unref();
  handle(sync.start());

  // --- store -------------------------------------------------------------------------------
  const pending = new Set<Promise<unknown>>();
  let closing: Promise<void> | null = null;
  function track<T>(fn: () => Promise<T>): Promise<T> {
    if (sync.closed || closing !== null) return Promise.reject(new TenantStoreError('tenant store is closed'));
    const p = fn();
    pending.add(p);
    const done = (): void => {
      pending.delete(p);
    };
    p.then(done, done);
    return p;
  }

  function waitUntilAvailable(timeoutMs: number): Promise<boolean> {
    if (available()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const finish = (value: boolean): void => {
        clearTimeout(timer);
        waiters.delete(onReady);
        resolve(value);
      };
      const onReady = (): void => finish(true);
      const timer = setTimeout(() => finish(available()), timeoutMs);
      waiters.add(onReady);
    });
  }

  async function doClose(): Promise<void> {
    await Promise.allSettled([...pending]);
    sync.close();
    clearInterval(poll);
    for (const w of [...waiters]) w();
    main.off('ready', onMainReady);
    main.off('close', onMainClose);
    main.off('reconnecting', onMainReconnecting);
    main.off('end', onMainEnd);
    main.off('error', onError);
    // NOTE: a client still reconnecting may fail once more while it quits: not "unhandled"
    if (ownsMain) main.on('error', () => undefined);
    sub?.on('error', () => undefined);
    if (sub !== null) await closeRedis(sub);
    if (ownsMain) await closeRedis(main);
  }

  const mutations = createRedisTenantMutations({
    redis: main,
    keys,
    clock,
    log,
    propagationWindowMs: budget.propagationWindowMs,
    slackMs,
    // NOTE: our own cache learns at once (read-your-writes on this replica); others via pub/sub.
    applyLocal: (tenantId, decoded) => handle(sync.localWrite({ tenantId, decoded })),
    track,
  });

  const { cache } = sync;
  const store: RedisTenantStore = {
    ...mutations,
    get: (tenantId) => (available() ? cache.tenant(tenantId)?.flags : undefined),
    getTenant: (tenantId) => cache.tenant(tenantId),
    tenantByWriteKey(writeKey) {
      // NOTE: served from the cache even while flags are unavailable: write keys never change
      // and the stages behind the collector fail closed on flags themselves.
      if (!WRITE_KEY_RE.test(writeKey)) return undefined;
      return cache.byWriteKeyHash(keyHash(writeKey));
    },
    // NOTE: unlike write keys, API keys fail closed: while the cache may have missed a
    // revocation (stale, disconnected), no API key is recognised.
    apiKey: (secret) => (available() ? cache.byApiKeyHash(keyHash(secret)) : undefined),
    credentialsAvailable: available,
    list: () => cache.list(),
    available,
    waitUntilAvailable,
    absentSince: (tenantId) => sync.absentSince(tenantId, clock()),
    close() {
      closing ??= doClose();
      return closing;
    },
  };

  // NOTE: a lazyConnect client would otherwise wait for a first command that never comes.
  for (const c of [main, sub]) if (c !== null && c.status === 'wait') c.connect().catch(() => undefined);
  const ok = await waitUntilAvailable(opts.openTimeoutMs ?? 10_000);
  if (!ok) {
    await store.close();
    const problem = redisStartupProblem(lastFailure);
    throw new TenantStoreError(`tenant registry in redis is not reachable (no full load within openTimeoutMs)${problem ? `: ${problem}` : ''}`, lastFailure ? { cause: lastFailure } : undefined);
  }
  return store;
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Error name and message only: ioredis errors carry no secrets, but never the command args. */
function errorSummary(err: unknown): ErrorSummary {
  return err instanceof Error ? { name: err.name, message: err.message } : { name: 'Error', message: String(err) };
}

/** A copy of an error with its name, message and code only (see lastFailure). */
function sanitizedError(err: unknown): Error {
  const { name, message } = errorSummary(err);
  const copy = new Error(message);
  copy.name = name;
  const code = err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
  return code === undefined ? copy : Object.assign(copy, { code });
}
