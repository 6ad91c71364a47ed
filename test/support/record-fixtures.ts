// Realistic records of every kind for the codec's tests and benchmark: each nullable field
// both null and set, maps with unicode keys and values, a clicked element with classes.
import type { CleanEvent, EnrichedEvent, RawEvent } from '../../libs/events/envelope.js';
import type { OverwriteRecord } from '../../libs/kafka/record-types.js';

const T0 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

export const rawFull: RawEvent = {
  event_id: 'node-next-1795973604921-aa19c1c0-5b7e-4d0c-9f55-0e1e6f1b2a33',
  tenant_id: 'tn_acme',
  type: 'click',
  name: 'Checkout clicked',
  user_id: 'u_42',
  anonymous_id: '6c4b6a5e-1f0e-4d8b-9a6e-7f1d2c3b4a59',
  previous_id: 'anon-previous',
  session_id: 's_2026_01_01_a',
  account_id: 'acc_9',
  occurred_at: T0 - 1_250,
  sent_at: T0 - 900,
  received_at: T0,
  timestamp_clamped: true,
  ip: '203.0.113.7',
  user_agent: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15',
  context: {
    url: 'https://shop.example.com/cart?utm_source=news',
    path: '/cart',
    referrer: 'https://www.google.com/',
    title: 'Warenkorb – Überblick',
    search: '?utm_source=news',
    locale: 'de-DE',
    timezone: 'Europe/Berlin',
    screen_width: 2560,
    screen_height: 1440,
    library_name: 'tracklane-tag',
    library_version: '1.4.0',
  },
  element: { tag: 'button', id: 'checkout', classes: ['btn', 'btn-primary', 'js-checkout'], label: 'Zur Kasse →', href: null },
  properties: { plan: '"pro"', price: '49.9', 'größe': '"XL"', '絵文字': '"🎉👩‍💻"', nested: '{"a":[1,2,{"b":null}]}' },
  traits: { email: '"jane@example.com"', firstName: '"Zoë"', lastName: '"O\'Brien-Łukasz"', age: '37' },
  account_traits: { name: '"ACME Gmbh & Co. KG"', seats: '120' },
};

export const rawMinimal: RawEvent = {
  event_id: 'e-1',
  tenant_id: 't',
  type: 'track',
  name: null,
  user_id: null,
  anonymous_id: null,
  previous_id: null,
  session_id: null,
  account_id: null,
  occurred_at: 0,
  sent_at: null,
  received_at: 1,
  timestamp_clamped: false,
  ip: null,
  user_agent: null,
  context: {
    url: null,
    path: null,
    referrer: null,
    title: null,
    search: null,
    locale: null,
    timezone: null,
    screen_width: null,
    screen_height: null,
    library_name: null,
    library_version: null,
  },
  element: null,
  properties: {},
  traits: {},
  account_traits: {},
};

export const enrichedFull: EnrichedEvent = {
  ...rawFull,
  geo: { country: 'DE', region: 'Berlin', city: 'Berlin', lat: 52.5244, lon: 13.4105, timezone: 'Europe/Berlin' },
  ip_org: { asn: 4_200_000_000, org: 'Example Carrier AG' },
  ua: {
    browser: 'Safari',
    browser_version: '17.5',
    os: 'Mac OS',
    os_version: '14.5',
    device_type: 'desktop',
    device_vendor: 'Apple',
    device_model: 'Macintosh',
  },
  inferred_account: { account_id: 'example.com', domain: 'example.com', source: 'email_domain', confidence: 0.8 },
};

export const enrichedNullParts: EnrichedEvent = {
  ...rawMinimal,
  geo: { country: null, region: null, city: null, lat: null, lon: null, timezone: null },
  ip_org: { asn: null, org: null },
  ua: {
    browser: null,
    browser_version: null,
    os: null,
    os_version: null,
    device_type: null,
    device_vendor: null,
    device_model: null,
  },
  inferred_account: { account_id: 'acc_9', domain: null, source: 'explicit', confidence: 1 },
};

export const enrichedMinimal: EnrichedEvent = { ...rawMinimal, geo: null, ip_org: null, ua: null, inferred_account: null };

export const cleanFull: CleanEvent = {
  ...enrichedFull,
  user_id: 'p1_9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08',
  identity_anonymized: true,
  key_version: 3,
};
export const cleanNullParts: CleanEvent = { ...enrichedNullParts, identity_anonymized: false, key_version: 0 };
export const cleanMinimal: CleanEvent = { ...enrichedMinimal, identity_anonymized: false, key_version: 0 };

/**
 * Unsealed overwrite records: the codec still reads and writes them (the schema's `sealed` is
 * optional, for old readers), but the compactor dead-letters them (overwrite-cipher.ts): only
 * codec and schema tests may use these, never as a command meant to apply.
 */
export const overwriteFull: OverwriteRecord = {
  request_id: 'req_01JH7Z7Q3X',
  tenant_id: 'tn_acme',
  subject: 'user',
  id: 'u_42',
  set: { email: 'anon-7f3a@anonymous.invalid', first_name: null, last_name: null, 'ニックネーム': 'ゾーイ' },
  mode: 'anonymize',
  delete_events: false,
  suppress: true,
  requested_at: T0 + 60_000,
  insert_missing: true,
  sealed: null,
};
export const overwriteEmptySet: OverwriteRecord = {
  request_id: 'req_2',
  tenant_id: 't',
  subject: 'account',
  id: 'acc_9',
  set: {},
  mode: 'delete',
  delete_events: true,
  suppress: false,
  requested_at: 0,
  insert_missing: null,
  sealed: null,
};
/** as the collector writes it: id and set only inside `sealed` (bytes here are arbitrary) */
export const overwriteSealed: OverwriteRecord = {
  ...overwriteFull,
  id: '',
  set: {},
  sealed: Buffer.from([0x01, 0x00, 0xff, 0x80, 0x7f]),
};
