// Cookieless mode on the server (issue 16 item 2). An event with neither userId nor anonymousId
// (the tag with `storage: 'none'` sends none) gets a daily anonymous id:
//   `d-` + base64url(HMAC-SHA256(salt of the UTC day, tenant ‖ day ‖ IP ‖ user agent))[0..22]
// The salt is random, shared by every collector (Redis in the fleet, in process when embedded)
// and deleted when its day ends: the same visitor's ids of two days are unrelated, and once a day
// is over nobody — the operator included — can recompute that day's ids from an IP and a user
// agent. The IP is the request's (or context.ip), used here in memory before the tenant's IP
// policy (enricher) decides what of it is stored.
import { createHmac, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { CollectionControl, ControlVerdicts } from './controls.js';

/** The random salt of one UTC day, the same for every collector that asks. */
export interface DailySalts {
  /** `day` is YYYY-MM-DD (UTC); the salt is gone at `endsAt` (ms, the next midnight UTC). */
  saltOf(day: string, endsAt: number): Promise<Buffer>;
}

export const DAILY_ID_PREFIX = 'd-';
const SALT_BYTES = 32;

export function utcDay(ms: number): { day: string; endsAt: number } {
  const d = new Date(ms);
  const start = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
  return { day: d.toISOString().slice(0, 10), endsAt: start + 86_400_000 };
}

export function dailyId(salt: Buffer, tenantId: string, day: string, ip: string | null, userAgent: string | null): string {
  const mac = createHmac('sha256', salt).update(tenantId).update('\u0000').update(day).update('\u0000').update(ip ?? '').update('\u0000').update(userAgent ?? '');
  // NOTE: 132 bits: no two visitors of one tenant and day collide in practice
  return DAILY_ID_PREFIX + mac.digest('base64url').slice(0, 22);
}

/** Embedded mode: the day's salt in memory; a new day forgets the previous ones (and a restart, today's). */
export function memoryDailySalts(): DailySalts {
  const salts = new Map<string, Buffer>();
  return {
    async saltOf(day) {
      let salt = salts.get(day);
      if (salt === undefined) {
        for (const [d, old] of salts) {
          // NOTE: a request stamped just before midnight that asks after one stamped just after
          // gets a salt of its own: its visitor splits in two for that instant, nothing worse
          if (d < day) {
            old.fill(0);
            salts.delete(d);
          }
        }
        salt = randomBytes(SALT_BYTES);
        salts.set(day, salt);
      }
      return salt;
    },
  };
}

/**
 * The fleet: `<prefix>daily-salt:<day>` in Redis, made by the first collector to need it with
 * `SET … NX GET EXAT <next midnight>` (one round trip; whoever loses the race reads the winner's),
 * then cached in process until the day ends.
 */
export function redisDailySalts(redis: Redis, keyPrefix: string): DailySalts {
  const cached = new Map<string, Promise<Buffer>>();
  return {
    saltOf(day, endsAt) {
      let salt = cached.get(day);
      if (salt === undefined) {
        for (const d of cached.keys()) if (d < day) cached.delete(d);
        salt = fetchSalt(day, endsAt);
        cached.set(day, salt);
        // NOTE: a failed read is not cached: the next request tries Redis again
        salt.catch(() => cached.get(day) === salt && cached.delete(day));
      }
      return salt;
    },
  };

  async function fetchSalt(day: string, endsAt: number): Promise<Buffer> {
    const mine = randomBytes(SALT_BYTES).toString('hex');
    const existing = await redis.set(`${keyPrefix}daily-salt:${day}`, mine, 'EXAT', Math.ceil(endsAt / 1000), 'NX', 'GET');
    return Buffer.from(existing ?? mine, 'hex');
  }
}

/** Derives the daily id of every event that has neither id; the others pass untouched. */
export function dailyIdControl(salts: DailySalts): CollectionControl {
  return {
    name: 'daily-ids',
    async apply(tenant, events, now): Promise<ControlVerdicts> {
      if (events.every((e) => e.event.user_id !== null || e.event.anonymous_id !== null)) return { kept: [...events], dropped: [], retry: [] };
      const { day, endsAt } = utcDay(now);
      let salt: Buffer;
      try {
        salt = await salts.saltOf(day, endsAt);
      } catch {
        // NOTE: without the shared salt the id would differ per collector: the client retries
        const anonymous = events.filter((e) => e.event.user_id === null && e.event.anonymous_id === null);
        return {
          kept: events.filter((e) => e.event.user_id !== null || e.event.anonymous_id !== null),
          dropped: [],
          retry: anonymous.map((e) => ({ eventId: e.event.event_id, reason: 'the daily salt of cookieless ids cannot be read' })),
        };
      }
      const kept = events.map((e) =>
        e.event.user_id !== null || e.event.anonymous_id !== null
          ? e
          : { ...e, event: { ...e.event, anonymous_id: dailyId(salt, tenant.tenantId, day, e.event.ip, e.event.user_agent) } },
      );
      return { kept, dropped: [], retry: [] };
    },
  };
}
