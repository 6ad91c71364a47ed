// Enrichment throughput on one core: a realistic event mix through the real enrich stage
// (DB-IP city mmdb + @ip-location-db ASN CSVs), timed on the main thread.
import { pathToFileURL } from 'node:url';
import { LRUCache } from 'lru-cache';
import type { RawEvent } from '../libs/events/envelope.js';
import { createEnricher } from '../libs/enrich/enrich-stage.js';
import { DEFAULT_IP_CACHE_SIZE } from '../libs/enrich/ip-policy.js';
import { formatIpv4, formatIpv6, isPublicIpv4 } from '../libs/enrich/ip-address.js';
import { DEFAULT_FLAGS, type FlagSource, type TenantFlags } from '../libs/tenants/flags.js';
import type { BenchReport } from './bench-types.js';
import { rng, zipfSampler } from './bench-random.js';

const DISTINCT_IPS = 50_000;
const POOL = 100_000;
const MEASURED = 1_000_000;
const TARGET = 200_000;

const UAS = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0',
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36 Edg/123.0',
  'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
];
const V6_PREFIXES = [[0x2001, 0x4860], [0x2a00, 0x1450], [0x2a03, 0x2880], [0x2400, 0xcb00], [0x2600, 0x1f18], [0x2c0f, 0xf7a8], [0x2804, 0x14c]];
const PRIVATE_IPS = ['10.0.0.12', '10.1.2.3', '192.168.1.20', '172.16.5.4', '127.0.0.1', '100.64.1.1', 'fc00::1', '::1'];
const FREE_MAIL = ['gmail.com', 'yahoo.com', 'outlook.com', 'hotmail.co.uk', 'proton.me'];
const PATHS = ['/', '/pricing', '/docs/getting-started', '/blog/launch', '/app/dashboard', '/app/settings/team', '/signup'];
const TENANTS: Record<string, TenantFlags> = {
  t_full: { ...DEFAULT_FLAGS, ipPolicy: 'full' },
  t_gtm: { ...DEFAULT_FLAGS, ipPolicy: 'geo_then_mask', scrubQueryParams: ['invite'] },
  t_mask: { ...DEFAULT_FLAGS, ipPolicy: 'mask' },
  t_noip: { ...DEFAULT_FLAGS, ipPolicy: 'full', resolveIp: false },
};
const TENANT_MIX = ['t_full', 't_full', 't_full', 't_gtm', 't_gtm', 't_gtm', 't_mask', 't_noip'];

function buildIps(rand: () => number): string[] {
  const ips: string[] = [];
  while (ips.length < DISTINCT_IPS) {
    if (rand() < 0.1) {
      const p = V6_PREFIXES[Math.floor(rand() * V6_PREFIXES.length)] as number[];
      const g = [p[0] as number, p[1] as number];
      for (let i = 0; i < 6; i++) g.push(Math.floor(rand() * 0x10000));
      ips.push(formatIpv6(g));
    } else {
      const v = Math.floor(rand() * 0x100000000);
      if (isPublicIpv4(v)) ips.push(formatIpv4(v));
    }
  }
  return ips;
}

interface Workload {
  events: RawEvent[];
  /** IP of pool slot i in pass p: ipStream[p * POOL + i] (1 + MEASURED / POOL passes) */
  ipStream: string[];
}

/** One IP as an event carries it: 5% private, else a Zipf draw over the distinct public IPs. */
function ipDrawer(rand: () => number): () => string {
  const ips = buildIps(rand);
  const pickIp = zipfSampler(ips.length, 1.0, rand);
  // NOTE: a fresh string per draw, as a JSON decoder would produce it.
  return () => (rand() < 0.05 ? `${PRIVATE_IPS[Math.floor(rand() * PRIVATE_IPS.length)]} `.trimEnd() : `${ips[pickIp()]} `.trimEnd());
}

function buildWorkload(rand: () => number): Workload {
  const drawIp = ipDrawer(rand);
  const ipStream = Array.from({ length: POOL + MEASURED }, drawIp);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  const events: RawEvent[] = [];
  for (let i = 0; i < POOL; i++) {
    const identify = rand() < 0.2;
    const path = pick(PATHS);
    const q = rand();
    const search = q < 0.2 ? `?utm_source=news&utm_campaign=q${i % 7}` : q < 0.25 ? `?email=user${i}%40acme.com&ref=mail` : q < 0.28 ? `?invite=abc${i}&token=t${i}` : '';
    const traits: Record<string, string> = {};
    if (identify) {
      traits['email'] = JSON.stringify(rand() < 0.6 ? `u${i}@eng.company${Math.floor(rand() * 500)}.${rand() < 0.2 ? 'co.uk' : 'com'}` : `u${i}@${pick(FREE_MAIL)}`);
      traits['company'] = JSON.stringify('Company');
      traits['firstName'] = JSON.stringify('Ann');
    }
    events.push({
      event_id: `evt-${i}`,
      tenant_id: pick(TENANT_MIX),
      type: identify ? 'identify' : rand() < 0.6 ? 'page' : rand() < 0.5 ? 'click' : 'track',
      name: identify ? null : 'Viewed',
      user_id: rand() < 0.5 ? `user-${i % 20000}` : null,
      anonymous_id: `anon-${i % 40000}`,
      previous_id: null,
      session_id: `s-${i % 9000}`,
      account_id: identify && rand() < 0.1 ? `acct_${i % 100}` : null,
      occurred_at: 1_760_000_000_000 + i,
      sent_at: 1_760_000_000_000 + i,
      received_at: 1_760_000_000_100 + i,
      timestamp_clamped: false,
      ip: null,
      user_agent: `${pick(UAS)}`,
      context: {
        url: `https://www.example.com${path}${search}`,
        path,
        referrer: rand() < 0.3 ? `https://www.google.com/search?q=tracklane+${i % 50}` : null,
        title: 'Example',
        search: search === '' ? null : search,
        locale: 'en-US',
        timezone: 'Europe/London',
        screen_width: 1440,
        screen_height: 900,
        library_name: 'tracklane.js',
        library_version: '1.0.0',
      },
      element: rand() < 0.1 ? { tag: 'a', id: null, classes: ['btn'], label: 'Docs', href: `/docs?ref=nav&session=${i}` } : null,
      properties: { plan: '"pro"' },
      traits,
      account_traits: {},
    });
  }
  return { events, ipStream };
}

/** Hit rate the IP cache (an lru-cache of `size` entries) sees on the measured IP sequence; untimed. */
function simulatedHitRate(ipStream: readonly string[], size: number): { distinct: number; hitRate: number } {
  const lru = new LRUCache<string, true>({ max: size });
  const seen = new Set<string>();
  let hits = 0;
  for (let i = 0; i < ipStream.length; i++) {
    const ip = ipStream[i] as string;
    const measured = i >= POOL;
    if (measured) seen.add(ip);
    if (lru.get(ip) !== undefined) hits += measured ? 1 : 0;
    else lru.set(ip, true);
  }
  return { distinct: seen.size, hitRate: hits / MEASURED };
}

export async function benchEnrich(): Promise<BenchReport> {
  const flags: FlagSource = { get: (t) => TENANTS[t] };
  const t0 = performance.now();
  const enricher = await createEnricher({ flags });
  const openMs = performance.now() - t0;
  const { events, ipStream } = buildWorkload(rng(42));
  const stage = enricher.stage;
  const sim = simulatedHitRate(ipStream, DEFAULT_IP_CACHE_SIZE);

  let sink = 0;
  /** One pass over the pool; only the stage calls are timed. */
  const pass = (p: number): number => {
    // TRICKY: the pool's IPs are re-drawn between passes (untimed) so the caches see a stream of
    // 1.1M independent draws, not the same 100k events ten times over.
    for (let i = 0; i < POOL; i++) (events[i] as RawEvent).ip = ipStream[p * POOL + i] as string;
    const t = performance.now();
    for (let i = 0; i < POOL; i++) {
      const r = stage(events[i] as RawEvent);
      if (r.kind === 'ok' && r.value.geo !== null) sink++;
    }
    return performance.now() - t;
  };
  pass(0); // warm-up: JIT, caches, lazily built domain sets
  sink = 0;
  let ms = 0;
  for (let p = 1; p <= MEASURED / POOL; p++) ms += pass(p);
  const seconds = ms / 1000;
  const eventsPerSec = Math.round(MEASURED / seconds);
  await enricher.close();

  return {
    name: 'enrich',
    method:
      `createEnricher() with default DBs (DB-IP Lite city mmdb + @ip-location-db/asn CSVs; open ${Math.round(openMs)} ms, ASN load ${enricher.asn.stats.loadMs} ms); ` +
      `pool of ${POOL.toLocaleString('en')} events over ${DISTINCT_IPS.toLocaleString('en')} distinct public IPs (~10% IPv6) drawn Zipf(s=1), 5% private IPs, ` +
      `${UAS.length} UAs, 20% identify with work/free-mail emails, ~28% URLs with query strings, 4 tenants (full/geo_then_mask/mask/resolveIp=false); ` +
      `warm-up pass of ${POOL.toLocaleString('en')} events, then ${MEASURED.toLocaleString('en')} stage calls (${MEASURED / POOL} passes over the pool, IPs re-drawn between passes untimed) timed with performance.now() on the main thread (one core) ` +
      `(${sim.distinct.toLocaleString('en')} distinct IP strings measured; a ${DEFAULT_IP_CACHE_SIZE.toLocaleString('en')}-entry LRU hits ${(sim.hitRate * 100).toFixed(1)}% of them); ${sink.toLocaleString('en')} results had geo.`,
    metrics: { eventsPerSec, seconds: Number(seconds.toFixed(3)), openMs: Math.round(openMs), asnLoadMs: enricher.asn.stats.loadMs, distinctIps: sim.distinct, ipCacheHitRate: Number(sim.hitRate.toFixed(3)) },
    target: `≥ ${TARGET.toLocaleString('en')} events/s per core`,
    passed: eventsPerSec >= TARGET,
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const report = await benchEnrich();
  console.log(`${report.name}: ${report.metrics['eventsPerSec']?.toLocaleString('en')} events/s (${report.passed ? 'PASS' : 'FAIL'}, target ${report.target})`);
  console.log(`method: ${report.method}`);
  console.log(JSON.stringify(report.metrics));
}
