// The Tracklane event envelope (DESIGN.md §2): one source of truth for the shape of an
// event as it moves collector → enricher → anonymizer → sink. Types are inferred from
// these zod schemas; stages trust their input type and do not re-validate on the hot path.
import { z } from 'zod';

export const EVENT_TYPES = [
  'identify',
  'track',
  'page',
  'screen',
  'group',
  'alias',
  'click',
  'link',
  'session_start',
  'session_end',
] as const;
export const eventTypeSchema = z.enum(EVENT_TYPES);
export type EventType = z.infer<typeof eventTypeSchema>;

export const LIMITS = {
  idChars: 128,
  nameChars: 200,
  urlChars: 2048,
  shortTextChars: 512,
  labelChars: 100,
  maxClasses: 5,
  mapEntries: 200,
  mapKeyChars: 128,
  /** JSON-encoded property/trait values longer than this are rejected. */
  mapValueChars: 8192,
} as const;

/** String-keyed map whose values are JSON-encoded (DESIGN.md §2). */
export const jsonMapSchema = z.record(z.string(), z.string());
export type JsonMap = z.infer<typeof jsonMapSchema>;

export const pageContextSchema = z.object({
  url: z.string().nullable(),
  path: z.string().nullable(),
  referrer: z.string().nullable(),
  title: z.string().nullable(),
  search: z.string().nullable(),
  locale: z.string().nullable(),
  timezone: z.string().nullable(),
  screen_width: z.number().int().nullable(),
  screen_height: z.number().int().nullable(),
  library_name: z.string().nullable(),
  library_version: z.string().nullable(),
});
export type PageContext = z.infer<typeof pageContextSchema>;

/** What the tag records of a clicked element: never input values, never the DOM. */
export const elementSchema = z.object({
  tag: z.string().nullable(),
  id: z.string().nullable(),
  classes: z.array(z.string()),
  label: z.string().nullable(),
  href: z.string().nullable(),
});
export type ElementInfo = z.infer<typeof elementSchema>;

/** As written by the collector to `tracklane.raw.v1`. */
export const rawEventSchema = z.object({
  event_id: z.string().min(1).max(LIMITS.idChars),
  tenant_id: z.string().min(1).max(LIMITS.idChars),
  type: eventTypeSchema,
  /** track event name, page/screen name */
  name: z.string().nullable(),
  user_id: z.string().nullable(),
  anonymous_id: z.string().nullable(),
  /** alias: the previous id */
  previous_id: z.string().nullable(),
  session_id: z.string().nullable(),
  /** explicit account: group's groupId or identify's context.groupId / traits.accountId */
  account_id: z.string().nullable(),
  /** ms since epoch, clock-skew corrected (DESIGN.md §2) */
  occurred_at: z.number().int(),
  sent_at: z.number().int().nullable(),
  received_at: z.number().int(),
  /** true when the client's timestamp lay too far in the future and was clamped */
  timestamp_clamped: z.boolean(),
  ip: z.string().nullable(),
  user_agent: z.string().nullable(),
  context: pageContextSchema,
  element: elementSchema.nullable(),
  properties: jsonMapSchema,
  traits: jsonMapSchema,
  account_traits: jsonMapSchema,
});
export type RawEvent = z.infer<typeof rawEventSchema>;

export const geoSchema = z.object({
  country: z.string().nullable(),
  region: z.string().nullable(),
  city: z.string().nullable(),
  lat: z.number().nullable(),
  lon: z.number().nullable(),
  timezone: z.string().nullable(),
});
export type Geo = z.infer<typeof geoSchema>;

export const ipOrgSchema = z.object({
  asn: z.number().int().nullable(),
  org: z.string().nullable(),
});
export type IpOrg = z.infer<typeof ipOrgSchema>;

export const userAgentInfoSchema = z.object({
  browser: z.string().nullable(),
  browser_version: z.string().nullable(),
  os: z.string().nullable(),
  os_version: z.string().nullable(),
  device_type: z.string().nullable(),
  device_vendor: z.string().nullable(),
  device_model: z.string().nullable(),
});
export type UserAgentInfo = z.infer<typeof userAgentInfoSchema>;

export const ACCOUNT_SOURCES = ['explicit', 'email_domain'] as const;
export const accountSourceSchema = z.enum(ACCOUNT_SOURCES);
export type AccountSource = z.infer<typeof accountSourceSchema>;

export const inferredAccountSchema = z.object({
  /** the account id the event is attributed to: explicit id, or the registrable domain */
  account_id: z.string(),
  domain: z.string().nullable(),
  source: accountSourceSchema,
  /** 1 for explicit; < 1 for inferred */
  confidence: z.number(),
});
export type InferredAccount = z.infer<typeof inferredAccountSchema>;

/** As written by the enricher to `tracklane.enriched.v1`. `ip` is already policy-applied. */
export const enrichedEventSchema = rawEventSchema.extend({
  geo: geoSchema.nullable(),
  ip_org: ipOrgSchema.nullable(),
  ua: userAgentInfoSchema.nullable(),
  inferred_account: inferredAccountSchema.nullable(),
});
export type EnrichedEvent = z.infer<typeof enrichedEventSchema>;

/** As written by the anonymizer to `tracklane.clean.v1` and read by the sink. */
export const cleanEventSchema = enrichedEventSchema.extend({
  identity_anonymized: z.boolean(),
  /** key version used for the pseudonym; 0 when the identity is in clear */
  key_version: z.number().int(),
});
export type CleanEvent = z.infer<typeof cleanEventSchema>;

/** Partition key everywhere (DESIGN.md §2): one user's events stay in order. */
export function partitionKey(e: Pick<RawEvent, 'tenant_id' | 'user_id' | 'anonymous_id'>): string {
  return `${e.tenant_id}:${e.user_id ?? e.anonymous_id ?? ''}`;
}

/** Segment reserved traits that become first-class user columns; snake_case accepted too. */
export const USER_TRAIT_COLUMNS = {
  email: ['email'],
  first_name: ['firstName', 'first_name'],
  last_name: ['lastName', 'last_name'],
  name: ['name'],
  phone: ['phone'],
  title: ['title'],
  company: ['company'],
} as const;

/** Decode one JSON-encoded map value to a string, or null (for reserved trait columns). */
export function traitString(map: JsonMap, keys: readonly string[]): string | null {
  for (const k of keys) {
    const raw = map[k];
    if (raw === undefined) continue;
    try {
      const v: unknown = JSON.parse(raw);
      if (typeof v === 'string') return v;
      if (typeof v === 'number' || typeof v === 'boolean') return String(v);
      if (v && typeof v === 'object' && 'name' in v && typeof v.name === 'string') return v.name;
      return null;
    } catch {
      return null;
    }
  }
  return null;
}
