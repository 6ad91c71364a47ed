// Per-user tracking preferences (issue 16 item 4, PX's `trackUsage`): a tenant switches tracking
// off for one of its users, whose later events the collector drops (`tracking_off`, counted)
// until it is switched on again. Users are kept as keyed hashes of (tenant, user id) — the same
// TRACKLANE_ID_HASH_KEY hash as erasure requests (libs/privacy/subject-hash.ts) — never in clear.
// Only users with tracking off are held: every other user is tracked, the default.
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import type { SubjectHash } from '../privacy/subject-hash.js';
import { writeFileAtomic } from '../tenants/file-tenant-store.js';
import { perEventControl, type CollectionControl } from './controls.js';

export interface TrackingPreference {
  trackUsage: boolean;
  /** when it last changed (ms); null: never set */
  updatedAt: number | null;
}

export interface TrackingPreferences {
  /**
   * Sync, on the hot path: whether a user's events are tracked; undefined while the store does
   * not know (the fleet's before its first load): the event is then retried, never stored.
   */
  tracked(tenantId: string, userId: string): boolean | undefined;
  get(tenantId: string, userId: string): Promise<TrackingPreference>;
  /** Takes effect on this process at once, on every other within the store's propagation time. */
  set(tenantId: string, userId: string, trackUsage: boolean, now: number): Promise<TrackingPreference>;
  close(): Promise<void>;
}

/** tenant → user hash → when tracking was switched off. The state every store keeps in process. */
export class TrackingOffSet {
  private readonly byTenant = new Map<string, Map<string, number>>();

  constructor(private readonly hash: SubjectHash) {}

  hashOf(tenantId: string, userId: string): string {
    return this.hash(tenantId, userId);
  }

  /** NOTE: a tenant with nobody switched off costs one Map lookup per event: no hashing. */
  isOff(tenantId: string, userId: string): boolean {
    const users = this.byTenant.get(tenantId);
    return users !== undefined && users.has(this.hash(tenantId, userId));
  }

  offSince(tenantId: string, userHash: string): number | undefined {
    return this.byTenant.get(tenantId)?.get(userHash);
  }

  apply(tenantId: string, userHash: string, off: number | null): void {
    let users = this.byTenant.get(tenantId);
    if (off === null) {
      users?.delete(userHash);
      if (users?.size === 0) this.byTenant.delete(tenantId);
      return;
    }
    if (users === undefined) this.byTenant.set(tenantId, (users = new Map()));
    users.set(userHash, off);
  }

  replaceAll(entries: Iterable<[tenantId: string, userHash: string, off: number]>): void {
    this.byTenant.clear();
    for (const [t, h, at] of entries) this.apply(t, h, at);
  }

  *entries(): IterableIterator<[string, string, number]> {
    for (const [t, users] of this.byTenant) for (const [h, at] of users) yield [t, h, at];
  }
}

/** Drops the events of users with tracking off; asks for a retry while preferences are unknown. */
export function trackingPreferenceControl(prefs: Pick<TrackingPreferences, 'tracked'>): CollectionControl {
  return perEventControl('tracking-preferences', (tenant, e) => {
    const userId = e.event.user_id;
    if (userId === null) return e;
    const tracked = prefs.tracked(tenant.tenantId, userId);
    if (tracked === undefined) return { retry: 'tracking preferences cannot be read now' };
    return tracked ? e : { drop: 'tracking_off' };
  });
}

const fileSchema = z.object({
  version: z.literal(1),
  /** [tenant, user hash, off since] */
  off: z.array(z.tuple([z.string(), z.string().regex(/^[0-9a-f]{64}$/), z.number().int()])),
});

/**
 * Embedded mode: the set in memory, persisted under the data dir (`tracking-preferences.json`,
 * 0600, atomic rewrite on each change). NOTE: one process owns the file. A file that cannot be
 * read is an error at start — never a silent reset that would track users who asked not to be.
 */
export async function openFileTrackingPreferences(path: string, hash: SubjectHash): Promise<TrackingPreferences> {
  const state = new TrackingOffSet(hash);
  const text = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw new Error(`cannot read ${path}: ${err.code ?? err.message}`);
  });
  if (text !== null) {
    const parsed = fileSchema.safeParse(safeJson(text));
    if (!parsed.success) throw new Error(`${path} is not a tracking preferences file (version 1)`);
    state.replaceAll(parsed.data.off);
  }
  let tail: Promise<unknown> = Promise.resolve();
  return {
    tracked: (tenantId, userId) => !state.isOff(tenantId, userId),
    async get(tenantId, userId) {
      const at = state.offSince(tenantId, state.hashOf(tenantId, userId));
      return at === undefined ? { trackUsage: true, updatedAt: null } : { trackUsage: false, updatedAt: at };
    },
    set(tenantId, userId, trackUsage, now) {
      const h = state.hashOf(tenantId, userId);
      // NOTE: changes are written one after the other, each from the state it leaves
      const run = tail.then(async () => {
        const before = state.offSince(tenantId, h) ?? null;
        state.apply(tenantId, h, trackUsage ? null : now);
        try {
          await writeFileAtomic(path, JSON.stringify({ version: 1, off: [...state.entries()] }));
        } catch (err) {
          // NOTE: memory never runs ahead of the file: a restart must not undo an answered change
          state.apply(tenantId, h, before);
          throw err;
        }
        return { trackUsage, updatedAt: now };
      });
      tail = run.catch(() => undefined);
      return run;
    },
    close: () => tail.then(() => undefined),
  };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
