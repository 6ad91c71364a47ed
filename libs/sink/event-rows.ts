// Pure mapping from a CleanEvent to the typed rows the sink inserts: one `events` row per
// event, its trait snapshot (identify_snapshots) when it carries traits, plus user / account
// patches that dimension-merge.ts folds into full snapshots.
import { USER_TRAIT_COLUMNS, traitString, type AccountSource, type CleanEvent, type JsonMap } from '../events/envelope.js';
import type { EventRow, EventTuple } from '../clickhouse/tables/events.js';
import type { IdentifySnapshotRow, IdentifySnapshotTuple } from '../clickhouse/tables/identify-snapshots.js';
import { USER_ATTRIBUTE_COLUMNS, type UserAttributeColumn } from '../clickhouse/tables/users.js';

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

/**
 * The account an event is attributed to: the enricher's inference, else the explicit id.
 * NOTE: the enricher's inference already is the explicit id when the event names one
 * (libs/enrich/email-account.ts), so an explicit account wins within one event.
 */
export function attributedAccount(
  e: Pick<CleanEvent, 'account_id' | 'inferred_account'>,
): { account_id: string; source: AccountSource; domain: string | null } | null {
  if (e.inferred_account) {
    return { account_id: e.inferred_account.account_id, source: e.inferred_account.source, domain: e.inferred_account.domain };
  }
  if (e.account_id) return { account_id: e.account_id, source: 'explicit', domain: null };
  return null;
}

/**
 * What `events.traits` / `events.account_traits` hold for every event the sink writes: nothing.
 * NOTE: an event's trait maps (the PII an overwrite rewrites) go to identify_snapshots only
 * (toSnapshotRow); a copy left in `events` would make every overwrite rewrite `events` again.
 */
const NO_TRAITS: JsonMap = Object.freeze({});

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
    traits: NO_TRAITS,
    account_traits: NO_TRAITS,
    identity_anonymized: e.identity_anonymized ? 1 : 0,
    key_version: e.key_version,
  };
}

/**
 * The same row as a positional tuple in EVENT_COLUMNS order (JSONCompactEachRow).
 * NOTE: written out by hand rather than EVENT_COLUMNS.map(row) because it runs once per
 * event on the hot path; event-rows.test.ts checks it against toEventRow column by column.
 */
export function toEventTuple(e: CleanEvent): EventTuple {
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
    NO_TRAITS,
    NO_TRAITS,
    e.identity_anonymized ? 1 : 0,
    e.key_version,
  ];
}

/** The event's trait snapshot, or null when it carries no traits (most events: track, page, …). */
export function toSnapshotRow(e: CleanEvent): IdentifySnapshotRow | null {
  if (isEmpty(e.traits) && isEmpty(e.account_traits)) return null;
  const account = attributedAccount(e);
  return {
    tenant_id: e.tenant_id,
    event_id: e.event_id,
    type: e.type,
    user_id: e.user_id,
    anonymous_id: e.anonymous_id,
    account_id: account ? account.account_id : null,
    timestamp: e.occurred_at,
    client_ts: clientTimestamp(e),
    received_at: e.received_at,
    traits: e.traits,
    account_traits: e.account_traits,
  };
}

/**
 * The same snapshot as a tuple in IDENTIFY_SNAPSHOT_COLUMNS order (event-rows.test.ts checks it
 * against toSnapshotRow), or null.
 */
export function toSnapshotTuple(e: CleanEvent): IdentifySnapshotTuple | null {
  const row = toSnapshotRow(e);
  if (row === null) return null;
  return [row.tenant_id, row.event_id, row.type, row.user_id, row.anonymous_id, row.account_id, row.timestamp, row.client_ts, row.received_at, row.traits, row.account_traits];
}

function isEmpty(m: JsonMap): boolean {
  return Object.keys(m).length === 0;
}

const RESERVED_USER_TRAIT_KEYS: ReadonlySet<string> = new Set(Object.values(USER_TRAIT_COLUMNS).flat());

/**
 * What one event says about a user: only the attributes it carried. A reserved trait
 * present with a JSON null clears the column; an absent one leaves it alone.
 */
export interface UserPatch {
  tenant_id: string;
  user_id: string;
  /** only the reserved columns the identify carried */
  columns: Partial<Record<UserAttributeColumn, string | null>>;
  /** non-reserved traits carried */
  traits: JsonMap;
  /** the account the event links the user to, or null: it leaves the link alone */
  account_id: string | null;
  /** how the event knows that account: `explicit` links win over `email_domain` ones (dimension-merge.ts) */
  account_source: AccountSource | null;
  identity_anonymized: boolean;
  /** = received_at (ms) */
  version: number;
}

/**
 * identify events with a user id → their attributes and account; group calls with a user id
 * and an account → the explicit account link alone (a group's traits are the account's);
 * anything else → null.
 */
export function toUserPatch(e: CleanEvent): UserPatch | null {
  if (!e.user_id) return null;
  if (e.type === 'group') {
    if (e.account_id === null) return null;
    return {
      tenant_id: e.tenant_id,
      user_id: e.user_id,
      columns: {},
      traits: {},
      account_id: e.account_id,
      account_source: 'explicit',
      identity_anonymized: e.identity_anonymized,
      version: e.received_at,
    };
  }
  if (e.type !== 'identify') return null;
  const columns: Partial<Record<UserAttributeColumn, string | null>> = {};
  for (const col of USER_ATTRIBUTE_COLUMNS) {
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
    account_source: account ? account.source : null,
    identity_anonymized: e.identity_anonymized,
    version: e.received_at,
  };
}

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
  const groupAccount = e.type === 'group' ? e.account_id : null;
  let accountId: string;
  let source: AccountSource;
  if (groupAccount !== null) {
    accountId = groupAccount;
    source = 'explicit';
  } else if (account) {
    accountId = account.account_id;
    source = account.source;
  } else {
    return null;
  }
  const carried: JsonMap = groupAccount !== null ? { ...e.traits, ...e.account_traits } : e.account_traits;
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
