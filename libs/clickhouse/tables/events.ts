// The `events` table (schemas/clickhouse/0001_events.sql): one row per event, a
// ReplacingMergeTree on (tenant_id, event_id) with version received_at.
import type { ClickHouseClient } from '@clickhouse/client';
import type { LookupSession } from '../id-lookup.js';
import { STORED_IDENTITY_COLUMNS, storedUnder, type StoredIdentityRow } from './stored-identity.js';
import { ACCOUNT_SOURCES, EVENT_TYPES, type AccountSource, type EventType, type JsonMap } from '../../events/envelope.js';
import {
  flag,
  ms,
  nullableMs,
  nullableNum,
  nullableStr,
  num,
  oneOf,
  selectList,
  str,
  stringArray,
  stringMap,
  type JsonRow,
} from './row-values.js';
import type { AllColumnsListed } from './table-columns.js';

/** One row of `events`; times in ms. */
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
const allEventColumnsListed: AllColumnsListed<EventRow, typeof EVENT_COLUMNS> = true;
void allEventColumnsListed;

/** An EventRow's values in EVENT_COLUMNS order (JSONCompactEachRow). */
export type EventTuple = unknown[];

/** SELECT list whose rows parseEventRow reads. */
export const EVENT_SELECT = selectList(EVENT_COLUMNS, new Set(['timestamp', 'client_ts', 'sent_at', 'received_at']));

export function parseEventRow(r: JsonRow): EventRow {
  return {
    tenant_id: str(r.tenant_id),
    event_id: str(r.event_id),
    type: oneOf(EVENT_TYPES, r.type, 'events.type'),
    event: nullableStr(r.event),
    user_id: nullableStr(r.user_id),
    anonymous_id: nullableStr(r.anonymous_id),
    previous_id: nullableStr(r.previous_id),
    session_id: nullableStr(r.session_id),
    account_id: nullableStr(r.account_id),
    account_source: r.account_source === null || r.account_source === undefined ? null : oneOf(ACCOUNT_SOURCES, r.account_source, 'events.account_source'),
    account_domain: nullableStr(r.account_domain),
    timestamp: ms(r.timestamp),
    client_ts: ms(r.client_ts),
    sent_at: nullableMs(r.sent_at),
    received_at: ms(r.received_at),
    timestamp_clamped: flag(r.timestamp_clamped),
    ip: nullableStr(r.ip),
    user_agent: nullableStr(r.user_agent),
    geo_country: nullableStr(r.geo_country),
    geo_region: nullableStr(r.geo_region),
    geo_city: nullableStr(r.geo_city),
    geo_lat: nullableNum(r.geo_lat),
    geo_lon: nullableNum(r.geo_lon),
    geo_timezone: nullableStr(r.geo_timezone),
    ip_asn: nullableNum(r.ip_asn),
    ip_org: nullableStr(r.ip_org),
    ua_browser: nullableStr(r.ua_browser),
    ua_browser_version: nullableStr(r.ua_browser_version),
    ua_os: nullableStr(r.ua_os),
    ua_os_version: nullableStr(r.ua_os_version),
    ua_device_type: nullableStr(r.ua_device_type),
    url: nullableStr(r.url),
    path: nullableStr(r.path),
    referrer: nullableStr(r.referrer),
    title: nullableStr(r.title),
    search: nullableStr(r.search),
    locale: nullableStr(r.locale),
    element_tag: nullableStr(r.element_tag),
    element_id: nullableStr(r.element_id),
    element_classes: stringArray(r.element_classes),
    element_label: nullableStr(r.element_label),
    element_href: nullableStr(r.element_href),
    properties: stringMap(r.properties),
    traits: stringMap(r.traits),
    account_traits: stringMap(r.account_traits),
    identity_anonymized: flag(r.identity_anonymized),
    key_version: num(r.key_version),
  };
}

export function eventTuple(row: EventRow): EventTuple {
  return EVENT_COLUMNS.map((c) => row[c]);
}

export interface InsertEventsOptions {
  /** default `events` */
  table?: string;
  /**
   * max_partitions_per_insert_block = 0 (no limit). Events partition by the client's month, and
   * a write of old or backfilled events may span > 100 months, which ClickHouse refuses as a
   * whole ("Too many partitions for single INSERT block", code 252).
   * NOTE: on chDB a per-query setting becomes a `SET …; INSERT …` multi-statement, measured
   * ~15–45 % slower per 5000-row insert, so callers lift it only when an insert needs it. On
   * HTTP the setting is per request; on chDB the SET is session-level and stays on that
   * connection — harmless for the sink: the connection is its own (embedded-runner.ts gives
   * analyst queries their own), the value is always the same, and later inserts on it merely
   * keep the lifted limit.
   */
  liftPartitionLimit?: boolean;
}

/** Inserts rows given as EVENT_COLUMNS tuples; nothing to insert → no request. */
export async function insertEventTuples(client: ClickHouseClient, tuples: readonly EventTuple[], opts: InsertEventsOptions = {}): Promise<void> {
  if (tuples.length === 0) return;
  await client.insert({
    table: opts.table ?? 'events',
    values: tuples,
    format: 'JSONCompactEachRow',
    columns: [...EVENT_COLUMNS],
    ...(opts.liftPartitionLimit ? { clickhouse_settings: { max_partitions_per_insert_block: '0' } } : {}),
  });
}

/** The lookup a page of readEventsStoredUnder reads: one StoredIdentityRow per id, each also holding the page's cursor. */
export const EVENT_PAGE_LOOKUP_COLUMNS = [...STORED_IDENTITY_COLUMNS, 'after'] as const;
export type EventPageLookupRow = StoredIdentityRow & { after: string };

/**
 * One page of the events stored under the lookup's EventPageLookupRows (see storedUnder), in
 * event_id order after their `after` ('' for the first page), at most `limit`. Every row of the
 * lookup is of one tenant and holds the same cursor.
 * NOTE: keyset pages over the sort key (tenant_id, event_id): each page reads on from where the
 * last stopped, so a user with millions of events is read in bounded pages, the tenant's range
 * once. The cursor travels with the ids, as data: an event id is the client's and may hold anything.
 * NOTE: an identify's trait snapshot lives in `identify_snapshots` (events written before
 * migration 0010 may still hold it in `events.traits` until the compactor moves it): both read here.
 */
export async function readEventsStoredUnder(lookup: LookupSession, limit: number): Promise<EventRow[]> {
  // NOTE: the page's trait snapshots joined back as events_with_traits does, but only the user's
  // (the view would join every snapshot of the table for each page)
  const rows = await lookup.rows<JsonRow>(
    `SELECT ${EVENT_SELECT} FROM (
       SELECT e.* REPLACE (
           if(notEmpty(s.traits), s.traits, e.traits) AS traits,
           if(notEmpty(s.account_traits), s.account_traits, e.account_traits) AS account_traits
         )
       FROM (
         SELECT * FROM events FINAL
         WHERE ${storedUnder(lookup.table)} AND event_id > (SELECT any(after) FROM ${lookup.table})
         ORDER BY tenant_id, event_id LIMIT {limit:UInt32}
       ) AS e
       LEFT JOIN (
         SELECT tenant_id, event_id, traits, account_traits FROM identify_snapshots FINAL
         WHERE (tenant_id, user_id) GLOBAL IN (SELECT tenant_id, user_id FROM ${lookup.table})
       ) AS s ON s.tenant_id = e.tenant_id AND s.event_id = e.event_id
     )
     ORDER BY tenant_id, event_id`,
    { limit },
  );
  return rows.map(parseEventRow);
}
