// Hot keys (issue 16 item 7): a token bucket per (tenant, user) in each collector's memory. An
// event above its user's bucket is "overflowed": the fleet produces it with a random partition
// key on every hop (raw, enriched, clean) and the `tracklane-overflow` header
// (libs/kafka/outputs.ts), so one hot user spreads over every partition instead of lagging the
// others that share its partition. Embedded mode has no partitions: the rule is not wired there.
//
// Why a local bucket is enough: it only has to notice a user far above normal (hundreds of events
// a second against a handful); the load balancer spreads a hot user's requests over the collector
// replicas, so each sees about 1/N of them and the fleet-wide threshold is ≈ N × the setting — the
// rule stays approximate either way, and it costs no Redis round trip per event.
//
// NOTE: identify, group and alias are never overflowed: the sink's read-merge-write of `users`
// assumes one writer per user (one partition, dimension-merge.ts), and these carry the user's
// attributes and links. Every other type is only appended (events, ReplacingMergeTree by
// event_id), so its partition does not matter for the final state.
import type { RawEvent } from '../events/envelope.js';
import { takeTokens, type BucketLimit, type BucketState } from './rate-limits.js';

/** Types that must stay on their user's partition (see above). */
const PINNED_TYPES: ReadonlySet<RawEvent['type']> = new Set(['identify', 'group', 'alias']);

export interface HotKeyRule {
  /** whether `e` goes out with a random key; takes a token from its user's bucket when there is one */
  overflowed(e: Pick<RawEvent, 'tenant_id' | 'user_id' | 'anonymous_id' | 'type'>, now: number): boolean;
  /** buckets held (for tests and metrics) */
  size(): number;
}

export interface HotKeyOptions {
  /** events a second one user may send through this collector before its events overflow */
  eventsPerSecond: number;
  /** events the bucket holds when full; default one second's worth */
  burst?: number;
  /** most buckets held; beyond it full (idle) ones are dropped, then the oldest (default 100,000) */
  maxKeys?: number;
  /** called once per overflowed event (metrics) */
  onOverflow?: () => void;
}

export function createHotKeyRule(opts: HotKeyOptions): HotKeyRule {
  const limit: BucketLimit = { ratePerSecond: opts.eventsPerSecond, burst: opts.burst ?? opts.eventsPerSecond };
  const maxKeys = opts.maxKeys ?? 100_000;
  // NOTE: Map keeps insertion order, so the first entries are the oldest when one must go
  const buckets = new Map<string, BucketState>();

  function makeRoom(now: number): void {
    // a bucket that refilled to full is the same as no bucket: drop those first
    for (const [key, s] of buckets) {
      if (s.tokens + ((now - s.at) * limit.ratePerSecond) / 1000 >= limit.burst) buckets.delete(key);
    }
    const target = Math.floor(maxKeys * 0.9);
    for (const key of buckets.keys()) {
      if (buckets.size <= target) break;
      buckets.delete(key);
    }
  }

  return {
    overflowed(e, now) {
      const user = e.user_id ?? e.anonymous_id;
      if (user === null) return false;
      // NOTE: NUL cannot occur in a tenant id (TENANT_ID_RE): the key is unambiguous
      const key = `${e.tenant_id}\u0000${user}`;
      const take = takeTokens(buckets.get(key), limit, 1, now);
      if (take.ok) {
        if (!buckets.has(key) && buckets.size >= maxKeys) makeRoom(now);
        buckets.set(key, take.state);
        return false;
      }
      if (PINNED_TYPES.has(e.type)) return false;
      opts.onOverflow?.();
      return true;
    },
    size: () => buckets.size,
  };
}
