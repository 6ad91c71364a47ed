// Throughput of the anonymize stage on one core: ≥ 300,000 events/s is the target (DESIGN.md §3).
// Runnable alone: `npx tsx bench/anonymize-bench.ts`; bench/main.ts calls benchAnonymize().
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { createAnonymizeStage } from '../libs/anonymize/anonymize-stage.js';
import { createKeyRing, DEFAULT_PSEUDONYM_CACHE_SIZE } from '../libs/anonymize/key-ring.js';
import { parseMasterKey } from '../libs/anonymize/master-key.js';
import type { EnrichedEvent, EventType, PageContext } from '../libs/events/envelope.js';
import { createMemoryTenantStore } from '../libs/tenants/tenant-store.js';
import type { BenchReport } from './bench-types.js';
import { rng, zipfSampler } from './bench-random.js';

const EVENTS = 1_000_000;
const WARMUP = 200_000;
const ROUNDS = 3;
const USERS = 50_000;
const ZIPF_S = 1.07;
const TARGET = 300_000;
/** A cache far smaller than the ~33k (tenant, user) pairs anonymized: shows the gain under pressure. */
const SMALL_CACHE = 5_000;
const T0 = 1_750_000_000_000;

const TENANTS = ['acme', 'globex', 'initech'] as const;

function buildFixture(): EnrichedEvent[] {
  const rand = rng(42);
  const pickUser = zipfSampler(USERS, ZIPF_S, rand);
  const userIds = Array.from({ length: USERS }, (_, i) => (i % 3 === 0 ? `user_${i}@example${i % 97}.com` : `usr_${(i * 2654435761) >>> 0}`));
  const paths = ['/', '/pricing', '/docs/getting-started', '/app/dashboard', '/app/settings', '/blog/launch'];
  const contexts: PageContext[] = paths.map((p) => ({
    url: `https://app.example.com${p}`, path: p, referrer: 'https://www.google.com/', title: `Page ${p}`, search: null,
    locale: 'en-US', timezone: 'Europe/Berlin', screen_width: 1440, screen_height: 900,
    library_name: 'tracklane.js', library_version: '1.2.0',
  }));
  const types: EventType[] = ['page', 'page', 'track', 'track', 'click', 'click', 'link', 'session_start', 'identify', 'alias'];
  const ua = { browser: 'Chrome', browser_version: '126.0', os: 'macOS', os_version: '14.5', device_type: 'desktop', device_vendor: 'Apple', device_model: 'Macintosh' };
  const geo = { country: 'DE', region: 'BE', city: 'Berlin', lat: 52.52, lon: 13.4, timezone: 'Europe/Berlin' };
  const traits = { email: '"jane@example.com"', firstName: '"Jane"', plan: '"pro"' };
  const noTraits = {};
  const events: EnrichedEvent[] = new Array<EnrichedEvent>(EVENTS);
  for (let i = 0; i < EVENTS; i++) {
    const u = pickUser();
    const type = types[i % types.length] ?? 'track';
    const tenant = TENANTS[u % 3] ?? 'acme';
    const identified = rand() < 0.85;
    const userId = identified ? userIds[u] ?? null : null;
    events[i] = {
      event_id: `node-next-${i}`,
      tenant_id: tenant,
      type,
      name: type === 'track' ? 'Button Clicked' : null,
      user_id: userId,
      anonymous_id: `anon-${u}`,
      previous_id: type === 'alias' ? `anon-${u}` : null,
      session_id: `sess-${u}-${i >> 12}`,
      account_id: u % 5 === 0 ? `acct-${u % 400}` : null,
      occurred_at: T0 + i * 10,
      sent_at: T0 + i * 10 + 5,
      received_at: T0 + i * 10 + 20,
      timestamp_clamped: false,
      ip: '203.0.113.0',
      user_agent: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/537.36 Chrome/126.0 Safari/537.36',
      context: contexts[i % contexts.length] ?? (contexts[0] as PageContext),
      element: null,
      properties: noTraits,
      traits: type === 'identify' ? traits : noTraits,
      account_traits: noTraits,
      geo,
      ip_org: null,
      ua,
      inferred_account: null,
    };
  }
  return events;
}

interface RunResult { eventsPerSec: number; anonymized: number }

async function measure(events: readonly EnrichedEvent[], cacheSize: number): Promise<RunResult> {
  const store = createMemoryTenantStore({ now: () => T0 });
  for (const t of TENANTS) await store.createTenant(t);
  // acme: anonymizing since before the fixture; globex: switched on halfway (forward only); initech: off.
  await store.patchFlags('acme', { anonymizeIdentity: true, piiTraits: ['email'] }, T0 - 1);
  await store.patchFlags('globex', { anonymizeIdentity: true }, T0 + EVENTS * 5);
  const keys = createKeyRing(parseMasterKey('hex:' + '5a'.repeat(32)), { cacheSize });
  const stage = createAnonymizeStage({ flags: store, keys });

  let sink = 0;
  const pass = (from: number, to: number): number => {
    let anonymized = 0;
    for (let i = from; i < to; i++) {
      const r = stage(events[i] as EnrichedEvent);
      if (r.kind !== 'ok') throw new Error(`unexpected ${r.kind}`);
      if (r.value.identity_anonymized) anonymized++;
      sink += r.value.user_id?.length ?? 0; // keeps the result alive
    }
    return anonymized;
  };
  pass(0, WARMUP);
  const rates: number[] = [];
  let anonymized = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const start = performance.now();
    anonymized = pass(0, events.length);
    rates.push(events.length / ((performance.now() - start) / 1000));
  }
  if (sink < 0) throw new Error('unreachable');
  rates.sort((a, b) => a - b);
  return { eventsPerSec: Math.round(rates[Math.floor(ROUNDS / 2)] ?? 0), anonymized };
}

export async function benchAnonymize(): Promise<BenchReport> {
  const events = buildFixture();
  const noCache = await measure(events, 0);
  const small = await measure(events, SMALL_CACHE);
  const cached = await measure(events, DEFAULT_PSEUDONYM_CACHE_SIZE);
  return {
    name: 'anonymize stage',
    method:
      `${EVENTS.toLocaleString('en-US')} EnrichedEvents in memory (3 tenants: one anonymizing throughout with piiTraits=[email], ` +
      `one switched on halfway, one off; ${USERS.toLocaleString('en-US')} users drawn Zipf(s=${ZIPF_S}); 85% identified; ` +
      `10% identify, 10% alias). One thread, synchronous stage calls against the in-memory tenant store; ` +
      `${WARMUP.toLocaleString('en-US')}-event warm-up, then the median of ${ROUNDS} full passes, wall clock. ` +
      `Measured with the pseudonym LRU (${DEFAULT_PSEUDONYM_CACHE_SIZE.toLocaleString('en-US')} entries, the default; ` +
      `headline), with a ${SMALL_CACHE.toLocaleString('en-US')}-entry LRU, and without one. Single-threaded by construction ` +
      `(synchronous node:crypto, no worker threads); pin with \`taskset -c 0\` for a strict one-core figure.`,
    metrics: {
      eventsPerSec: cached.eventsPerSec,
      eventsPerSecNoCache: noCache.eventsPerSec,
      eventsPerSecCache5k: small.eventsPerSec,
      anonymizedShare: Math.round((cached.anonymized / EVENTS) * 1000) / 1000,
    },
    target: `≥ ${TARGET.toLocaleString('en-US')} events/s on one core`,
    passed: cached.eventsPerSec >= TARGET,
  };
}

const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(entry).href) {
  const report = await benchAnonymize();
  console.log(JSON.stringify(report, null, 2));
  if (!report.passed) process.exitCode = 1;
}
