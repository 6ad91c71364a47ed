// Property-based fuzzing of the collector's per-message path in process: Segment message
// validation → normalisation → per-event size → the enrich stage's scrubbing, on mutated and
// hostile payloads. Fixed seeds (FUZZ_SEED overrides); fast-check prints the seed and the
// shrunk counterexample.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jsonStrings } from '../core/json-strings.js';
import { createEnrichStage } from '../enrich/enrich-stage.js';
import { DEFAULT_FLAGS } from '../tenants/flags.js';
import { enrichedEventSchema, EVENT_TYPES, LIMITS, rawEventSchema, type EnrichedEvent, type JsonMap, type RawEvent } from './envelope.js';
import { eventBytesOver, MAX_TIMESTAMP_MS, MIN_TIMESTAMP_MS, normalizeMessage, type RequestFacts } from './normalize.js';
import { describeIssues, segmentMessageSchema } from './segment-message.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20261129);
const RECEIVED = Date.parse('2026-11-29T12:00:00.000Z');
const MAX_FUTURE_MS = 60_000;
const OPTS = { maxFutureMs: MAX_FUTURE_MS, mintId: () => 'minted' };
const enrich = createEnrichStage({ geo: null, asn: null, flags: { get: () => DEFAULT_FLAGS } });

// ── hostile values ──────────────────────────────────────────────────────────────────────────

const anyUnit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)); // lone surrogates too
const URL_PIECES = ['a', 'Z', '0', '.', '-', '_', '+', '@', '%', '%40', '%2b', '%2F', '%zz', '%E9', '/', '?', '&', '=', '#', ':', '//', 'https://', 'x@y.io', 'com', '\u0000', '\u0001', '"', '\\', ' ', '\t', 'é', '😀', '\uD800', '\uDFFF'];
const urlPiece = fc.constantFrom(...URL_PIECES);
const urlish = fc.array(urlPiece, { maxLength: 40 }).map((xs) => xs.join(''));
/** Long strings cheaply: a short pattern repeated (the ReDoS shapes are all of this kind). */
const repeated = (max: number) =>
  fc
    .tuple(fc.oneof(urlish, fc.string({ unit: anyUnit, maxLength: 6 })), fc.oneof({ weight: 3, arbitrary: fc.integer({ min: 1, max: 300 }) }, { weight: 1, arbitrary: fc.integer({ min: 1, max }) }))
    .map(([s, n]) => s.repeat(Math.max(1, Math.floor(n / Math.max(1, s.length)))));
const ADVERSARIAL = [
  `${'a'.repeat(8180)}@`,
  `@${'a.'.repeat(4090)}`,
  `x@${'a.1'.repeat(2700)}`,
  `?${'%=&'.repeat(2700)}`,
  `https://${'@'.repeat(8000)}`,
  `${'a'.repeat(8000)}%40`,
  `?${'email=a@b.co&'.repeat(580)}`,
  '\uD800'.repeat(3000),
  '\u0001'.repeat(8000),
  '"'.repeat(4000),
];
const hostileString = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: anyUnit, maxLength: 30 }) },
  { weight: 3, arbitrary: urlish },
  { weight: 2, arbitrary: repeated(10_000) },
  { weight: 1, arbitrary: fc.constantFrom(...ADVERSARIAL) },
  { weight: 1, arbitrary: fc.constantFrom('', ' ', ' \t\n ', 'NaN', 'Infinity', '-0', '1e400', '0x10', ' 42 ', 'null', 'true', '2026-11-29T12:00:00Z', '1970-01-01', '+275760-09-13T00:00:00.000Z') },
  { weight: 1, arbitrary: fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf') },
);
const hostileNumber = fc.oneof(
  fc.double(), // NaN, ±Infinity, -0 included: not JSON, but the functions take unknown input
  fc.integer(),
  fc.constantFrom(1e300, -1e300, 2 ** 53, 2 ** 31, -(2 ** 31) - 1, MIN_TIMESTAMP_MS - 1, MAX_TIMESTAMP_MS + 1, RECEIVED, RECEIVED + 86_400_000, 0.5),
);
const hostileKey = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'url', 'path', 'referrer', 'search', 'title', 'href', 'element', 'email', 'page', 'name', '', ' ', ' k ') },
  { weight: 3, arbitrary: fc.string({ unit: anyUnit, maxLength: 12 }) },
  { weight: 1, arbitrary: fc.integer({ min: 120, max: 400 }).map((n) => 'k'.repeat(n)) },
);
const leaf = fc.oneof(hostileString, hostileNumber, fc.boolean(), fc.constant(null));

/** Own data properties, also `__proto__` (as JSON.parse makes them), unlike an object literal. */
function objectOf(entries: readonly (readonly [string, unknown])[]): Record<string, unknown> {
  return Object.fromEntries(entries);
}

function nested(depth: number, asArray: boolean): unknown {
  let v: unknown = 'bottom';
  for (let i = 0; i < depth; i++) v = asArray ? [v] : { d: v };
  // NOTE: fast-check prints a counterexample recursively: this keeps its report (and seed) readable.
  Object.defineProperty(v, fc.toStringMethod, { value: () => `nested(${depth}, ${asArray ? 'arrays' : 'objects'})` });
  return v;
}

const { value: hostileValue } = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    { weight: 6, arbitrary: leaf },
    { weight: 2, arbitrary: fc.array(tie('value'), { maxLength: 4 }) },
    { weight: 2, arbitrary: fc.array(fc.tuple(hostileKey, tie('value')), { maxLength: 5 }).map(objectOf) },
  ),
}));
// deep nesting: JSON.parse takes it, JSON.stringify overflows its stack past ~10k levels
const deepValue = fc.tuple(fc.oneof(fc.integer({ min: 50, max: 2_000 }), fc.integer({ min: 9_000, max: 20_000 })), fc.boolean()).map(([d, a]) => nested(d, a));

const hostileMap = fc.oneof(
  { weight: 8, arbitrary: fc.array(fc.tuple(hostileKey, hostileValue), { maxLength: 8 }).map(objectOf) },
  { weight: 1, arbitrary: fc.tuple(hostileKey, deepValue).map(([k, v]) => objectOf([[k, v], ['after', 1]])) },
  // many keys, around the 200-entry limit
  { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 150, max: 260 }), leaf).map(([n, v]) => objectOf(Array.from({ length: n }, (_, i) => [`k${i}`, v]))) },
);

/** A field that is mostly well-typed, sometimes anything, sometimes absent. */
function field<T>(valid: fc.Arbitrary<T>): fc.Arbitrary<unknown> {
  return fc.oneof({ weight: 4, arbitrary: valid }, { weight: 1, arbitrary: hostileValue }, { weight: 1, arbitrary: fc.constant(undefined) });
}

const id = fc.oneof(fc.constantFrom('u1', ' u2 ', 'anon-1'), hostileString, hostileNumber);
const time = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: MIN_TIMESTAMP_MS, max: RECEIVED + 86_400_000 }) },
  { weight: 4, arbitrary: fc.date({ min: new Date(MIN_TIMESTAMP_MS), max: new Date(MAX_TIMESTAMP_MS), noInvalidDate: true }).map((d) => d.toISOString()) },
  { weight: 1, arbitrary: fc.integer({ min: MIN_TIMESTAMP_MS - 10, max: MAX_TIMESTAMP_MS + 10 }) },
  { weight: 1, arbitrary: fc.oneof(hostileString, hostileNumber) },
);
const pageContext = fc.record(
  { url: field(hostileString), path: field(hostileString), referrer: field(hostileString), title: field(hostileString), search: field(hostileString) },
  { requiredKeys: [] },
);
const context = fc.record(
  {
    page: field(pageContext),
    ip: field(fc.oneof(fc.constantFrom('8.8.8.8', '10.1.2.3', '::1', ' 81.2.69.160 ', '999.1.1.1'), hostileString)),
    userAgent: field(hostileString),
    locale: field(hostileString),
    timezone: field(hostileString),
    groupId: field(id),
    sessionId: field(id),
    screen: field(fc.record({ width: field(hostileNumber), height: field(hostileNumber) }, { requiredKeys: [] })),
    library: field(fc.record({ name: field(hostileString), version: field(hostileString) }, { requiredKeys: [] })),
  },
  { requiredKeys: [] },
);
/** Typed as the schema wants (mutations bring the wrong types). */
const element = fc.record(
  { tag: hostileString, id: hostileString, classes: fc.array(hostileString, { maxLength: 8 }), label: hostileString, href: hostileString },
  { requiredKeys: [] },
);
/** properties.element is read loosely: anything goes. */
const looseElement = fc.record(
  { tag: field(hostileString), id: field(hostileString), classes: field(fc.array(fc.oneof(hostileString, hostileNumber), { maxLength: 8 })), label: field(hostileString), href: field(hostileString) },
  { requiredKeys: [] },
);
const properties = fc.oneof(
  hostileMap,
  fc.record({ url: field(hostileString), path: field(hostileString), referrer: field(hostileString), title: field(hostileString), search: field(hostileString), href: field(hostileString), element: field(looseElement) }, { requiredKeys: [] }),
);

const bigProperties = fc
  .tuple(fc.integer({ min: 3, max: 8 }), fc.integer({ min: 4000, max: 8000 }), urlish)
  .map(([n, len, pattern]) => objectOf(Array.from({ length: n }, (_, i) => [`pad${i}`, (pattern || 'y').repeat(len).slice(0, len)])));

/** A valid message of each type (so the hostile content below is reached), … */
const validBase = fc.record({
  type: fc.constantFrom(...EVENT_TYPES),
  messageId: fc.oneof(fc.uuid(), fc.string({ unit: anyUnit, maxLength: 20 })),
  // ids of white space only pass the schema's presence checks: normalisation must catch them
  userId: fc.oneof({ weight: 4, arbitrary: fc.constantFrom('u1', ' u2 ', 'user@example.com') }, { weight: 1, arbitrary: fc.constantFrom('  ', '\u3000', '\t\n') }, { weight: 1, arbitrary: fc.integer() }),
  anonymousId: fc.option(fc.oneof(fc.string({ unit: anyUnit, minLength: 1, maxLength: 128 }), fc.constant(' ')), { nil: undefined }),
  event: fc.constantFrom('Signed Up', ' Viewed ', 'x'.repeat(300)),
  groupId: fc.constantFrom('g1', 'acct-7', ' '),
  previousId: fc.constantFrom('anon-1', 'p2', ' '),
});
/** … with hostile content in every field that carries some, … */
const content = fc.record(
  {
    name: hostileString,
    timestamp: time,
    originalTimestamp: time,
    sentAt: time,
    sessionId: fc.oneof(fc.string({ unit: anyUnit, maxLength: 140 }), fc.integer()),
    context: fc.oneof({ weight: 6, arbitrary: context }, { weight: 1, arbitrary: hostileMap }),
    properties: fc.oneof({ weight: 5, arbitrary: properties }, { weight: 1, arbitrary: bigProperties }),
    traits: fc.oneof({ weight: 5, arbitrary: hostileMap }, { weight: 1, arbitrary: bigProperties }),
    element,
    _metadata: hostileValue,
  },
  { requiredKeys: [] },
);
/** … then up to four mutations: a field set to anything or removed, or an extra key. */
const MESSAGE_KEYS = ['type', 'messageId', 'userId', 'anonymousId', 'previousId', 'groupId', 'sessionId', 'event', 'name', 'timestamp', 'sentAt', 'context', 'properties', 'traits', 'element'];
const mutation = fc.tuple(fc.oneof(fc.constantFrom(...MESSAGE_KEYS), hostileKey), fc.oneof({ weight: 3, arbitrary: hostileValue }, { weight: 1, arbitrary: fc.constant(undefined) }));
const segmentMessage = fc
  .tuple(validBase, content, fc.oneof({ weight: 3, arbitrary: fc.constant([]) }, { weight: 2, arbitrary: fc.array(mutation, { minLength: 1, maxLength: 4 }) }))
  .map(([base, extra, mutations]) => {
    const entries: [string, unknown][] = [...Object.entries(base), ...Object.entries(extra)];
    for (const [k, v] of mutations) entries.push([k, v]);
    // NOTE: Object.fromEntries keeps `__proto__` as an own key, as JSON.parse does
    return objectOf(entries.filter(([, v]) => v !== undefined));
  });

const message = fc.oneof({ weight: 12, arbitrary: segmentMessage }, { weight: 1, arbitrary: hostileValue });
const batchSentAt = fc.oneof(fc.constant(null), time.filter((t): t is string | number => typeof t === 'string' || typeof t === 'number'));

// ── what must hold of every output ──────────────────────────────────────────────────────────

/** A cheap assertion (vitest's expect costs microseconds, and this runs ~10⁶ times). */
function need(ok: boolean, what: () => string): void {
  if (!ok) throw new Error(what());
}

function isJson(s: string): boolean {
  try {
    JSON.parse(s);
    return true;
  } catch {
    return false;
  }
}

function expectWithin(s: string | null, max: number, what: string): void {
  if (s === null) return;
  need(s.length <= max, () => `${what}: ${s.length} > ${max} characters`);
  // trimmed, then cut: a cut may end in a space (or one unit short, not to split a pair)
  need(s === s.trim() || (s === s.trimStart() && s.length >= max - 1), () => `${what} is not trimmed: ${JSON.stringify(s.slice(0, 40))}`);
}

function expectMap(map: JsonMap, what: string): void {
  need(Object.getPrototypeOf(map) === Object.prototype, () => `${what}: prototype changed`);
  const keys = Object.keys(map);
  need(keys.length <= LIMITS.mapEntries, () => `${what}: ${keys.length} entries`);
  for (const k of keys) {
    need(k.length > 0 && k.length <= LIMITS.mapKeyChars && k === k.trim() && k !== '__proto__', () => `${what}: key ${JSON.stringify(k.slice(0, 40))}`);
    const v = map[k] as string;
    need(v.length <= LIMITS.mapValueChars, () => `${what}.${k}: ${v.length} characters`);
    need(isJson(v), () => `${what}.${k} is not JSON`);
  }
}

function expectWellFormed(v: unknown, what: string): void {
  for (const s of jsonStrings(v)) need(s.isWellFormed(), () => `${what}: not well-formed: ${JSON.stringify(s.slice(0, 40))}`);
}

function expectValidRawEvent(e: RawEvent, facts: RequestFacts): void {
  const parsed = rawEventSchema.safeParse(e);
  need(parsed.success, () => `not a RawEvent: ${JSON.stringify(parsed.error?.issues.slice(0, 3))}`);
  expectWellFormed(e, 'raw event');
  need(e.tenant_id === facts.tenantId && e.received_at === facts.receivedAt, () => 'tenant or received_at changed');
  need((e.user_id ?? e.anonymous_id) !== null, () => 'an event without identity');
  for (const [k, v] of [['event_id', e.event_id], ['user_id', e.user_id], ['anonymous_id', e.anonymous_id], ['previous_id', e.previous_id], ['session_id', e.session_id], ['account_id', e.account_id]] as const) {
    expectWithin(v, LIMITS.idChars, k);
  }
  expectWithin(e.name, LIMITS.nameChars, 'name');
  expectWithin(e.user_agent, LIMITS.shortTextChars, 'user_agent');
  const c = e.context;
  for (const [k, v] of [['url', c.url], ['path', c.path], ['referrer', c.referrer], ['search', c.search]] as const) expectWithin(v, LIMITS.urlChars, k);
  expectWithin(c.title, LIMITS.shortTextChars, 'title');
  for (const v of [c.locale, c.timezone, c.library_name, c.library_version]) expectWithin(v, 64, 'context text');
  if (e.element) {
    expectWithin(e.element.tag, 32, 'element.tag');
    expectWithin(e.element.id, LIMITS.labelChars, 'element.id');
    expectWithin(e.element.label, LIMITS.labelChars, 'element.label');
    expectWithin(e.element.href, LIMITS.urlChars, 'element.href');
    need(e.element.classes.length <= LIMITS.maxClasses, () => 'too many classes');
    for (const cls of e.element.classes) need(cls.length > 0 && cls.length <= 64, () => `class of ${cls.length}`);
  }
  expectMap(e.properties, 'properties');
  expectMap(e.traits, 'traits');
  expectMap(e.account_traits, 'account_traits');
  need(e.occurred_at >= MIN_TIMESTAMP_MS && e.occurred_at <= facts.receivedAt + MAX_FUTURE_MS, () => `occurred_at ${e.occurred_at}`);
  need(e.sent_at === null || (e.sent_at >= MIN_TIMESTAMP_MS && e.sent_at <= MAX_TIMESTAMP_MS), () => `sent_at ${e.sent_at}`);
}

/** The size check is exact when it says "over", and never lets an event over the limit pass. */
function expectSizeCheck(e: RawEvent, limit: number): void {
  const actual = Buffer.byteLength(JSON.stringify(e));
  const over = eventBytesOver(e, limit);
  need(over === null ? actual <= limit : over === actual && actual > limit, () => `eventBytesOver said ${over} for ${actual} bytes, limit ${limit}`);
}

/** Scrubbing never throws, keeps strings well-formed and grows a value by a bounded factor. */
function expectEnriched(raw: RawEvent): EnrichedEvent {
  const r = enrich(raw);
  need(r.kind === 'ok', () => `enrich answered ${r.kind}`);
  const e = (r as { kind: 'ok'; value: EnrichedEvent }).value;
  need(enrichedEventSchema.safeParse(e).success, () => 'not an EnrichedEvent');
  expectWellFormed(e, 'enriched event');
  const grew = (what: string, before: string | null | undefined, after: string | null | undefined) => {
    if (before === null || before === undefined) return;
    // NOTE: `sig=&` (5) → `sig=redacted&` (13) is the steepest growth: ≤ 3× + 16
    need((after ?? '').length <= 3 * before.length + 16, () => `${what} grew from ${before.length} to ${after?.length}`);
  };
  for (const k of ['url', 'path', 'referrer', 'search', 'title'] as const) grew(k, raw.context[k], e.context[k]);
  grew('href', raw.element?.href, e.element?.href);
  grew('label', raw.element?.label, e.element?.label);
  need(Object.keys(e.properties).join('\n') === Object.keys(raw.properties).join('\n'), () => 'properties keys changed');
  for (const [k, v] of Object.entries(e.properties)) {
    grew(`properties.${k}`, raw.properties[k], v);
    need(isJson(v), () => `enriched properties.${k} is not JSON`);
  }
  return e;
}

type Outcome = 'invalid' | 'rejected' | 'too-big' | 'stored';

function runOne(msg: unknown, facts: RequestFacts, limit: number): Outcome {
  const parsed = segmentMessageSchema.safeParse(msg);
  if (!parsed.success) {
    need(describeIssues(parsed.error).length > 0, () => 'an empty validation message');
    return 'invalid';
  }
  const r = normalizeMessage(parsed.data, facts, OPTS);
  if (!r.ok) {
    need(r.error.length > 0 && r.error.length <= 400 && r.error.isWellFormed(), () => `error message ${JSON.stringify(r.error.slice(0, 80))}`);
    return 'rejected';
  }
  expectValidRawEvent(r.event, facts);
  expectSizeCheck(r.event, limit);
  expectSizeCheck(r.event, 32 * 1024);
  if (eventBytesOver(r.event, 32 * 1024) !== null) return 'too-big';
  expectEnriched(r.event);
  return 'stored';
}

describe('ingest path fuzz (in process)', () => {
  it('never throws: every message becomes a valid event or a per-event error (12,000 cases)', () => {
    const seen: Record<Outcome, number> = { invalid: 0, rejected: 0, 'too-big': 0, stored: 0 };
    fc.assert(
      fc.property(message, batchSentAt, fc.integer({ min: 1024, max: 64 * 1024 }), (msg, sentAt, limit) => {
        seen[runOne(msg, { tenantId: 'acme', receivedAt: RECEIVED, requestIp: '203.0.113.9', requestUserAgent: 'curl/8', batchSentAt: sentAt }, limit)]++;
      }),
      { numRuns: 12_000, seed: SEED },
    );
    // NOTE: the generator must reach every outcome, or the property tests less than it claims.
    for (const [outcome, n] of Object.entries(seen)) expect(n, `${outcome}: ${JSON.stringify(seen)}`).toBeGreaterThan(200);
  });

  it('mutated JSON text: parses or fails with a SyntaxError; what parses runs through (2,000 cases)', () => {
    const valid = JSON.stringify({ type: 'page', messageId: 'm1', userId: 'u1', properties: { url: 'https://a.io/?email=x@y.io', title: 'T' }, context: { page: { referrer: '/r' } } });
    const edit = fc.tuple(fc.nat(), fc.constantFrom('delete', 'insert', 'replace'), fc.constantFrom('{', '}', '[', ']', '"', '\\', ',', ':', '0', 'e', '-', '\\u', '\\uD800', '\u0000', 'null', ' '));
    fc.assert(
      fc.property(fc.array(edit, { minLength: 1, maxLength: 6 }), (edits) => {
        let text = valid;
        for (const [at, op, s] of edits) {
          const i = at % (text.length + 1);
          text = op === 'delete' ? text.slice(0, i) + text.slice(i + 1) : op === 'insert' ? text.slice(0, i) + s + text.slice(i) : text.slice(0, i) + s + text.slice(i + 1);
        }
        let msg: unknown;
        try {
          msg = JSON.parse(text);
        } catch (err) {
          expect(err).toBeInstanceOf(SyntaxError);
          return;
        }
        runOne(msg, { tenantId: 'acme', receivedAt: RECEIVED, requestIp: null, requestUserAgent: null, batchSentAt: null }, 32 * 1024);
      }),
      { numRuns: 2_000, seed: SEED + 1 },
    );
  });

  it('planted secrets never survive the scrub, whatever surrounds them (3,000 cases)', () => {
    const noise = fc.array(urlPiece, { maxLength: 12 }).map((xs) => xs.join(''));
    const email = fc.constantFrom('fuzz.secret@example.com', 'fuzz.secret%40example.com', 'FUZZ.SECRET%40EXAMPLE.COM', 'fuzz.secret%2Bx@example.co.uk');
    fc.assert(
      fc.property(noise, noise, noise, email, fc.constantFrom('token', 'password', 'Api_Key', 'e%2Dmail', 'code'), (a, b, c, mail, param) => {
        const url = `${a}/${mail}/${b}?${c}&${param}=S3cr3tT0ken&x`;
        const msg = {
          type: 'page',
          userId: 'u1',
          properties: { url, referrer: url, href: url, title: `hi ${mail} ${b}` },
          context: { page: { search: url } },
          element: { href: url, label: ` ${mail} ` },
        };
        const parsed = segmentMessageSchema.parse(msg);
        const r = normalizeMessage(parsed, { tenantId: 'acme', receivedAt: RECEIVED, requestIp: null, requestUserAgent: null, batchSentAt: null }, OPTS);
        if (!r.ok) throw new Error(r.error);
        const stored = JSON.stringify(expectEnriched(r.event)).toLowerCase();
        expect(stored).not.toContain('fuzz.secret');
        expect(stored).not.toContain('s3cr3tt0ken');
      }),
      { numRuns: 3_000, seed: SEED + 2 },
    );
  });
});
