// Deterministic synthetic traffic for `tracklane demo`: visitors with sessions, page views,
// clicks, custom events, identify and group calls, cut into /v1/batch payloads, plus the
// summary the pipeline must reproduce when every event arrives.
import { chooseSwitchIndex, chunkIntoBatches } from './batching.js';
import { summarizeTraffic, type ExpectedSummary } from './expected-summary.js';
import { createRandom } from './random.js';
import type { TrafficBatch } from './segment-types.js';
import { materializeSession, type Draft, type SessionState } from './session-messages.js';
import { planSession, trimSession } from './session-plan.js';
import { createVisitor } from './visitors.js';

const HOUR_MS = 3_600_000;
const WINDOW_MS = 3 * 24 * HOUR_MS;
/** How many sessions one visitor has over the window. */
const SESSIONS_PER_VISITOR = [{ n: 1, weight: 40 }, { n: 2, weight: 30 }, { n: 3, weight: 20 }, { n: 4, weight: 10 }];

export interface GeneratedTraffic {
  batches: TrafficBatch[];
  expected: ExpectedSummary;
  switchIndex: number;
}

export interface TrafficOptions {
  seed?: number;
  events: number;
  tenants: string[];
  startMs: number;
}

export function generateTraffic(opts: TrafficOptions): GeneratedTraffic {
  const seed = opts.seed ?? 1;
  const { events, tenants, startMs } = opts;
  if (!Number.isInteger(events) || events < 1) throw new RangeError(`events must be a positive integer, got ${events}`);
  if (tenants.length < 2) throw new RangeError('generateTraffic needs two tenants: one stays clear, one switches anonymization on');
  if (new Set(tenants).size !== tenants.length) throw new RangeError('tenant ids must be distinct');
  const rng = createRandom(seed);
  const idPrefix = `demo-${seed}`;
  const drafts: Draft[][] = tenants.map(() => []);
  const state: SessionState = { userId: undefined, seq: 0 };
  let nextUser = 1000;
  const userNumber = (): number => ++nextUser;
  const tenantWeights = tenants.map((_, i) => ({ i, weight: i === 0 ? 1.2 : 1 }));
  let remaining = events;
  while (remaining > 0) {
    const tenantIndex = rng.weighted(tenantWeights).i;
    const visitor = createVisitor(rng, tenantIndex, userNumber, startMs);
    state.userId = undefined;
    const sessionCount = rng.weighted(SESSIONS_PER_VISITOR).n;
    const identifySession = visitor.person ? (sessionCount > 1 && rng.chance(0.3) ? 1 : 0) : -1;
    // Sessions end ≤ ~45 min after they start, so starting 2 h before startMs keeps all in the past.
    const latestStart = startMs - 2 * HOUR_MS;
    let sessionStart = startMs - WINDOW_MS + Math.floor(rng.next() * (WINDOW_MS - 2 * HOUR_MS));
    for (let s = 0; s < sessionCount && remaining > 0 && sessionStart <= latestStart; s++) {
      const reidentify = s > identifySession && identifySession >= 0 && rng.chance(0.3);
      const landing = s === identifySession && rng.chance(0.35) ? 'pii' : rng.chance(0.2) ? 'utm' : 'plain';
      const steps = trimSession(planSession(rng, visitor, s === identifySession || reidentify, landing), remaining);
      const target = drafts[tenantIndex];
      if (!target) throw new Error('unreachable: tenant index out of range');
      const { drafts: made, endMs } = materializeSession(rng, visitor, steps, sessionStart, state, idPrefix);
      target.push(...made);
      remaining -= made.length;
      sessionStart = endMs + rng.int(1, 20) * HOUR_MS + rng.int(0, 59) * 60_000;
    }
  }
  const chunks = tenants.flatMap((tenant, i) => {
    const sortedDrafts = (drafts[i] ?? []).slice().sort((a, b) => a.ms - b.ms || a.seq - b.seq);
    return chunkIntoBatches(tenant, sortedDrafts).map((c) => ({ ...c, tenantIndex: i }));
  });
  // NOTE: interleave tenants by time so sending replays the days in order for both tenants.
  chunks.sort((a, b) => a.firstMs - b.firstMs || a.tenantIndex - b.tenantIndex);
  const batches = chunks.map((c) => c.batch);
  const switchIndex = chooseSwitchIndex(batches, tenants[1]);
  return { batches, expected: summarizeTraffic(batches, tenants, switchIndex), switchIndex };
}
