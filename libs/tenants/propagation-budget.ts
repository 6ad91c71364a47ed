// The timing budget that lets replicas learn of a flag flip late without ever passing an event
// in clear that the flip covers: what freshness get() requires and how far ahead a flip is stamped.
import { TenantStoreError } from './tenant-store.js';

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
 * A key rotation stamps `keyVersionSince` the same way, so every replica switches versions for
 * the same events and the compactor has the window to create the new key. Switching off,
 * shredding, IP policy, piiTraits etc. carry no forward stamp: replicas apply them within
 * staleAfterMs (turning anonymization off late over-protects, it cannot leak; a shred is of a
 * version no event is assigned any more, libs/privacy/key-versions.ts).
 */
export const DEFAULT_PROPAGATION_WINDOW_MS = 2_000;
export const DEFAULT_STALE_AFTER_MS = 1_000;
export const DEFAULT_MAX_CLOCK_SKEW_MS = 250;
export const DEFAULT_RECONCILE_INTERVAL_MS = 250;
/** Below this the admin's request would have too little time to land in Redis. */
export const MIN_WRITE_SLACK_MS = 100;

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
