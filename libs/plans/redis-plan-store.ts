// The fleet's plan store: tenants' plans in Redis, read on every collector from a process-local
// copy. A change is published (pub/sub: the usual case, milliseconds) and counted in a revision
// key every replica polls each second (the fallback when a message is missed), so every collector
// serves a change within about 2 s. While Redis cannot be read the last loaded plans are served;
// before the first successful load `get` answers undefined (the control asks for a retry).
//
// Data: `<prefix>plans` (hash tenant → {version, updatedAt, plan}), `<prefix>plans:versions`
// (hash tenant → last version, kept across removals), `<prefix>plans:rev` (counter of changes),
// channel `<prefix>plans:changed` (message: the tenant id).
import { Redis } from 'ioredis';
import { closeRedis, openRedis, type RedisConnectionConfig } from '../config/redis-connection.js';
import type { Logger } from '../core/logger.js';
import { storedPlanSchema, type StoredPlan } from './plan-schema.js';
import type { PlanStore } from './plan-store.js';

export interface RedisPlanStoreOptions {
  /** an ioredis client (left open by close()) or the connection settings (the store owns its clients) */
  redis: Redis | RedisConnectionConfig;
  /** default `tracklane:` (TRACKLANE_REDIS_PREFIX) */
  keyPrefix?: string;
  logger: Logger;
  /** how often the revision is polled; default 1,000 ms */
  reloadIntervalMs?: number;
  /** open() waits at most this long for the first load (then returns; events wait for it); default 3 s */
  openTimeoutMs?: number;
  /** false: no subscriber, the poll alone (tests model a replica that misses every message) */
  pubsub?: boolean;
}

const PUT = `
local v = redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
redis.call('HSET', KEYS[1], ARGV[1], '{"version":' .. v .. ',"updatedAt":' .. ARGV[3] .. ',"plan":' .. ARGV[2] .. '}')
redis.call('INCR', KEYS[3])
redis.call('PUBLISH', ARGV[4], ARGV[1])
return v`;

const REMOVE = `
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
redis.call('INCR', KEYS[3])
redis.call('PUBLISH', ARGV[2], ARGV[1])
return 1`;

/** a record that does not parse: its tenant's events wait (retry) until it is fixed */
const INVALID = Symbol('invalid');

export async function openRedisPlanStore(opts: RedisPlanStoreOptions): Promise<PlanStore> {
  const prefix = opts.keyPrefix ?? 'tracklane:';
  const keys = { plans: `${prefix}plans`, versions: `${prefix}plans:versions`, rev: `${prefix}plans:rev`, channel: `${prefix}plans:changed` };
  const log = opts.logger.child({ component: 'redis-plan-store' });
  const owns = !(opts.redis instanceof Redis);
  // NOTE: commands time out: a black-holed connection must not hold a reload (or an admin's PUT) forever
  const main = opts.redis instanceof Redis ? opts.redis : openRedis(opts.redis, 'plan-store', { maxRetriesPerRequest: 1, commandTimeout: 2_000 });
  const sub = opts.pubsub === false ? null : main.duplicate({ connectionName: 'tracklane-plan-store-sub' });
  // NOTE: connection errors are told by the reload's own warning (once per outage), not per retry
  if (owns) main.on('error', () => undefined);
  sub?.on('error', () => undefined);

  let plans: Map<string, StoredPlan | typeof INVALID> | null = null;
  let loadedRev: string | null = null;
  let reloading: Promise<void> | null = null;
  let again = false;
  let failing = false;
  let closed = false;

  async function loadOnce(): Promise<void> {
    const res = await main.multi().get(keys.rev).hgetall(keys.plans).exec();
    const [revReply, allReply] = res ?? [];
    if (!revReply || !allReply || revReply[0] || allReply[0]) throw revReply?.[0] ?? allReply?.[0] ?? new Error('no reply');
    const next = new Map<string, StoredPlan | typeof INVALID>();
    for (const [tenantId, text] of Object.entries((allReply[1] ?? {}) as Record<string, string>)) {
      const parsed = parseRecord(text);
      if (parsed === null) log.error({ tenantId }, 'tracking plan record in redis is invalid: the tenant\'s events are answered retry until it is fixed');
      next.set(tenantId, parsed ?? INVALID);
    }
    plans = next;
    loadedRev = typeof revReply[1] === 'string' ? revReply[1] : null;
    if (failing) log.info('tracking plans readable again');
    failing = false;
  }

  /** one reload at a time; a request during one runs another after it (it may have missed the change) */
  function reload(): Promise<void> {
    if (reloading) {
      again = true;
      return reloading;
    }
    reloading = (async () => {
      try {
        do {
          again = false;
          await loadOnce();
        } while (again && !closed);
      } catch (err) {
        if (!failing) log.warn({ error: err instanceof Error ? err.name : 'Error' }, plans === null ? 'tracking plans not loaded from redis yet: events of every tenant are answered retry' : 'tracking plans cannot be reloaded from redis: serving the last loaded ones');
        failing = true;
      } finally {
        reloading = null;
      }
    })();
    return reloading;
  }

  async function poll(): Promise<void> {
    if (closed) return;
    try {
      const rev = await main.get(keys.rev);
      if (plans === null || rev !== loadedRev) await reload();
    } catch {
      if (plans === null) await reload();
    }
  }

  if (sub !== null) {
    sub.on('message', (ch: string) => {
      if (ch === keys.channel) void reload();
    });
    // NOTE: ioredis resubscribes on reconnect; a message missed meanwhile is caught by the poll
    void sub.subscribe(keys.channel).catch(() => undefined);
  }
  const timer = setInterval(() => void poll(), opts.reloadIntervalMs ?? 1_000);
  timer.unref();

  const first = reload();
  await Promise.race([first, new Promise((r) => setTimeout(r, opts.openTimeoutMs ?? 3_000).unref())]);

  return {
    get(tenantId) {
      if (plans === null) return undefined;
      const p = plans.get(tenantId);
      return p === INVALID ? undefined : (p ?? null);
    },
    async put(tenantId, plan, now) {
      const version = Number(await main.eval(PUT, 3, keys.plans, keys.versions, keys.rev, tenantId, JSON.stringify(plan), String(Math.trunc(now)), keys.channel));
      // NOTE: read-your-writes on this replica: the answer's GET sees the plan just stored
      await reload();
      return { version, updatedAt: Math.trunc(now), plan };
    },
    async remove(tenantId) {
      const removed = Number(await main.eval(REMOVE, 3, keys.plans, keys.versions, keys.rev, tenantId, keys.channel)) === 1;
      await reload();
      return removed;
    },
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      await reloading;
      if (sub !== null) await closeRedis(sub);
      if (owns) await closeRedis(main);
    },
  };
}

function parseRecord(text: string): StoredPlan | null {
  try {
    const r = storedPlanSchema.safeParse(JSON.parse(text));
    return r.success ? r.data : null;
  } catch {
    return null;
  }
}
