// Allocation-free checks of the envelope schemas (envelope.ts), for the records the stages
// decode from Kafka: true when the schema certainly accepts the value, which can then be used as
// it is. False means "ask the schema": zod words the error (or accepts what a check here is too
// strict for). NOTE: zod copies every object it parses; on a stage's hot path that copy was half
// of a record's decode cost (bench/record-codec-bench.ts). envelope-check.test.ts holds each
// check to its schema on generated values: whatever a check accepts, the schema accepts with the
// same field values.
import { ACCOUNT_SOURCES, EVENT_TYPES, LIMITS, type CleanEvent, type EnrichedEvent, type RawEvent } from './envelope.js';

type Fields = Record<string, unknown>;

const EVENT_TYPE_SET: ReadonlySet<unknown> = new Set(EVENT_TYPES);
const ACCOUNT_SOURCE_SET: ReadonlySet<unknown> = new Set(ACCOUNT_SOURCES);

const RAW_NULLABLE_STRINGS = ['name', 'user_id', 'anonymous_id', 'previous_id', 'session_id', 'account_id', 'ip', 'user_agent'] as const;
const CONTEXT_NULLABLE_STRINGS = ['url', 'path', 'referrer', 'title', 'search', 'locale', 'timezone', 'library_name', 'library_version'] as const;
const ELEMENT_NULLABLE_STRINGS = ['tag', 'id', 'label', 'href'] as const;
const GEO_NULLABLE_STRINGS = ['country', 'region', 'city', 'timezone'] as const;
const UA_NULLABLE_STRINGS = ['browser', 'browser_version', 'os', 'os_version', 'device_type', 'device_vendor', 'device_model'] as const;

const isObject = (v: unknown): v is Fields => v !== null && typeof v === 'object' && !Array.isArray(v);
const isStringOrNull = (v: unknown): boolean => v === null || typeof v === 'string';
const isInt = (v: unknown): boolean => Number.isSafeInteger(v);
const isIntOrNull = (v: unknown): boolean => v === null || Number.isSafeInteger(v);
const isFiniteOrNull = (v: unknown): boolean => v === null || (typeof v === 'number' && Number.isFinite(v));
const isBoundedId = (v: unknown): boolean => typeof v === 'string' && v.length >= 1 && v.length <= LIMITS.idChars;

function allStringsOrNull(o: Fields, keys: readonly string[]): boolean {
  for (const k of keys) if (!isStringOrNull(o[k])) return false;
  return true;
}

/** a JSON map: an object whose own values are all strings */
function isJsonMap(v: unknown): boolean {
  if (!isObject(v)) return false;
  for (const k of Object.keys(v)) if (typeof v[k] !== 'string') return false;
  return true;
}

function isContext(v: unknown): boolean {
  return isObject(v) && allStringsOrNull(v, CONTEXT_NULLABLE_STRINGS) && isIntOrNull(v['screen_width']) && isIntOrNull(v['screen_height']);
}

function isElementOrNull(v: unknown): boolean {
  if (v === null) return true;
  if (!isObject(v) || !allStringsOrNull(v, ELEMENT_NULLABLE_STRINGS)) return false;
  const classes = v['classes'];
  if (!Array.isArray(classes)) return false;
  for (const c of classes) if (typeof c !== 'string') return false;
  return true;
}

function isRawFields(e: Fields): boolean {
  return (
    isBoundedId(e['event_id']) &&
    isBoundedId(e['tenant_id']) &&
    EVENT_TYPE_SET.has(e['type']) &&
    allStringsOrNull(e, RAW_NULLABLE_STRINGS) &&
    isInt(e['occurred_at']) &&
    isIntOrNull(e['sent_at']) &&
    isInt(e['received_at']) &&
    typeof e['timestamp_clamped'] === 'boolean' &&
    isContext(e['context']) &&
    isElementOrNull(e['element']) &&
    isJsonMap(e['properties']) &&
    isJsonMap(e['traits']) &&
    isJsonMap(e['account_traits'])
  );
}

function isGeoOrNull(v: unknown): boolean {
  return v === null || (isObject(v) && allStringsOrNull(v, GEO_NULLABLE_STRINGS) && isFiniteOrNull(v['lat']) && isFiniteOrNull(v['lon']));
}

function isIpOrgOrNull(v: unknown): boolean {
  return v === null || (isObject(v) && isIntOrNull(v['asn']) && isStringOrNull(v['org']));
}

function isUaOrNull(v: unknown): boolean {
  return v === null || (isObject(v) && allStringsOrNull(v, UA_NULLABLE_STRINGS));
}

function isInferredAccountOrNull(v: unknown): boolean {
  if (v === null) return true;
  if (!isObject(v)) return false;
  const confidence = v['confidence'];
  return typeof v['account_id'] === 'string' && isStringOrNull(v['domain']) && ACCOUNT_SOURCE_SET.has(v['source']) && typeof confidence === 'number' && Number.isFinite(confidence);
}

function isEnrichedFields(e: Fields): boolean {
  return isRawFields(e) && isGeoOrNull(e['geo']) && isIpOrgOrNull(e['ip_org']) && isUaOrNull(e['ua']) && isInferredAccountOrNull(e['inferred_account']);
}

/** True when rawEventSchema certainly accepts `v` (see the file's head). */
export function isValidRawEvent(v: unknown): v is RawEvent {
  return isObject(v) && isRawFields(v);
}

/** True when enrichedEventSchema certainly accepts `v`. */
export function isValidEnrichedEvent(v: unknown): v is EnrichedEvent {
  return isObject(v) && isEnrichedFields(v);
}

/** True when cleanEventSchema certainly accepts `v`. */
export function isValidCleanEvent(v: unknown): v is CleanEvent {
  return isObject(v) && isEnrichedFields(v) && typeof v['identity_anonymized'] === 'boolean' && isInt(v['key_version']);
}
