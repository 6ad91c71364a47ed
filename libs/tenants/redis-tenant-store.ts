// The fleet's tenant registry and flags in Redis (DESIGN.md §3): the TenantStore every collector,
// enricher and anonymizer replica shares, served synchronously from an in-process cache that
// pub/sub and a frequent cursor poll keep fresh, and that fails closed when it cannot be.
//
// Data model and the Lua scripts that keep it consistent: redis-tenant-records.ts.
import { Redis } from 'ioredis';
import { z } from 'zod';
import { closeRedis, openRedis, redisConnectionOfUrl, redisStartupProblem, type RedisConnectionConfig } from '../config/redis-connection.js';
import type { Logger } from '../core/logger.js';
import { applyFlagsPatch, DEFAULT_FLAGS, flagsPatchSchema, tenantFlagsSchema, type FlagsPatch } from './flags.js';
import {
  addApiKey,
  addWriteKey,
  generateApiKey,
  generateWriteKey,
  keyHash,
  newKeyId,
  removeKey,
  tenantKeysSchema,
  WRITE_KEY_RE,
  type ApiKeyEntry,
  type TenantKeys,
  type WriteKeyEntry,
} from './tenant-keys.js';
import { CREATE, decodeFlags, decodeTenant, KEYS_UPDATE, parseSyncReply, PATCH, stringTuple, SYNC, type DecodedTenant, type Script } from './redis-tenant-records.js';
import { TENANT_ID_RE, TenantStoreError, type ApiKeyMatch, type Tenant, type TenantStore } from './tenant-store.js';

export { decodeFlags, decodeKeys, decodeTenant, type DecodedTenant, type TenantFields } from './redis-tenant-records.js';

/**
 * TRICKY — why a flag flip is safe although replicas learn of it late.
 * The anonymizer classifies an event by its `received_at` (collector clock) against the
 * `anonymizeSince` it holds. A replica holding the old flags (off) while processing an event
 * with received_at ≥ anonymizeSince would write a clear id. We rule that out with two rules:
 *  1. Freshness: get() answers only while the cache is confirmed current as of a sync that
 *     *started* at most `staleAfterMs` ago (a sync reads Redis after it starts, so the cache
 *     holds every mutation written before that start); otherwise undefined (fail closed).
 *  2. Forward stamp: switching anonymization on stamps anonymizeSince = T + propagationWindowMs,
 *     where the write must land in Redis (checked by the script against Redis TIME) no later
 *     than T + writeSlack, writeSlack = propagationWindowMs − staleAfterMs − 2·maxClockSkewMs.
 * Proof sketch (clocks of collectors, replicas and Redis within maxClockSkewMs of each other):
 * a replica lacking the flip last synced at t0 with its read at Redis time r < write time w,
 * r ≥ t0 − skew; it processes events only while now ≤ t0 + staleAfterMs, and those events have
 * received_at ≤ now + skew ≤ t0 + staleAfterMs + skew. anonymizeSince = T + W ≥ w − slack + W
 * > t0 − skew − slack + W = t0 + staleAfterMs + skew ≥ received_at. So every event it passes in
 * clear was received before anonymizeSince: it is outside the flag's forward window anyway.
 * Consequences: the admin sees `anonymizeSince` up to 2 s in the future (events received until
 * then keep their clear id, as the forward-only rule allows); `propagationWindowMs` (2 s) is the
 * propagation contract; pub/sub only makes the usual case fast (ms).
 * Switching off, key versions, IP policy, piiTraits etc. carry no forward stamp: replicas apply
 * them within staleAfterMs (turning anonymization off late over-protects, it cannot leak).
 */
export const DEFAULT_PROPAGATION_WINDOW_MS = 2_000;
export const DEFAULT_STALE_AFTER_MS = 1_000;
export const DEFAULT_MAX_CLOCK_SKEW_MS = 250;
export const DEFAULT_RECONCILE_INTERVAL_MS = 250;
/** Below this the admin's request would have too little time to land in Redis. */
export const MIN_WRITE_SLACK_MS = 100;

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

export interface TimingBudget {
  propagationWindowMs: number;
  staleAfterMs: number;
  maxClockSkewMs: number;
  reconcileIntervalMs: number;
}

/** The time a flip has to land in Redis after it was stamped; throws when the budget is unsound. */
export function writeSlackMs(b: TimingBudget): number {
  const slack = b.propagationWindowMs - b.staleAfterMs - 2 * b.maxClockSkewMs;
  if (slack < MIN_WRITE_SLACK_MS) {
    throw new TenantStoreError(
      `tenant store timing unsound: propagationWindowMs (${b.propagationWindowMs}) must exceed staleAfterMs (${b.staleAfterMs}) + 2 × maxClockSkewMs (${b.maxClockSkewMs}) by at least ${MIN_WRITE_SLACK_MS} ms, or a replica with stale flags could pass an event received after anonymizeSince`,
    );
  }
  if (b.reconcileIntervalMs <= 0 || b.reconcileIntervalMs * 2 > b.staleAfterMs) {
    throw new TenantStoreError(
      `tenant store timing unsound: reconcileIntervalMs (${b.reconcileIntervalMs}) must be positive and at most half of staleAfterMs (${b.staleAfterMs}), or flags would flap to unavailable between syncs`,
    );
  }
  return slack;
}

export const writeKeyHash = keyHash;

const changeMessageSchema = z.object({ tenantId: z.string(), rev: z.number().int() });

/** A cached tenant; `tenant` is absent when its record in Redis is invalid (fail closed). */
interface Entry {
  rev: number;
  tenant: Tenant | undefined;
}

const MAX_PATCH_ATTEMPTS = 50;
const MAX_CREATE_ATTEMPTS = 5;

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
  const prefix = opts.keyPrefix ?? 'tracklane:';
  const log = opts.logger.child({ component: 'redis-tenant-store' });
  const channel = `${prefix}tenants`;
  const keys = {
    tenant: (id: string) => `${prefix}tenant:${id}`,
    writeKey: (hash: string) => `${prefix}writekey:${hash}`,
    tenants: `${prefix}tenants`,
    rev: `${prefix}rev`,
  };

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

  // --- cache -------------------------------------------------------------------------------
  let byId = new Map<string, Entry>();
  /** sha256 of a write key → tenant; of an API key → tenant and entry (valid records only) */
  let byWriteKey = new Map<string, Tenant>();
  let byApiKey = new Map<string, ApiKeyMatch>();
  /** Counter value the cache is complete up to (-1: needs a full load). */
  let cursor = -1;

  // --- health ------------------------------------------------------------------------------
  // NOTE: `epoch` moves on every connectivity change; only a full load started in the current
  // epoch makes the store healthy again, and a sync started in an older epoch is discarded.
  let epoch = 0;
  let healthyEpoch = -1;
  let mainUp = main.status === 'ready';
  let subUp = sub === null;
  let lastSyncAt: number | null = null;
  let closed = false;
  const waiters = new Set<() => void>();

  function available(): boolean {
    return !closed && mainUp && subUp && healthyEpoch === epoch && lastSyncAt !== null && clock() - lastSyncAt <= budget.staleAfterMs;
  }

  function connectionLost(which: 'main' | 'subscriber', event: string): void {
    const wasAvailable = available();
    if (which === 'main') mainUp = false;
    else subUp = false;
    epoch++;
    if (wasAvailable) log.warn({ connection: which, event }, 'redis connection lost: tenant flags unavailable (fail closed) until a full reload');
    if (event === 'end' && !closed) log.error({ connection: which }, 'redis client gave up reconnecting: tenant flags stay unavailable');
  }

  // --- sync --------------------------------------------------------------------------------
  let syncing = false;
  let syncAgain = false;
  let fullWanted = true;
  let syncFailing = false;

  function requestSync(full: boolean): void {
    if (full) fullWanted = true;
    if (closed) return;
    if (syncing) {
      syncAgain = true;
      return;
    }
    syncing = true;
    void (async () => {
      try {
        do {
          syncAgain = false;
          await syncOnce();
        } while (syncAgain && !closed);
      } finally {
        syncing = false;
      }
    })();
  }

  async function syncOnce(): Promise<void> {
    if (!mainUp) return;
    const startedEpoch = epoch;
    const startedAt = clock();
    const full = fullWanted || cursor < 0;
    let reply: unknown;
    try {
      // TRICKY: bounded wait: a black-holed connection emits no event, and a sync stuck on it
      // would block every later one; staleness already fails get() closed meanwhile.
      reply = await withTimeout(evalScript(SYNC, [keys.rev, keys.tenants], [full ? '-1' : String(cursor), `${prefix}tenant:`]), budget.staleAfterMs);
    } catch (err) {
      noteFailure(err);
      // NOTE: logged once per run of failures, not once per poll.
      if (!closed && !syncFailing) log.warn({ err: errorSummary(err) }, 'tenant registry sync failing; retrying every poll');
      syncFailing = true;
      return;
    }
    if (syncFailing && !closed) log.info('tenant registry sync recovered');
    syncFailing = false;
    if (closed || epoch !== startedEpoch) {
      if (!closed) syncAgain = true;
      return;
    }
    const parsed = parseSyncReply(reply);
    if (parsed === undefined) {
      log.error('tenant registry sync: unexpected reply shape');
      return;
    }
    if (parsed.full) applyFull(parsed.records, parsed.counter);
    else for (const r of parsed.records) applyRecord(r.tenantId, r.decoded);
    cursor = parsed.counter;
    if (parsed.full) {
      fullWanted = false;
      if (healthyEpoch !== epoch) log.info({ tenants: byId.size }, 'tenant registry loaded from redis');
      healthyEpoch = epoch;
    }
    lastSyncAt = lastSyncAt === null ? startedAt : Math.max(lastSyncAt, startedAt);
    if (available()) for (const w of [...waiters]) w();
  }

  function applyFull(records: { tenantId: string; decoded: DecodedTenant }[], counter: number): void {
    const previous = byId;
    byId = new Map();
    byWriteKey = new Map();
    byApiKey = new Map();
    for (const r of records) applyRecord(r.tenantId, r.decoded);
    // NOTE: a local mutation that landed after the snapshot was read may already be cached
    // with a higher rev (or be a tenant the snapshot predates): keep it.
    for (const [id, e] of previous) {
      const loaded = byId.get(id);
      if (loaded === undefined ? e.rev > counter : e.rev > loaded.rev) setEntry(id, e);
    }
  }

  function applyRecord(tenantId: string, decoded: DecodedTenant): void {
    const current = byId.get(tenantId);
    if (current !== undefined && current.rev >= decoded.rev) return;
    if (!decoded.ok) {
      // NOTE: the problem names fields and expectations only, never values.
      log.error({ tenantId, rev: decoded.rev, problem: decoded.problem }, 'tenant record in redis is invalid: its flags are unavailable (fail closed) until it is fixed');
    }
    setEntry(tenantId, { rev: decoded.rev, tenant: decoded.ok ? decoded.tenant : undefined });
  }

  function setEntry(tenantId: string, entry: Entry): void {
    const current = byId.get(tenantId)?.tenant;
    if (current !== undefined) {
      for (const k of current.keys.writeKeys) if (byWriteKey.get(k.hash)?.tenantId === tenantId) byWriteKey.delete(k.hash);
      for (const k of current.keys.apiKeys) if (byApiKey.get(k.hash)?.tenant.tenantId === tenantId) byApiKey.delete(k.hash);
    }
    byId.set(tenantId, entry);
    const next = entry.tenant;
    if (next === undefined) return;
    for (const k of next.keys.writeKeys) byWriteKey.set(k.hash, next);
    for (const k of next.keys.apiKeys) byApiKey.set(k.hash, { tenant: next, key: k });
  }

  async function evalScript(s: Script, scriptKeys: string[], args: string[]): Promise<unknown> {
    try {
      return s.readOnly
        ? await main.evalsha_ro(s.sha, scriptKeys.length, ...scriptKeys, ...args)
        : await main.evalsha(s.sha, scriptKeys.length, ...scriptKeys, ...args);
    } catch (err) {
      if (!(err instanceof Error && err.message.startsWith('NOSCRIPT'))) throw err;
      return s.readOnly ? main.eval_ro(s.text, scriptKeys.length, ...scriptKeys, ...args) : main.eval(s.text, scriptKeys.length, ...scriptKeys, ...args);
    }
  }

  // --- connection events -------------------------------------------------------------------
  const onMainReady = (): void => {
    mainUp = true;
    lastError = '';
    epoch++;
    requestSync(true);
  };
  const onMainClose = (): void => connectionLost('main', 'close');
  const onMainReconnecting = (): void => connectionLost('main', 'reconnecting');
  const onMainEnd = (): void => connectionLost('main', 'end');
  // NOTE: a reconnect loop repeats the same error many times a second; log it when it changes.
  let lastError = '';
  const onError = (err: unknown): void => {
    noteFailure(err);
    const summary = errorSummary(err);
    if (closed || summary.message === lastError) return;
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
    sub.on('close', () => connectionLost('subscriber', 'close'));
    sub.on('reconnecting', () => connectionLost('subscriber', 'reconnecting'));
    sub.on('end', () => connectionLost('subscriber', 'end'));
    // NOTE: ioredis resubscribes by itself on reconnect; subscribing again here is harmless
    // and lets us know when the subscription is back, after which a full reload covers
    // whatever was published while we were away (pub/sub is at-most-once).
    sub.on('ready', () => {
      void sub.subscribe(channel).then(
        () => {
          if (closed) return;
          subUp = true;
          epoch++;
          requestSync(true);
        },
        (err: unknown) => {
          noteFailure(err);
          log.warn({ err: errorSummary(err) }, 'tenant channel subscribe failed');
        },
      );
    });
    sub.on('message', (ch: string, message: string) => {
      if (ch !== channel) return;
      let parsed: z.infer<typeof changeMessageSchema> | undefined;
      try {
        parsed = changeMessageSchema.parse(JSON.parse(message));
      } catch {
        log.warn('ignoring malformed message on the tenant channel');
        requestSync(false);
        return;
      }
      // NOTE: the incremental sync re-reads every tenant changed after the cursor, this one included.
      if (parsed.rev > cursor) requestSync(false);
    });
  }

  const poll = setInterval(() => requestSync(false), budget.reconcileIntervalMs);
  poll.unref();
  if (mainUp) requestSync(true);

  // --- store -------------------------------------------------------------------------------
  const pending = new Set<Promise<unknown>>();
  let closing: Promise<void> | null = null;
  function track<T>(fn: () => Promise<T>): Promise<T> {
    if (closed || closing !== null) return Promise.reject(new TenantStoreError('tenant store is closed'));
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
    closed = true;
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

  /**
   * Read-modify-write of a tenant's keys under its rev (like patchFlags): `change` returns the
   * new keys and the write-key index entry to add or drop, or undefined to write nothing.
   * Resolves undefined for an unknown tenant or when `change` declined.
   */
  function changeKeys<T>(
    tenantId: string,
    change: (current: TenantKeys) => { keys: TenantKeys; result: T; addIndex?: string; deleteIndex?: string } | undefined,
  ): Promise<T | undefined> {
    return track(async () => {
      for (let attempt = 0; attempt < MAX_PATCH_ATTEMPTS; attempt++) {
        const [flagsJson, rev, createdAt, storedHash, storedKeys] = await main.hmget(keys.tenant(tenantId), 'flags', 'rev', 'createdAt', 'writeKeyHash', 'keys');
        if (rev === null || rev === undefined) return undefined;
        const decoded = decodeTenant(tenantId, { createdAt: createdAt ?? '', writeKeyHash: storedHash ?? '', flags: flagsJson ?? '', rev, keys: storedKeys ?? '' });
        if (!decoded.ok) throw new TenantStoreError(`tenant ${tenantId}'s record in redis is invalid (${decoded.problem}); fix the record by hand`);
        const changed = change(decoded.tenant.keys);
        if (changed === undefined) return undefined;
        const nextJson = JSON.stringify(tenantKeysSchema.parse(changed.keys));
        const reply = await evalScript(
          KEYS_UPDATE,
          [keys.tenant(tenantId), keys.tenants, keys.rev, keys.writeKey(changed.addIndex ?? 'none'), keys.writeKey(changed.deleteIndex ?? 'none')],
          [rev, nextJson, tenantId, channel, changed.addIndex ? '1' : '', changed.deleteIndex ? '1' : ''],
        );
        const [status = '', value = ''] = stringTuple(reply, 1);
        if (status === '0') return undefined;
        if (status === '-1' || status === '-3') {
          // -1: another mutation came first; -3: a drawn write key collides (192 bits: never)
          await delay(Math.floor(Math.random() * 5 * Math.min(attempt + 1, 10)));
          continue;
        }
        applyRecord(tenantId, decodeTenant(tenantId, { createdAt: createdAt ?? '', writeKeyHash: storedHash ?? '', flags: flagsJson ?? '', rev: value, keys: nextJson }));
        return changed.result;
      }
      throw new TenantStoreError(`could not change keys of tenant ${tenantId}: too much contention`);
    });
  }

  const store: RedisTenantStore = {
    get(tenantId) {
      if (!available()) return undefined;
      return byId.get(tenantId)?.tenant?.flags;
    },
    getTenant: (tenantId) => byId.get(tenantId)?.tenant,
    tenantByWriteKey(writeKey) {
      // NOTE: served from the cache even while flags are unavailable: write keys never change
      // and the stages behind the collector fail closed on flags themselves.
      if (!WRITE_KEY_RE.test(writeKey)) return undefined;
      return byWriteKey.get(keyHash(writeKey));
    },
    // NOTE: unlike write keys, API keys fail closed: while the cache may have missed a
    // revocation (stale, disconnected), no API key is recognised.
    apiKey: (secret) => (available() ? byApiKey.get(keyHash(secret)) : undefined),
    credentialsAvailable: available,
    list() {
      const out: Tenant[] = [];
      for (const e of byId.values()) if (e.tenant !== undefined) out.push(e.tenant);
      return out;
    },
    available,
    waitUntilAvailable,
    absentSince: (tenantId) => (byId.has(tenantId) || !available() ? undefined : (lastSyncAt ?? undefined)),

    createTenant(tenantId) {
      if (!TENANT_ID_RE.test(tenantId)) {
        return Promise.reject(new TenantStoreError('tenant id must match ^[a-z0-9][a-z0-9_-]{0,62}$'));
      }
      return track(async () => {
        for (let attempt = 0; attempt < MAX_CREATE_ATTEMPTS; attempt++) {
          const writeKey = generateWriteKey();
          const hash = keyHash(writeKey);
          const now = clock();
          const initialKeys: TenantKeys = { writeKeys: [{ keyId: newKeyId('wk'), hash, createdAt: now }], apiKeys: [] };
          const reply = await evalScript(
            CREATE,
            [keys.tenant(tenantId), keys.writeKey(hash), keys.tenants, keys.rev],
            [tenantId, String(now), hash, JSON.stringify(DEFAULT_FLAGS), channel, JSON.stringify(initialKeys)],
          );
          const [status = '', createdAt = '', storedHash = '', flags = '', rev = '', storedKeys = ''] = stringTuple(reply, 6);
          if (status === '-1') continue; // a 192-bit collision: astronomically unlikely; draw again
          const decoded = decodeTenant(tenantId, { createdAt, writeKeyHash: storedHash, flags, rev, keys: storedKeys });
          applyRecord(tenantId, decoded);
          if (!decoded.ok) throw new TenantStoreError(`tenant ${tenantId} exists but its record in redis is invalid: ${decoded.problem}`);
          if (status === '1') {
            log.info({ tenantId, rev: decoded.rev }, 'tenant created');
            return { tenant: decoded.tenant, created: true, writeKey };
          }
          return { tenant: decoded.tenant, created: false };
        }
        throw new TenantStoreError('could not draw an unused write key');
      });
    },

    patchFlags(tenantId, patch, now) {
      let parsedPatch: FlagsPatch;
      try {
        parsedPatch = flagsPatchSchema.parse(patch);
      } catch (err) {
        return Promise.reject(err);
      }
      return track(async () => {
        let stampBase = now;
        for (let attempt = 0; attempt < MAX_PATCH_ATTEMPTS; attempt++) {
          // NOTE: read from Redis, not the cache: the cache may trail another replica's write,
          // and the rev check below makes the read-modify-write atomic.
          const [flagsJson, rev, createdAt, storedHash, storedKeys] = await main.hmget(keys.tenant(tenantId), 'flags', 'rev', 'createdAt', 'writeKeyHash', 'keys');
          if (rev === null || rev === undefined) return undefined;
          const current = decodeFlags(flagsJson ?? '');
          if (!current.ok) {
            log.error({ tenantId, problem: current.problem }, 'cannot patch flags: the stored flags are invalid');
            throw new TenantStoreError(`flags of tenant ${tenantId} in redis are invalid (${current.problem}); fix the record by hand`);
          }
          // NOTE: applyFlagsPatch stamps anonymizeSince with the time it is given: the forward stamp (see TRICKY above).
          const next = tenantFlagsSchema.parse(applyFlagsPatch(current.flags, parsedPatch, stampBase + budget.propagationWindowMs));
          const stamped = next.anonymizeSince !== null && next.anonymizeSince !== current.flags.anonymizeSince;
          const nextJson = JSON.stringify(next);
          const reply = await evalScript(PATCH, [keys.tenant(tenantId), keys.tenants, keys.rev], [rev, nextJson, tenantId, channel, stamped ? String(stampBase + slackMs) : '']);
          const [status = '', value = ''] = stringTuple(reply, 1);
          if (status === '0') return undefined;
          if (status === '-1') {
            await delay(Math.floor(Math.random() * 5 * Math.min(attempt + 1, 10)));
            continue;
          }
          if (status === '-2') {
            // The write came too late for its stamp: restamp from Redis's own clock.
            stampBase = Math.max(stampBase, Number(value));
            log.warn({ tenantId }, 'flag write landed after its stamp allowed; restamping anonymizeSince');
            continue;
          }
          // NOTE: our own cache learns at once (read-your-writes on this replica); others via pub/sub.
          applyRecord(tenantId, decodeTenant(tenantId, { createdAt: createdAt ?? '', writeKeyHash: storedHash ?? '', flags: nextJson, rev: value, keys: storedKeys ?? '' }));
          return next;
        }
        throw new TenantStoreError(`could not patch flags of tenant ${tenantId}: too much contention`);
      });
    },

    createWriteKey(tenantId) {
      return changeKeys(tenantId, (current) => {
        const writeKey = generateWriteKey();
        const entry: WriteKeyEntry = { keyId: newKeyId('wk'), hash: keyHash(writeKey), createdAt: clock() };
        return { keys: addWriteKey(current, entry), addIndex: entry.hash, result: { entry, writeKey } };
      });
    },

    createApiKey(tenantId, request) {
      return changeKeys(tenantId, (current) => {
        const key = generateApiKey();
        const entry: ApiKeyEntry = { keyId: newKeyId('ak'), name: request.name, scopes: [...request.scopes], hash: keyHash(key), createdAt: clock() };
        return { keys: addApiKey(current, entry), result: { entry, key } };
      });
    },

    async revokeKey(tenantId, keyId) {
      let known = false;
      const outcome = await changeKeys(tenantId, (current) => {
        known = true;
        const next = removeKey(current, keyId);
        if (next === undefined) return undefined;
        const removed = current.writeKeys.find((k) => k.keyId === keyId);
        return { keys: next, ...(removed ? { deleteIndex: removed.hash } : {}), result: 'revoked' as const };
      });
      return outcome ?? (known ? 'no_key' : 'no_tenant');
    },

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

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Error name and message only: ioredis errors carry no secrets, but never the command args. */
function errorSummary(err: unknown): { name: string; message: string } {
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
