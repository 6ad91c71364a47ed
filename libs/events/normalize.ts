// Turns one validated Segment-shaped message into the Tracklane envelope: tenant from the
// write key, ids and strings trimmed, maps JSON-encoded within limits, timestamps
// clock-skew corrected and far-future values clamped with a flag (DESIGN.md §2).
import { isIP } from 'node:net';
import { LIMITS, type ElementInfo, type JsonMap, type PageContext, type RawEvent } from './envelope.js';
import { isServerLibrary } from './libraries.js';
import type { SegmentMessage } from './segment-message.js';

export interface RequestFacts {
  tenantId: string;
  /** server time the request arrived, ms */
  receivedAt: number;
  /** the request's client address (already resolved through trusted proxies) */
  requestIp: string | null;
  requestUserAgent: string | null;
  /** the batch-level `sentAt`, when the client sent one */
  batchSentAt: string | number | null;
}

export interface NormalizeOptions {
  /** corrected timestamps later than receivedAt + this are clamped and flagged */
  maxFutureMs: number;
  mintId: () => string;
  /** accept an event with neither userId nor anonymousId (a collection control derives one) */
  allowMissingIds?: boolean;
}

export type Normalized = { ok: true; event: RawEvent } | { ok: false; error: string };

const fail = (error: string): Normalized => ({ ok: false, error });

/** Client times outside [2000, 2100) are rejected: they are bugs, and would not partition sanely. */
export const MIN_TIMESTAMP_MS = Date.UTC(2000, 0, 1);
export const MAX_TIMESTAMP_MS = Date.UTC(2100, 0, 1);

export function normalizeMessage(msg: SegmentMessage, facts: RequestFacts, opts: NormalizeOptions): Normalized {
  for (const field of ['timestamp', 'originalTimestamp', 'sentAt'] as const) {
    const v = msg[field];
    if (v === null || v === undefined) continue;
    const ms = typeof v === 'number' ? v : Date.parse(v);
    if (Number.isNaN(ms)) return fail(`${field}: must be an ISO-8601 date`);
    if (ms < MIN_TIMESTAMP_MS || ms > MAX_TIMESTAMP_MS) return fail(`${field}: must lie between 2000-01-01 and 2100-01-01`);
  }
  const properties = msg.properties ?? {};
  // NOTE: the tag may send the clicked element top-level or under properties.element; it is not
  // a property (encoded without it, rather than from a copy without it: copy + delete is slow in V8).
  const rawElement = msg.element ?? asRecord(properties['element']);

  const encodedProps = encodeMap(properties, 'properties', 'element');
  if (typeof encodedProps === 'string') return fail(encodedProps);

  const isGroup = msg.type === 'group';
  const encodedTraits = encodeMap(isGroup ? {} : (msg.traits ?? {}), 'traits');
  if (typeof encodedTraits === 'string') return fail(encodedTraits);
  const encodedAccountTraits = encodeMap(isGroup ? (msg.traits ?? {}) : {}, 'traits');
  if (typeof encodedAccountTraits === 'string') return fail(encodedAccountTraits);

  const time = correctTimestamp(msg, facts, opts.maxFutureMs);
  const ctx = msg.context ?? {};
  const page = asRecord(ctx['page']) ?? {};
  const screen = asRecord(ctx['screen']) ?? {};
  const library = asRecord(ctx['library']) ?? {};

  const contextIp = asString(ctx['ip'])?.trim();
  // NOTE: a server-side SDK sends its end user's address in context.ip; an invalid one is
  // dropped rather than replaced by the request address (that would be the server's).
  const ip = contextIp !== undefined ? (isIP(contextIp) ? contextIp : null) : facts.requestIp;

  const context: PageContext = {
    url: text(stringProp(page, 'url') ?? stringProp(properties, 'url'), LIMITS.urlChars),
    path: text(stringProp(page, 'path') ?? stringProp(properties, 'path'), LIMITS.urlChars),
    referrer: text(stringProp(page, 'referrer') ?? stringProp(properties, 'referrer'), LIMITS.urlChars),
    title: text(stringProp(page, 'title') ?? stringProp(properties, 'title'), LIMITS.shortTextChars),
    search: text(stringProp(page, 'search') ?? stringProp(properties, 'search'), LIMITS.urlChars),
    locale: text(stringProp(ctx, 'locale'), 64),
    timezone: text(stringProp(ctx, 'timezone'), 64),
    screen_width: intOrNull(screen['width']),
    screen_height: intOrNull(screen['height']),
    library_name: text(stringProp(library, 'name'), 64),
    library_version: text(stringProp(library, 'version'), 64),
  };

  // TRICKY: the schema's presence checks ran before trimming: an id of spaces passes them and
  // trims to null here, which would store an event with no identity (or an alias without one).
  const userId = nonEmpty(msg.userId);
  const anonymousId = nonEmpty(msg.anonymousId);
  const previousId = nonEmpty(msg.previousId);
  const accountId = nonEmpty(msg.groupId) ?? idProp(ctx, 'groupId');
  // NOTE: cookieless mode derives an id for events that name none; an id given blank is an error
  const named = (msg.userId !== null && msg.userId !== undefined) || (msg.anonymousId !== null && msg.anonymousId !== undefined);
  if (userId === null && anonymousId === null && (opts.allowMissingIds !== true || named)) return fail('userId: either userId or anonymousId is required');
  if (msg.type === 'alias' && (previousId === null || userId === null)) return fail('previousId: alias requires previousId and userId');
  if (msg.type === 'group' && accountId === null) return fail('groupId: group requires groupId');

  const event: RawEvent = {
    event_id: nonEmpty(msg.messageId) ?? opts.mintId(),
    tenant_id: facts.tenantId,
    type: msg.type,
    name: text(msg.type === 'track' ? msg.event : (msg.name ?? msg.event), LIMITS.nameChars),
    user_id: userId,
    anonymous_id: anonymousId,
    previous_id: previousId,
    session_id: nonEmpty(msg.sessionId) ?? idProp(ctx, 'sessionId'),
    account_id: accountId,
    occurred_at: time.occurredAt,
    sent_at: time.sentAt,
    received_at: facts.receivedAt,
    timestamp_clamped: time.clamped,
    ip,
    // NOTE: a server-side SDK's request carries its own user agent, not its end user's (libraries.ts)
    user_agent: text(stringProp(ctx, 'userAgent') ?? (isServerLibrary(context.library_name) ? null : facts.requestUserAgent), LIMITS.shortTextChars),
    context,
    element: rawElement ? toElement(rawElement) : null,
    properties: encodedProps,
    traits: encodedTraits,
    account_traits: encodedAccountTraits,
  };
  return { ok: true, event };
}

/**
 * The per-event size limit applies to what is stored: the event as JSON, after unknown
 * fields were dropped. Returns the size in bytes when it is over `limit`, else null.
 * NOTE: a cheap bound decides most events without serialising them; only events whose bound
 * exceeds the limit are measured exactly. The bound must hold for any content:
 * JSON.stringify writes a UTF-16 unit of a raw string in at most 6 bytes (a control character
 * or lone surrogate becomes \u00XX), and of a map value, itself JSON text, in at most 3 (a
 * non-ASCII character; `"` and `\` take 2).
 */
export function eventBytesOver(event: RawEvent, limit: number): number | null {
  const ENVELOPE = 1024; // field names, punctuation, numbers and booleans
  let raw = 0;
  let encoded = 0;
  for (const map of [event.properties, event.traits, event.account_traits]) {
    for (const k in map) {
      raw += k.length + 1; // + 6 bytes for `"k":"",` (1 × 6)
      encoded += map[k]?.length ?? 0;
    }
  }
  for (const v of [event.event_id, event.tenant_id, event.name, event.user_id, event.anonymous_id, event.previous_id, event.session_id, event.account_id, event.ip, event.user_agent]) {
    raw += v?.length ?? 0;
  }
  const c = event.context;
  for (const v of [c.url, c.path, c.referrer, c.title, c.search, c.locale, c.timezone, c.library_name, c.library_version]) raw += v?.length ?? 0;
  const el = event.element;
  if (el) {
    raw += (el.tag?.length ?? 0) + (el.id?.length ?? 0) + (el.label?.length ?? 0) + (el.href?.length ?? 0);
    for (const cls of el.classes) raw += cls.length + 1;
  }
  if (ENVELOPE + 6 * raw + 3 * encoded <= limit) return null;
  const bytes = Buffer.byteLength(JSON.stringify(event));
  return bytes > limit ? bytes : null;
}

/**
 * Corrected timestamp = received_at − (sent_at − occurred_at): the client's clock offset
 * cancels out. Without sentAt the client's timestamp is taken as is.
 */
export function correctTimestamp(
  msg: Pick<SegmentMessage, 'timestamp' | 'originalTimestamp' | 'sentAt'>,
  facts: Pick<RequestFacts, 'receivedAt' | 'batchSentAt'>,
  maxFutureMs: number,
): { occurredAt: number; sentAt: number | null; clamped: boolean } {
  const occurred = toMs(msg.timestamp ?? msg.originalTimestamp);
  // NOTE: a message's own sentAt was range-checked in normalizeMessage; the batch-level one
  // is taken only when it is a time in range, like an unparsable one it is ignored otherwise.
  const sentAt = inRange(toMs(msg.sentAt ?? facts.batchSentAt));
  let occurredAt = facts.receivedAt;
  if (occurred !== null) {
    occurredAt = sentAt !== null ? facts.receivedAt - (sentAt - occurred) : occurred;
  }
  // NOTE: the correction can carry a valid client time out of range (e.g. sentAt far ahead
  // of timestamp); such values are clamped like far-future ones, and flagged.
  if (occurredAt > facts.receivedAt + maxFutureMs || occurredAt < MIN_TIMESTAMP_MS) {
    return { occurredAt: facts.receivedAt, sentAt, clamped: true };
  }
  return { occurredAt, sentAt, clamped: false };
}

function inRange(ms: number | null): number | null {
  return ms !== null && ms >= MIN_TIMESTAMP_MS && ms <= MAX_TIMESTAMP_MS ? ms : null;
}

function toMs(v: string | number | null | undefined): number | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'number') return Math.trunc(v);
  const ms = Date.parse(v);
  return Number.isNaN(ms) ? null : ms;
}

/**
 * JSON-encodes each value of a string-keyed map, enforcing the limits, leaving out the key
 * `skip` (as given, before trimming). Returns the map, or an error message naming the field and the limit.
 */
export function encodeMap(obj: Record<string, unknown>, field: string, skip?: string): JsonMap | string {
  const out: JsonMap = {};
  let n = 0;
  for (const rawKey in obj) {
    if (rawKey === skip) continue;
    const value = obj[rawKey];
    if (value === undefined) continue;
    const key = rawKey.trim().toWellFormed();
    // NOTE: `out.__proto__ = …` would hit the prototype setter and vanish; the key is dropped on purpose.
    if (key.length === 0 || key === '__proto__') continue;
    if (key.length > LIMITS.mapKeyChars) return `${field}: a key is longer than ${LIMITS.mapKeyChars} characters`;
    if (++n > LIMITS.mapEntries) return `${field}: more than ${LIMITS.mapEntries} entries`;
    let encoded: string | undefined;
    try {
      encoded = JSON.stringify(typeof value === 'string' ? value.trim() : value);
    } catch {
      // TRICKY: JSON.parse takes any depth, JSON.stringify recurses: ~10k levels overflow the stack.
      return `${field}.${key}: value could not be encoded (nested too deeply)`;
    }
    if (encoded === undefined) continue;
    if (encoded.length > LIMITS.mapValueChars) {
      return `${field}.${key}: value is longer than ${LIMITS.mapValueChars} characters`;
    }
    out[key] = encoded;
  }
  return out;
}

function toElement(raw: Record<string, unknown>): ElementInfo {
  const classes = Array.isArray(raw['classes']) ? raw['classes'] : [];
  return {
    tag: text(asString(raw['tag']), 32),
    id: text(asString(raw['id']), LIMITS.labelChars),
    classes: classes
      .filter((c): c is string => typeof c === 'string')
      .map((c) => cut(c.trim().toWellFormed(), 64))
      .filter((c) => c.length > 0)
      .slice(0, LIMITS.maxClasses),
    label: text(asString(raw['label']), LIMITS.labelChars),
    href: text(asString(raw['href']), LIMITS.urlChars),
  };
}

// TRICKY: client strings may hold lone UTF-16 surrogates, and cutting at a length can split
// a pair; ClickHouse rejects such a row and with it the whole insert. Every stored string
// passes through here: made well-formed, and cut at a code-point boundary.
function nonEmpty(v: string | number | null | undefined): string | null {
  if (v === null || v === undefined) return null;
  const t = typeof v === 'number' ? String(v) : v.trim().toWellFormed();
  return t.length > 0 ? t : null;
}

function text(v: string | null | undefined, max: number): string | null {
  const t = nonEmpty(v);
  return t === null ? null : cut(t, max);
}

/** At most `max` UTF-16 units, never ending in half a surrogate pair. */
export function cut(s: string, max: number): string {
  if (s.length <= max) return s;
  const code = s.charCodeAt(max - 1);
  return s.slice(0, code >= 0xd800 && code <= 0xdbff ? max - 1 : max);
}

/** An integer within the envelope's int32 (Avro `int`), or null. */
function intOrNull(v: unknown): number | null {
  if (typeof v !== 'number' || !Number.isFinite(v)) return null;
  const n = Math.trunc(v);
  return n >= -0x80000000 && n <= 0x7fffffff ? n : null;
}

/** A string or number id from a loosely typed object, trimmed; over-long ids are cut. */
function idProp(obj: Record<string, unknown>, key: string): string | null {
  const v = obj[key];
  if (typeof v !== 'string' && typeof v !== 'number') return null;
  const id = nonEmpty(v);
  return id === null ? null : cut(id, LIMITS.idChars);
}

function asString(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function asRecord(v: unknown): Record<string, unknown> | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

function stringProp(props: Record<string, unknown>, key: string): string | undefined {
  return asString(props[key]);
}
