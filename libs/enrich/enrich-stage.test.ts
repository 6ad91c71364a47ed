import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EnrichedEvent, RawEvent } from '../events/envelope.js';
import { DEFAULT_FLAGS, type FlagSource, type TenantFlags } from '../tenants/flags.js';
import { createEnricher, createEnrichStage, type Enricher } from './enrich-stage.js';

const CHROME_WIN = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36';

function rawEvent(over: Partial<RawEvent> = {}): RawEvent {
  return {
    event_id: 'evt-1',
    tenant_id: 't_full',
    type: 'page',
    name: null,
    user_id: 'u1',
    anonymous_id: 'a1',
    previous_id: null,
    session_id: 's1',
    account_id: null,
    occurred_at: 1_760_000_000_000,
    sent_at: 1_760_000_000_000,
    received_at: 1_760_000_000_100,
    timestamp_clamped: false,
    ip: '8.8.8.8',
    user_agent: CHROME_WIN,
    context: {
      url: 'https://app.acme.com/welcome?email=bob%40acme.com&plan=pro',
      path: '/welcome',
      referrer: 'https://mail.example.com/inbox/bob@acme.com',
      title: 'Welcome',
      search: '?email=bob%40acme.com&plan=pro',
      locale: 'en-GB',
      timezone: 'Europe/London',
      screen_width: 1440,
      screen_height: 900,
      library_name: 'tracklane.js',
      library_version: '1.0.0',
    },
    element: null,
    properties: { plan: '"pro"' },
    traits: {},
    account_traits: {},
    ...over,
  };
}

function deepFreeze<T>(o: T): T {
  if (o !== null && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}

const TENANTS: Record<string, TenantFlags> = {
  t_full: { ...DEFAULT_FLAGS, ipPolicy: 'full' },
  t_gtm: { ...DEFAULT_FLAGS, ipPolicy: 'geo_then_mask' },
  t_mask: { ...DEFAULT_FLAGS, ipPolicy: 'mask' },
  t_drop: { ...DEFAULT_FLAGS, ipPolicy: 'drop' },
  t_optout: { ...DEFAULT_FLAGS, ipPolicy: 'full', resolveIp: false },
  t_optout_gtm: { ...DEFAULT_FLAGS, ipPolicy: 'geo_then_mask', resolveIp: false },
  t_scrub: { ...DEFAULT_FLAGS, scrubQueryParams: ['invite'] },
  t_keep_bots: { ...DEFAULT_FLAGS, botPolicy: 'keep' },
};
const flags: FlagSource = { get: (tenant) => TENANTS[tenant] };

function enrichedOf(r: ReturnType<Enricher['stage']>): EnrichedEvent {
  if (r.kind !== 'ok') throw new Error(`expected ok, got ${r.kind}: ${r.reason}`);
  return r.value;
}

describe('enrich stage with the real databases', () => {
  let enricher: Enricher;
  beforeAll(async () => {
    enricher = await createEnricher({ flags });
  });
  afterAll(async () => {
    await enricher.close();
  });

  it.each([
    ['8.8.8.8', 'US'],
    ['81.2.69.160', 'GB'],
  ])('%s → country %s', (ip, country) => {
    expect(enrichedOf(enricher.stage(rawEvent({ ip }))).geo?.country).toBe(country);
  });

  it('8.8.8.8 → AS15169 Google', () => {
    const org = enrichedOf(enricher.stage(rawEvent())).ip_org;
    expect(org?.asn).toBe(15169);
    expect(org?.org).toContain('Google');
  });

  it.each(['10.1.2.3', '192.168.1.10', '127.0.0.1', '::1', 'fc00::1'])('private %s → no geo, no org, ip kept under full', (ip) => {
    const e = enrichedOf(enricher.stage(rawEvent({ ip })));
    expect(e).toMatchObject({ ip, geo: null, ip_org: null });
  });

  it.each([
    // tenant, stored ip, geo country, has org
    ['t_full', '81.2.69.160', 'GB', true],
    ['t_gtm', '81.2.69.0', 'GB', true],
    ['t_mask', '81.2.69.0', null, false],
    ['t_drop', null, null, false],
    ['t_optout', '81.2.69.160', null, false],
    ['t_optout_gtm', '81.2.69.0', null, false],
  ])('policy of %s: ip %s, country %s, org %s', (tenant, ip, country, hasOrg) => {
    const e = enrichedOf(enricher.stage(rawEvent({ tenant_id: tenant, ip: '81.2.69.160' })));
    expect(e.ip).toBe(ip);
    expect(e.geo?.country ?? null).toBe(country);
    expect(e.ip_org !== null).toBe(hasOrg);
  });

  it.each([
    ['t_full', '2001:4860:4860::8888', '2001:4860:4860::8888', true],
    ['t_gtm', '2001:4860:4860::8888', '2001:4860:4860::', true],
    ['t_mask', '2001:4860:4860::8888', '2001:4860:4860::', false],
  ])('IPv6 under %s: %s stored as %s', (tenant, input, ip, hasGeo) => {
    const e = enrichedOf(enricher.stage(rawEvent({ tenant_id: tenant, ip: input })));
    expect(e.ip).toBe(ip);
    expect(e.geo !== null).toBe(hasGeo);
  });

  // NOTE: keep last in this block: it closes the shared enricher (afterAll closes it again: idempotent).
  it('answers retry after close', async () => {
    await enricher.close();
    expect(enricher.stage(rawEvent()).kind).toBe('retry');
  });
});

describe('createEnrichStage', () => {
  const stage = createEnrichStage({ geo: null, asn: null, flags });

  it('fails closed (retry) when the tenant flags are unknown', () => {
    const r = stage(rawEvent({ tenant_id: 'unknown' }));
    expect(r.kind).toBe('retry');
  });

  it('never mutates its (deep-frozen) input and returns a new object', () => {
    const input = deepFreeze(
      rawEvent({
        type: 'click',
        traits: { email: '"alice@eng.acme.co.uk"' },
        element: { tag: 'a', id: null, classes: ['btn'], label: 'Reset', href: '/reset?token=abc' },
      }),
    );
    const snapshot = structuredClone(input);
    const e = enrichedOf(stage(input));
    expect(e).not.toBe(input);
    expect(input).toEqual(snapshot);
    expect(e.element?.href).toBe('/reset?token=redacted');
  });

  it.each([
    ['identify with a work email', 'identify', null, { email: '"alice@eng.acme.co.uk"' }, { account_id: 'acme.co.uk', domain: 'acme.co.uk', source: 'email_domain' }],
    ['identify with free-mail', 'identify', null, { email: '"bob@gmail.com"' }, null],
    ['identify with a disposable address', 'identify', null, { email: '"x@mailinator.com"' }, null],
    ['explicit account wins', 'identify', 'acct_9', { email: '"alice@eng.acme.co.uk"' }, { account_id: 'acct_9', domain: 'acme.co.uk', source: 'explicit', confidence: 1 }],
    ['explicit account, no email', 'group', 'acct_9', {}, { account_id: 'acct_9', domain: null, source: 'explicit' }],
    ['track carrying traits.email', 'track', null, { email: '"carol@acme.com"' }, { account_id: 'acme.com', source: 'email_domain' }],
    ['non-string email trait', 'identify', null, { email: '{"x":1}' }, null],
    ['no traits', 'page', null, {}, null],
  ] as const)('%s', (_name, type, accountId, traits, expected) => {
    const e = enrichedOf(stage(rawEvent({ type, account_id: accountId, traits: { ...traits } })));
    if (expected === null) expect(e.inferred_account).toBeNull();
    else expect(e.inferred_account).toMatchObject(expected);
  });

  it('scrubs context URLs and the referrer', () => {
    const e = enrichedOf(stage(rawEvent()));
    expect(e.context).toMatchObject({
      url: 'https://app.acme.com/welcome?email=redacted&plan=pro',
      path: '/welcome',
      referrer: 'https://mail.example.com/inbox/redacted',
      search: '?email=redacted&plan=pro',
      title: 'Welcome',
    });
  });

  it.each([
    ['t_scrub', 'https://acme.com/?invite=abc&x=1', 'https://acme.com/?invite=redacted&x=1'],
    ['t_full', 'https://acme.com/?invite=abc&x=1', 'https://acme.com/?invite=abc&x=1'],
  ])('tenant scrubQueryParams (%s)', (tenant, url, expected) => {
    const e = enrichedOf(stage(rawEvent({ tenant_id: tenant, context: { ...rawEvent().context, url } })));
    expect(e.context.url).toBe(expected);
  });

  it('honours defaultScrubParams', () => {
    const custom = createEnrichStage({ geo: null, asn: null, flags, defaultScrubParams: ['plan'] });
    const e = enrichedOf(custom(rawEvent()));
    // `email` is not in the custom list, but its value is an email address and goes anyway
    expect(e.context.search).toBe('?email=redacted&plan=redacted');
  });

  it.each([
    [CHROME_WIN, { browser: 'Chrome', os: 'Windows', device_type: 'desktop' }],
    ['Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)', { device_type: 'bot' }],
    [null, null],
  ])('user agent %s', (ua, expected) => {
    const e = enrichedOf(stage(rawEvent({ user_agent: ua })));
    if (expected === null) expect(e.ua).toBeNull();
    else expect(e.ua).toMatchObject(expected);
  });

  it.each([
    ['t_full', 'bot'],
    ['t_keep_bots', 'desktop'],
  ])('a crawler under %s is labelled %s (botPolicy flag, keep)', (tenant, deviceType) => {
    const e = enrichedOf(stage(rawEvent({ tenant_id: tenant, user_agent: 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)' })));
    expect(e.ua?.device_type).toBe(deviceType);
  });

  it('scrubs the page fields analytics.js repeats in properties, and emails in titles and labels', () => {
    const input = rawEvent({
      context: { ...rawEvent().context, title: 'Inbox of alice@acme.com' },
      element: { tag: 'A', id: null, classes: [], label: 'bob@acme.com', href: 'https://x.io/?token=t0k' },
      properties: {
        url: JSON.stringify('https://app.acme.com/a?email=alice@acme.com&plan=pro'),
        referrer: JSON.stringify('https://x.io/reset?password=hunter2'),
        title: JSON.stringify('Hi carol@acme.com'),
        plan: JSON.stringify('pro'),
        count: '3',
      },
    });
    const e = enrichedOf(stage(deepFreeze(input)));
    expect(e.properties).toEqual({
      url: JSON.stringify('https://app.acme.com/a?email=redacted&plan=pro'),
      referrer: JSON.stringify('https://x.io/reset?password=redacted'),
      title: JSON.stringify('Hi redacted'),
      plan: JSON.stringify('pro'),
      count: '3',
    });
    expect(e.context.title).toBe('Inbox of redacted');
    expect(e.element).toMatchObject({ label: 'redacted', href: 'https://x.io/?token=redacted' });
  });

  it('copies every raw field through unchanged apart from ip, context and element', () => {
    const input = rawEvent({ context: { ...rawEvent().context, url: null, referrer: null, search: null } });
    const e = enrichedOf(stage(input));
    const { geo: _g, ip_org: _o, ua: _u, inferred_account: _a, ...rest } = e;
    expect(rest).toEqual(input);
    expect(e.context).toBe(input.context);
  });
});
