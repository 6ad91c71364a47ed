// Pure mapping from a CleanEvent to the typed rows the sink inserts: one `events` row per
// event, plus user / account patches that dimension-merge.ts folds into full snapshots.
import {
  USER_TRAIT_COLUMNS,
  traitString,
  type AccountSource,
  type CleanEvent,
  type EventType,
  type JsonMap,
} from '../events/envelope.js';

/** One row of the `events` table (schemas/clickhouse/0001_events.sql); times in ms. */
export interface EventRow {
  tenant_id: string;
  event_id: string;
  type: EventType;
  event: string | null;
  user_id: string | null;
  anonymous_id: string | null;
  previous_id: string | null;
  session_id: string | null;
  account_id: string | null;
  account_source: AccountSource | null;
  account_domain: string | null;
  timestamp: number;
  client_ts: number;
  sent_at: number | null;
  received_at: number;
  timestamp_clamped: 0 | 1;
  ip: string | null;
  user_agent: string | null;
  geo_country: string | null;
  geo_region: string | null;
  geo_city: string | null;
  geo_lat: number | null;
  geo_lon: number | null;
  geo_timezone: string | null;
  ip_asn: number | null;
  ip_org: string | null;
  ua_browser: string | null;
  ua_browser_version: string | null;
  ua_os: string | null;
  ua_os_version: string | null;
  ua_device_type: string | null;
  url: string | null;
  path: string | null;
  referrer: string | null;
  title: string | null;
  search: string | null;
  locale: string | null;
  element_tag: string | null;
  element_id: string | null;
  element_classes: string[];
  element_label: string | null;
  element_href: string | null;
  properties: JsonMap;
  traits: JsonMap;
  account_traits: JsonMap;
  identity_anonymized: 0 | 1;
  key_version: number;
}

/** Insert column order for JSONCompactEachRow; every EventRow key exactly once. */
export const EVENT_COLUMNS = [
  'tenant_id',
  'event_id',
  'type',
  'event',
  'user_id',
  'anonymous_id',
  'previous_id',
  'session_id',
  'account_id',
  'account_source',
  'account_domain',
  'timestamp',
  'client_ts',
  'sent_at',
  'received_at',
  'timestamp_clamped',
  'ip',
  'user_agent',
  'geo_country',
  'geo_region',
  'geo_city',
  'geo_lat',
  'geo_lon',
  'geo_timezone',
  'ip_asn',
  'ip_org',
  'ua_browser',
  'ua_browser_version',
  'ua_os',
  'ua_os_version',
  'ua_device_type',
  'url',
  'path',
  'referrer',
  'title',
  'search',
  'locale',
  'element_tag',
  'element_id',
  'element_classes',
  'element_label',
  'element_href',
  'properties',
  'traits',
  'account_traits',
  'identity_anonymized',
  'key_version',
] as const satisfies readonly (keyof EventRow)[];

// Compile-time guard: EVENT_COLUMNS names every EventRow key.
type MissingEventColumns = Exclude<keyof EventRow, (typeof EVENT_COLUMNS)[number]>;
const allEventColumnsListed: MissingEventColumns extends never ? true : MissingEventColumns = true;
void allEventColumnsListed;

/**
 * The client's own timestamp, reconstructed: occurred_at was corrected as
 * received_at − (sent_at − client_ts), so client_ts = occurred_at + sent_at − received_at.
 * TRICKY: unlike `timestamp` and `received_at` this is identical when a client retries the
 * same message, which is why the events table partitions by it (see 0001_events.sql).
 * Clamped or un-corrected (no sent_at) timestamps have nothing to undo.
 */
export function clientTimestamp(e: Pick<CleanEvent, 'occurred_at' | 'sent_at' | 'received_at' | 'timestamp_clamped'>): number {
  if (e.sent_at === null || e.timestamp_clamped) return e.occurred_at;
  return e.occurred_at + e.sent_at - e.received_at;
}

/** The account an event is attributed to: the enricher's inference, else the explicit id. */
export function attributedAccount(
  e: Pick<CleanEvent, 'account_id' | 'inferred_account'>,
): { account_id: string; source: AccountSource; domain: string | null } | null {
  if (e.inferred_account) {
    return { account_id: e.inferred_account.account_id, source: e.inferred_account.source, domain: e.inferred_account.domain };
  }
  if (e.account_id) return { account_id: e.account_id, source: 'explicit', domain: null };
  return null;
}

export function toEventRow(e: CleanEvent): EventRow {
  const account = attributedAccount(e);
  const geo = e.geo;
  const ua = e.ua;
  const ctx = e.context;
  const el = e.element;
  return {
    tenant_id: e.tenant_id,
    event_id: e.event_id,
    type: e.type,
    event: e.name,
    user_id: e.user_id,
    anonymous_id: e.anonymous_id,
    previous_id: e.previous_id,
    session_id: e.session_id,
    account_id: account ? account.account_id : null,
    account_source: account ? account.source : null,
    account_domain: account ? account.domain : null,
    timestamp: e.occurred_at,
    client_ts: clientTimestamp(e),
    sent_at: e.sent_at,
    received_at: e.received_at,
    timestamp_clamped: e.timestamp_clamped ? 1 : 0,
    ip: e.ip,
    user_agent: e.user_agent,
    geo_country: geo ? geo.country : null,
    geo_region: geo ? geo.region : null,
    geo_city: geo ? geo.city : null,
    geo_lat: geo ? geo.lat : null,
    geo_lon: geo ? geo.lon : null,
    geo_timezone: geo ? geo.timezone : null,
    ip_asn: e.ip_org ? e.ip_org.asn : null,
    ip_org: e.ip_org ? e.ip_org.org : null,
    ua_browser: ua ? ua.browser : null,
    ua_browser_version: ua ? ua.browser_version : null,
    ua_os: ua ? ua.os : null,
    ua_os_version: ua ? ua.os_version : null,
    ua_device_type: ua ? ua.device_type : null,
    url: ctx.url,
    path: ctx.path,
    referrer: ctx.referrer,
    title: ctx.title,
    search: ctx.search,
    locale: ctx.locale,
    element_tag: el ? el.tag : null,
    element_id: el ? el.id : null,
    element_classes: el ? el.classes : [],
    element_label: el ? el.label : null,
    element_href: el ? el.href : null,
    properties: e.properties,
    traits: e.traits,
    account_traits: e.account_traits,
    identity_anonymized: e.identity_anonymized ? 1 : 0,
    key_version: e.key_version,
  };
}

/**
 * The same row as a positional tuple in EVENT_COLUMNS order (JSONCompactEachRow).
 * NOTE: written out by hand rather than EVENT_COLUMNS.map(row) because it runs once per
 * event on the hot path; event-rows.test.ts checks it against toEventRow column by column.
 */
export function toEventTuple(e: CleanEvent): unknown[] {
  const account = attributedAccount(e);
  const geo = e.geo;
  const ua = e.ua;
  const ctx = e.context;
  const el = e.element;
  const org = e.ip_org;
  return [
    e.tenant_id,
    e.event_id,
    e.type,
    e.name,
    e.user_id,
    e.anonymous_id,
    e.previous_id,
    e.session_id,
    account ? account.account_id : null,
    account ? account.source : null,
    account ? account.domain : null,
    e.occurred_at,
    clientTimestamp(e),
    e.sent_at,
    e.received_at,
    e.timestamp_clamped ? 1 : 0,
    e.ip,
    e.user_agent,
    geo ? geo.country : null,
    geo ? geo.region : null,
    geo ? geo.city : null,
    geo ? geo.lat : null,
    geo ? geo.lon : null,
    geo ? geo.timezone : null,
    org ? org.asn : null,
    org ? org.org : null,
    ua ? ua.browser : null,
    ua ? ua.browser_version : null,
    ua ? ua.os : null,
    ua ? ua.os_version : null,
    ua ? ua.device_type : null,
    ctx.url,
    ctx.path,
    ctx.referrer,
    ctx.title,
    ctx.search,
    ctx.locale,
    el ? el.tag : null,
    el ? el.id : null,
    el ? el.classes : [],
    el ? el.label : null,
    el ? el.href : null,
    e.properties,
    e.traits,
    e.account_traits,
    e.identity_anonymized ? 1 : 0,
    e.key_version,
  ];
}

// ---------------------------------------------------------------------------------------
// users / accounts

export type UserColumn = keyof typeof USER_TRAIT_COLUMNS;
export const USER_COLUMNS = Object.keys(USER_TRAIT_COLUMNS) as UserColumn[];
const RESERVED_USER_TRAIT_KEYS: ReadonlySet<string> = new Set(Object.values(USER_TRAIT_COLUMNS).flat());

/** One row of the `users` table (schemas/clickhouse/0002_users_accounts.sql); times in ms. */
export interface UserRow {
  tenant_id: string;
  user_id: string;
  email: string | null;
  first_name: string | null;
  last_name: string | null;
  name: string | null;
  phone: string | null;
  title: string | null;
  company: string | null;
  account_id: string | null;
  /** non-reserved traits, JSON-encoded values (reserved ones live in their columns) */
  traits: JsonMap;
  first_seen: number;
  last_seen: number;
  identity_anonymized: 0 | 1;
  version: number;
  is_deleted: 0 | 1;
  updated_at: number;
}

export const USER_ROW_COLUMNS = [
  'tenant_id',
  'user_id',
  'email',
  'first_name',
  'last_name',
  'name',
  'phone',
  'title',
  'company',
  'account_id',
  'traits',
  'first_seen',
  'last_seen',
  'identity_anonymized',
  'version',
  'is_deleted',
  'updated_at',
] as const satisfies readonly (keyof UserRow)[];

/**
 * What one identify says about a user: only the attributes it carried. A reserved trait
 * present with a JSON null clears the column; an absent one leaves it alone.
 */
export interface UserPatch {
  tenant_id: string;
  user_id: string;
  /** only the reserved columns the identify carried */
  columns: Partial<Record<UserColumn, string | null>>;
  /** non-reserved traits carried */
  traits: JsonMap;
  account_id: string | null;
  identity_anonymized: boolean;
  /** = received_at (ms) */
  version: number;
}

/** identify events with a user id and traits (or an account) → a patch; anything else → null. */
export function toUserPatch(e: CleanEvent): UserPatch | null {
  if (e.type !== 'identify' || !e.user_id) return null;
  const columns: Partial<Record<UserColumn, string | null>> = {};
  for (const col of USER_COLUMNS) {
    const keys = USER_TRAIT_COLUMNS[col];
    const present = keys.find((k) => e.traits[k] !== undefined);
    if (present !== undefined) columns[col] = traitString(e.traits, [present]);
  }
  const traits: JsonMap = {};
  for (const [k, v] of Object.entries(e.traits)) {
    if (!RESERVED_USER_TRAIT_KEYS.has(k)) traits[k] = v;
  }
  const account = attributedAccount(e);
  return {
    tenant_id: e.tenant_id,
    user_id: e.user_id,
    columns,
    traits,
    account_id: account ? account.account_id : null,
    identity_anonymized: e.identity_anonymized,
    version: e.received_at,
  };
}

/** One row of the `accounts` table; times in ms. */
export interface AccountRow {
  tenant_id: string;
  account_id: string;
  domain: string | null;
  source: AccountSource;
  name: string | null;
  traits: JsonMap;
  version: number;
  is_deleted: 0 | 1;
  updated_at: number;
}

export const ACCOUNT_ROW_COLUMNS = [
  'tenant_id',
  'account_id',
  'domain',
  'source',
  'name',
  'traits',
  'version',
  'is_deleted',
  'updated_at',
] as const satisfies readonly (keyof AccountRow)[];

/** What one event says about an account. `name` undefined = not carried. */
export interface AccountPatch {
  tenant_id: string;
  account_id: string;
  domain: string | null;
  source: AccountSource;
  name?: string | null;
  /** account traits carried, `name` excluded (it has a column) */
  traits: JsonMap;
  version: number;
}

/**
 * group events (explicit account + its traits) and any event the enricher attributed to an
 * account (explicit id or email domain) → a patch; anything else → null.
 * NOTE: a group call's account traits may arrive in `account_traits` or, Segment-style, in
 * `traits`; account_traits wins on a clash.
 */
export function toAccountPatch(e: CleanEvent): AccountPatch | null {
  const account = attributedAccount(e);
  const isGroup = e.type === 'group' && e.account_id !== null;
  if (!account && !isGroup) return null;
  const accountId = isGroup ? (e.account_id as string) : (account as { account_id: string }).account_id;
  const source: AccountSource = isGroup ? 'explicit' : (account as { source: AccountSource }).source;
  const carried: JsonMap = isGroup ? { ...e.traits, ...e.account_traits } : e.account_traits;
  const traits: JsonMap = {};
  let name: string | null | undefined;
  for (const [k, v] of Object.entries(carried)) {
    if (k === 'name') name = traitString(carried, ['name']);
    else traits[k] = v;
  }
  // NOTE: an explicit account's domain comes only from its own (group) traits: its members'
  // email domains differ, and taking them would make the stored domain flap between them.
  const domain =
    source === 'email_domain' && account && account.account_id === accountId ? account.domain : traitString(carried, ['domain']);
  const patch: AccountPatch = { tenant_id: e.tenant_id, account_id: accountId, domain, source, traits, version: e.received_at };
  if (name !== undefined) patch.name = name;
  return patch;
}

export interface DeadLetterInput {
  tenant_id: string;
  stage: string;
  reason: string;
  event_id?: string | null;
  /** the record as received: a string/Buffer is stored verbatim, anything else as JSON */
  payload: unknown;
  error?: unknown;
  /** ms; defaults to the time of the write */
  received_at?: number;
}

export interface DeadLetterRow {
  tenant_id: string;
  received_at: number;
  stage: string;
  reason: string;
  event_id: string | null;
  payload: string;
  error: string | null;
}

export function toDeadLetterRow(d: DeadLetterInput, now: number): DeadLetterRow {
  return {
    tenant_id: d.tenant_id,
    received_at: d.received_at ?? now,
    stage: d.stage,
    reason: d.reason,
    event_id: d.event_id ?? null,
    payload: encodePayload(d.payload),
    error: d.error === undefined || d.error === null ? null : describeError(d.error),
  };
}

function encodePayload(p: unknown): string {
  if (typeof p === 'string') return p;
  if (Buffer.isBuffer(p)) return p.toString('utf8');
  try {
    return JSON.stringify(p) ?? 'null';
  } catch {
    return String(p);
  }
}

function describeError(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return typeof err === 'string' ? err : encodePayload(err);
}
