import { describe, expect, it } from 'vitest';
import { correctTimestamp, encodeMap, eventBytesOver, normalizeMessage, type RequestFacts } from './normalize.js';
import { segmentMessageSchema } from './segment-message.js';

const RECEIVED = Date.parse('2026-11-29T12:00:00.000Z');
const facts: RequestFacts = {
  tenantId: 'acme',
  receivedAt: RECEIVED,
  requestIp: '203.0.113.9',
  requestUserAgent: 'curl/8',
  batchSentAt: null,
};
const opts = { maxFutureMs: 60_000, mintId: () => 'minted-id' };

function normalize(input: unknown, f: Partial<RequestFacts> = {}) {
  const parsed = segmentMessageSchema.safeParse(input);
  if (!parsed.success) throw new Error(parsed.error.message);
  const r = normalizeMessage(parsed.data, { ...facts, ...f }, opts);
  if (!r.ok) throw new Error(r.error);
  return r.event;
}

describe('segmentMessageSchema', () => {
  it.each([
    [{ type: 'track', userId: 'u1' }, 'event'],
    [{ type: 'group', userId: 'u1' }, 'groupId'],
    [{ type: 'alias', userId: 'u1' }, 'previousId'],
    [{ type: 'bogus', userId: 'u1' }, 'type'],
    [{ type: 'page', userId: 'x'.repeat(129) }, '128'],
  ])('rejects %j (%s)', (input, fragment) => {
    const r = segmentMessageSchema.safeParse(input);
    expect(r.success).toBe(false);
    expect(JSON.stringify(r.error?.issues)).toContain(fragment);
  });

  it('ignores unknown fields such as _metadata and integrations', () => {
    const r = segmentMessageSchema.safeParse({
      type: 'track',
      event: 'Signed Up',
      userId: 'u1',
      _metadata: { nodeVersion: '20' },
      integrations: {},
    });
    expect(r.success).toBe(true);
    expect(r.data).not.toHaveProperty('_metadata');
  });
});

describe('normalizeMessage', () => {
  it('maps a Segment identify to the envelope', () => {
    const e = normalize({
      type: 'identify',
      messageId: ' node-next-1795973604921-aa19c1c0 ',
      userId: 42,
      traits: { email: ' alice@acme.com ', firstName: 'Alice', plan: { tier: 'pro' } },
      context: { ip: '8.8.8.8', userAgent: 'Mozilla/5.0', groupId: 'acct-1', library: { name: 'analytics-node' } },
      timestamp: '2026-11-29T11:59:00.000Z',
    });
    expect(e).toMatchObject({
      event_id: 'node-next-1795973604921-aa19c1c0',
      tenant_id: 'acme',
      type: 'identify',
      user_id: '42',
      account_id: 'acct-1',
      ip: '8.8.8.8',
      user_agent: 'Mozilla/5.0',
      received_at: RECEIVED,
      occurred_at: RECEIVED - 60_000,
      timestamp_clamped: false,
    });
    expect(e.traits).toEqual({ email: '"alice@acme.com"', firstName: '"Alice"', plan: '{"tier":"pro"}' });
    expect(e.account_traits).toEqual({});
    expect(e.context.library_name).toBe('analytics-node');
  });

  it('mints an id when messageId is absent and takes ip/UA from the request', () => {
    const e = normalize({ type: 'page', anonymousId: 'a1', name: 'Home' });
    expect(e.event_id).toBe('minted-id');
    expect(e.ip).toBe('203.0.113.9');
    expect(e.user_agent).toBe('curl/8');
    expect(e.name).toBe('Home');
  });

  it('drops an invalid context.ip instead of substituting the request address', () => {
    expect(normalize({ type: 'page', anonymousId: 'a1', context: { ip: 'nope' } }).ip).toBeNull();
  });

  it('puts group traits in account_traits and the groupId in account_id', () => {
    const e = normalize({ type: 'group', userId: 'u1', groupId: 'g-9', traits: { name: 'Acme Ltd' } });
    expect(e.account_id).toBe('g-9');
    expect(e.account_traits).toEqual({ name: '"Acme Ltd"' });
    expect(e.traits).toEqual({});
  });

  it('extracts the clicked element from properties.element', () => {
    const e = normalize({
      type: 'click',
      anonymousId: 'a1',
      properties: {
        element: { tag: 'BUTTON', id: 'save', classes: ['btn', 'btn-primary', 1, '', 'a', 'b', 'c'], label: '  Save  ' },
        extra: 1,
      },
    });
    expect(e.element).toEqual({ tag: 'BUTTON', id: 'save', classes: ['btn', 'btn-primary', 'a', 'b', 'c'], label: 'Save', href: null });
    expect(e.properties).toEqual({ extra: '1' });
  });

  it('reads page fields from context.page, falling back to properties', () => {
    const e = normalize({ type: 'page', anonymousId: 'a', properties: { url: 'https://x.io/a', path: '/a' }, context: { page: { title: 'A' } } });
    expect(e.context).toMatchObject({ url: 'https://x.io/a', path: '/a', title: 'A' });
  });

  it.each(['timestamp', 'sentAt', 'originalTimestamp'])('rejects an unparsable %s', (field) => {
    const parsed = segmentMessageSchema.parse({ type: 'page', userId: 'u', [field]: 'not a date' });
    expect(normalizeMessage(parsed, facts, opts)).toEqual({ ok: false, error: `${field}: must be an ISO-8601 date` });
  });

  it('rejects maps beyond the limits with a message naming the field', () => {
    const parsed = segmentMessageSchema.parse({ type: 'track', event: 'e', userId: 'u', properties: { big: 'x'.repeat(9000) } });
    const r = normalizeMessage(parsed, facts, opts);
    expect(r).toEqual({ ok: false, error: 'properties.big: value is longer than 8192 characters' });
  });
});

describe('correctTimestamp', () => {
  it.each([
    ['no timestamp → received_at', {}, null, RECEIVED, false],
    ['timestamp without sentAt taken as is', { timestamp: RECEIVED - 5000 }, null, RECEIVED - 5000, false],
    ['client clock 1h fast is corrected', { timestamp: RECEIVED + 3_600_000 - 2000, sentAt: RECEIVED + 3_600_000 }, null, RECEIVED - 2000, false],
    ['batch-level sentAt applies', { timestamp: '2026-11-29T13:00:00.000Z' }, '2026-11-29T13:00:10.000Z', RECEIVED - 10_000, false],
    ['far future without sentAt is clamped', { timestamp: RECEIVED + 86_400_000 }, null, RECEIVED, true],
    ['slightly ahead is tolerated', { timestamp: RECEIVED + 30_000 }, null, RECEIVED + 30_000, false],
  ])('%s', (_name, msg, batchSentAt, expected, clamped) => {
    const r = correctTimestamp(msg, { receivedAt: RECEIVED, batchSentAt }, 60_000);
    expect(r.occurredAt).toBe(expected);
    expect(r.clamped).toBe(clamped);
  });
});

describe('encodeMap', () => {
  it.each([
    [{ a: 'x', b: 2, c: true, d: null, e: undefined }, { a: '"x"', b: '2', c: 'true', d: 'null' }],
    [{ '  ': 1, ' k ': ' v ' }, { k: '"v"' }],
  ])('encodes %j', (input, expected) => {
    expect(encodeMap(input, 'p')).toEqual(expected);
  });

  it('limits the number of entries', () => {
    const many = Object.fromEntries(Array.from({ length: 201 }, (_, i) => [`k${i}`, i]));
    expect(encodeMap(many, 'traits')).toBe('traits: more than 200 entries');
  });
});

describe('eventBytesOver', () => {
  const base = normalize({ type: 'track', event: 'E', userId: 'u' });
  it.each([
    ['a small event', {}, null],
    ['maps under the limit', { p: 'x'.repeat(8000), q: 'x'.repeat(8000) }, null],
    ['maps over the limit', { p: 'x'.repeat(8000), q: 'x'.repeat(8000), r: 'x'.repeat(8000), s: 'x'.repeat(8000), t: 'x'.repeat(8000) }, 'over'],
    ['multi-byte characters counted as bytes', { p: 'é'.repeat(8000), q: 'é'.repeat(8000), r: 'é'.repeat(1000) }, 'over'],
    ['escaped quotes counted as bytes', { p: '"'.repeat(4000), q: '"'.repeat(4000), r: '"'.repeat(4000), s: '"'.repeat(4000), t: '"'.repeat(1000) }, 'over'],
  ])('%s', (_name, props, expected) => {
    const event = { ...base, properties: encodeMap(props, 'properties') as Record<string, string> };
    const bytes = eventBytesOver(event, 32 * 1024);
    if (expected === null) expect(bytes).toBeNull();
    else expect(bytes).toBe(Buffer.byteLength(JSON.stringify(event)));
  });
});

describe('eventBytesOver on capped fields (hostile content)', () => {
  // NOTE: 2048 control characters are 12 KB of JSON (\u0001 each): four such URLs are over 32 KB
  // although every field is within its character limit.
  const ctl = '\u0001'.repeat(2048);
  it.each([
    ['control characters in every page field', { url: ctl, path: ctl, referrer: ctl, search: ctl, title: ctl.slice(0, 512) }, 'over'],
    ['the same length of plain text', { url: 'u'.repeat(2048), path: 'p'.repeat(2048), referrer: 'r'.repeat(2048), search: 's'.repeat(2048) }, null],
  ])('%s', (_name, page, expected) => {
    const event = normalize({ type: 'page', anonymousId: 'a', userId: '\u0002'.repeat(128), context: { page, userAgent: '\u0003'.repeat(512) } });
    const actual = Buffer.byteLength(JSON.stringify(event));
    expect(eventBytesOver(event, 32 * 1024)).toBe(expected === null ? null : actual);
    expect(actual > 32 * 1024).toBe(expected !== null);
  });

  it('counts map keys as raw strings (control characters)', () => {
    const props = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`${'\u0001'.repeat(30)}${i}`, 1]));
    const event = { ...normalize({ type: 'track', event: 'E', userId: 'u' }), properties: encodeMap(props, 'properties') as Record<string, string> };
    expect(eventBytesOver(event, 32 * 1024)).toBe(Buffer.byteLength(JSON.stringify(event)));
  });

  it('bounds the envelope of an event with every field at its widest number', () => {
    const event = normalize({ type: 'page', anonymousId: 'a', context: { screen: { width: -0x80000000, height: -0x80000000 } }, element: { classes: [] } });
    const widest = { ...event, occurred_at: -8.64e15, sent_at: -8.64e15, received_at: -8.64e15, timestamp_clamped: false, tenant_id: '', anonymous_id: '' };
    // the bound leaves 1024 bytes for everything but string contents
    expect(Buffer.byteLength(JSON.stringify(widest))).toBeLessThan(1024);
  });
});

describe('hostile values', () => {
  it.each([
    ['a user id of spaces', { type: 'track', event: 'E', userId: '   ' }, 'userId: either userId or anonymousId is required'],
    ['an anonymous id of spaces', { type: 'page', anonymousId: ' \t ' }, 'userId: either userId or anonymousId is required'],
    ['an alias whose previousId is spaces', { type: 'alias', userId: 'u', previousId: '  ' }, 'previousId: alias requires previousId and userId'],
    ['a group whose groupId is spaces', { type: 'group', userId: 'u', groupId: '  ' }, 'groupId: group requires groupId'],
  ])('rejects %s', (_name, input, error) => {
    expect(normalizeMessage(segmentMessageSchema.parse(input), facts, opts)).toEqual({ ok: false, error });
  });

  it('rejects an event with neither id unless asked to accept it (cookieless mode derives one)', () => {
    const msg = segmentMessageSchema.parse({ type: 'track', event: 'X' });
    expect(normalizeMessage(msg, facts, opts)).toEqual({ ok: false, error: 'userId: either userId or anonymousId is required' });
    const r = normalizeMessage(msg, facts, { ...opts, allowMissingIds: true });
    expect(r.ok && [r.event.user_id, r.event.anonymous_id]).toEqual([null, null]);
  });

  it.each([
    ['a browser library', { library: { name: 'analytics.js' } }, 'Mozilla/5.0 (request)'],
    ['no library', {}, 'Mozilla/5.0 (request)'],
    ['a server library without context.userAgent (the request carries the SDK\'s)', { library: { name: '@segment/analytics-node' } }, null],
    ['a server library with its end user\'s context.userAgent', { library: { name: 'analytics-python' }, userAgent: 'Mozilla/5.0 (end user)' }, 'Mozilla/5.0 (end user)'],
  ])('user agent of %s', (_name, context, expected) => {
    expect(normalize({ type: 'page', anonymousId: 'a', context }, { requestUserAgent: 'Mozilla/5.0 (request)' }).user_agent).toBe(expected);
  });

  it('takes a group id of spaces from context.groupId when there is one', () => {
    expect(normalize({ type: 'group', userId: 'u', groupId: ' ', context: { groupId: 'g1' } }).account_id).toBe('g1');
  });

  it('answers an error for properties nested too deeply to encode, instead of throwing', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    const parsed = segmentMessageSchema.parse({ type: 'track', event: 'E', userId: 'u', properties: { deep } });
    expect(normalizeMessage(parsed, facts, opts)).toEqual({ ok: false, error: 'properties.deep: value could not be encoded (nested too deeply)' });
  });

  it('drops a __proto__ key (it would hit the prototype setter) and keeps constructor', () => {
    const props = JSON.parse('{"__proto__": {"polluted": 1}, "constructor": "c", "a": 1}') as Record<string, unknown>;
    const e = normalize({ type: 'track', event: 'E', userId: 'u', properties: props });
    expect(Object.keys(e.properties)).toEqual(['constructor', 'a']);
    expect(Object.getPrototypeOf(e.properties)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });

  it.each([
    ['1e300', 1e300],
    ['2^31', 2 ** 31],
    ['-2^31 - 1', -(2 ** 31) - 1],
  ])('stores no screen width of %s (not an int32)', (_name, width) => {
    expect(normalize({ type: 'page', anonymousId: 'a', context: { screen: { width, height: 900.7 } } }).context).toMatchObject({ screen_width: null, screen_height: 900 });
  });

  it.each([
    ['Infinity (1e400 in JSON)', Infinity],
    ['1e20', 1e20],
    ['before 2000', '1970-01-01T00:00:00Z'],
    ['after 2100', '+275760-09-13T00:00:00.000Z'],
    ['not a date', 'soon'],
  ])('ignores a batch-level sentAt of %s', (_name, batchSentAt) => {
    const e = normalize({ type: 'track', event: 'E', userId: 'u', timestamp: RECEIVED - 5000 }, { batchSentAt });
    expect(e).toMatchObject({ sent_at: null, occurred_at: RECEIVED - 5000, timestamp_clamped: false });
  });
});

describe('well-formed strings and time ranges', () => {
  it('never stores half a surrogate pair', () => {
    const e = normalize({ type: 'track', event: `${'a'.repeat(199)}😀`, userId: 'u\uD800', properties: { 'k\uDC00': 'v' } });
    expect(e.name).toBe('a'.repeat(199));
    expect(e.user_id).toBe('u\uFFFD');
    expect(Object.keys(e.properties)).toEqual(['k\uFFFD']);
    for (const s of [e.name, e.user_id, ...Object.keys(e.properties)]) expect(s?.isWellFormed()).toBe(true);
  });

  it.each([
    ['sentAt', 1e300],
    ['timestamp', '1970-01-01T00:00:00Z'],
    ['timestamp', '2150-01-01T00:00:00Z'],
  ])('rejects %s = %s as out of range', (field, value) => {
    const parsed = segmentMessageSchema.parse({ type: 'page', userId: 'u', [field]: value });
    expect(normalizeMessage(parsed, facts, opts)).toEqual({ ok: false, error: `${field}: must lie between 2000-01-01 and 2100-01-01` });
  });

  it('clamps a correction that lands before 2000', () => {
    const r = correctTimestamp({ timestamp: Date.UTC(2001, 0, 1), sentAt: Date.UTC(2099, 0, 1) }, { receivedAt: RECEIVED, batchSentAt: null }, 60_000);
    expect(r).toMatchObject({ occurredAt: RECEIVED, clamped: true });
  });
});
