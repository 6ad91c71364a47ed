// Acceptance checks of the web tag in a real browser: headless Chromium from Debian's
// `chromium` package driven by playwright-core, against `npm start` with the tag's test page
// enabled. The page comes from the collector; the tag posts to a recording proxy in front of
// it (another origin: CORS on every request), so every body it sent, beacons included, is
// captured; Playwright captures the page's own requests. ClickHouse is read through the admin API.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { startEmbeddedProcess, type EmbeddedProcess } from '../support/embedded-process.js';
import { freePort } from '../support/child-process.js';
import { eventually } from '../support/poll.js';
import { startCaptureProxy, type Forwarded } from './capture-proxy.js';

const CHROMIUM = '/usr/bin/chromium';
/** what the tests type into form fields: it must never leave the browser except in the form post */
const SECRET = 'Zq7-typed-secret-4711';

/** Records the duration of every long task (> 50 ms of main-thread work) of the page. */
const LONG_TASK_OBSERVER = `
  window.longTasks = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.longTasks.push(Math.round(e.duration));
  }).observe({ type: 'longtask' });
`;

/**
 * Records every attempt of the page to write browser storage — localStorage, sessionStorage,
 * document.cookie, IndexedDB — even one undone at once (localStorage's probe would be one).
 */
const STORAGE_WRITE_RECORDER = `
  window.storageWrites = [];
  (() => {
    const log = (what) => window.storageWrites.push(what);
    for (const m of ['setItem', 'removeItem', 'clear']) {
      const original = Storage.prototype[m];
      Storage.prototype[m] = function (...args) {
        log((this === window.localStorage ? 'localStorage.' : 'sessionStorage.') + m + '(' + (args[0] ?? '') + ')');
        return original.apply(this, args);
      };
    }
    const cookie = Object.getOwnPropertyDescriptor(Document.prototype, 'cookie');
    Object.defineProperty(Document.prototype, 'cookie', {
      configurable: true,
      get() { return cookie.get.call(this); },
      set(v) { log('document.cookie'); cookie.set.call(this, v); },
    });
    const open = IDBFactory.prototype.open;
    IDBFactory.prototype.open = function (...args) {
      log('indexedDB.open(' + args[0] + ')');
      return open.apply(this, args);
    };
  })();
`;

let server: EmbeddedProcess;
let browser: Browser;
let seq = 0;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: install Debian's chromium package (apt-get install chromium; .ci/run does)`);
  [server, browser] = await Promise.all([
    startEmbeddedProcess({ TRACKLANE_TAG_TEST_PAGE: 'true', SINK_MAX_AGE_MS: '20' }),
    chromium.launch({ executablePath: CHROMIUM }),
  ]);
  const page = await fetch(`${server.url}/tag/test-page`);
  if (page.status !== 200) throw new Error(`the collector does not serve the test page (${page.status}): TRACKLANE_TAG_TEST_PAGE not wired?`);
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

/**
 * What the tests touch in the page. NOTE: the root tsconfig has no DOM types; callbacks run in
 * the page, so they reach its globals through `globalThis as unknown as PageGlobals`.
 */
interface PageGlobals {
  tracklane: ((...args: unknown[]) => void) & { loaded?: boolean };
  history: { pushState(state: unknown, unused: string, url: string): void };
  localStorage: Record<string, string>;
  sessionStorage: Record<string, string>;
  document: { cookie: string };
  indexedDB: { databases(): Promise<{ name?: string }[]> };
  longTasks: number[];
  storageWrites: string[];
}

interface Captured {
  url: string;
  method: string;
  resourceType: string;
  contentType: string | undefined;
  body: string | null;
}

interface Opened {
  tenant: string;
  writeKey: string;
  context: BrowserContext;
  page: Page;
  /** the page's requests as Playwright sees them (not beacons sent while a page unloads) */
  requests: Captured[];
  /** what the tag posted to the collector (through the proxy), beacons included */
  posted(): Forwarded[];
  /** the messages of those posts, in order */
  messages(): Message[];
  /** everything the proxy saw but the tag's own script (GET /tag.js): preflights included */
  proxied(): Forwarded[];
  /** console messages and uncaught errors of the page */
  noise: string[];
  close(): Promise<void>;
}

async function newTenant(): Promise<{ tenant: string; writeKey: string }> {
  const tenant = `web${++seq}-${randomBytes(3).toString('hex')}`;
  const r = await server.admin<{ writeKey: string }>('PUT', `/v1/admin/tenants/${tenant}`);
  expect(r.status).toBe(201);
  return { tenant, writeKey: r.body.writeKey };
}

/** Opens the test page in a fresh browser context (own storage) for a new tenant. */
async function openTestPage(
  opts: Record<string, unknown> = {},
  page: { origin?: string; path?: string; initScript?: string } = {},
): Promise<Opened> {
  const { tenant, writeKey } = await newTenant();
  const proxy = await startCaptureProxy(server.url);
  const context = await browser.newContext();
  if (page.initScript) await context.addInitScript(page.initScript);
  const requests: Captured[] = [];
  context.on('request', (r) =>
    requests.push({ url: r.url(), method: r.method(), resourceType: r.resourceType(), contentType: r.headers()['content-type'], body: r.postData() }),
  );
  const p = await context.newPage();
  const noise: string[] = [];
  p.on('console', (m) => noise.push(`${m.type()}: ${m.text()} @ ${m.location().url}`));
  p.on('pageerror', (e) => noise.push(`pageerror: ${e.message}`));
  const query = new URLSearchParams({ writeKey, host: proxy.url, opts: JSON.stringify({ flushIntervalMs: 200, ...opts }) });
  await p.goto(`${page.origin ?? server.url}${page.path ?? '/tag/test-page'}?${query}`);
  await tagLoaded(p);
  const posted = () => proxy.requests.filter((r) => r.method === 'POST' && r.path.startsWith('/v1/'));
  return {
    tenant,
    writeKey,
    context,
    page: p,
    requests,
    noise,
    posted,
    messages: () => posted().flatMap((r) => (JSON.parse(r.body) as { batch: Message[] }).batch),
    proxied: () => proxy.requests.filter((r) => !(r.method === 'GET' && r.path.startsWith('/tag.js'))),
    close: async () => {
      await context.close();
      await proxy.close();
    },
  };
}

/** A message as the tag sent it. */
interface Message {
  type: string;
  event?: string;
  anonymousId?: string;
  userId?: string;
  sessionId?: string;
  context: { consent?: { categoryPreferences: Record<string, boolean> } };
}

/** What the browser keeps: in the page (its origin), and for every origin (the context's state). */
async function browserStorage(o: Opened): Promise<Record<string, unknown>> {
  const page = await o.page.evaluate(async () => {
    const g = globalThis as unknown as PageGlobals;
    return {
      localStorage: Object.keys(g.localStorage).sort(),
      sessionStorage: Object.keys(g.sessionStorage),
      cookie: g.document.cookie,
      indexedDB: (await g.indexedDB.databases()).map((d) => d.name),
    };
  });
  const state = await o.context.storageState();
  return { ...page, cookies: state.cookies.map((c) => c.name), origins: state.origins.filter((x) => x.localStorage.length > 0).map((x) => x.origin) };
}

const NOTHING_STORED = { localStorage: [], sessionStorage: [], cookie: '', indexedDB: [], cookies: [], origins: [] };

const storageWrites = (page: Page) => page.evaluate(() => (globalThis as unknown as PageGlobals).storageWrites);

function tracklane(page: Page, ...args: unknown[]): Promise<void> {
  return page.evaluate((a) => (globalThis as unknown as PageGlobals).tracklane(...a), args);
}

/** A negative check needs a wait: 5× the flush interval of the test page's tag. */
const quietPeriod = (page: Page) => page.waitForTimeout(1000);

async function tagLoaded(page: Page): Promise<void> {
  await page.waitForFunction(() => (globalThis as unknown as Partial<PageGlobals>).tracklane?.loaded === true);
}

interface Row {
  type: string;
  event: string | null;
  user_id: string | null;
  account_id: string | null;
  anonymous_id: string | null;
  session_id: string | null;
  url: string | null;
  path: string | null;
  search: string | null;
  referrer: string | null;
  element_tag: string | null;
  element_id: string | null;
  element_classes: string[];
  element_label: string | null;
  element_href: string | null;
  properties: Record<string, string>;
  traits: Record<string, string>;
  account_traits: Record<string, string>;
}

async function rows(tenant: string): Promise<Row[]> {
  return server.query<Row>(
    `SELECT type, event, user_id, account_id, anonymous_id, session_id, url, path, search, referrer,
            element_tag, element_id, element_classes, element_label, element_href, properties, traits, account_traits
       FROM events_with_traits WHERE tenant_id = '${tenant}' ORDER BY timestamp, received_at`,
  );
}

/** Polls ClickHouse until `pick` finds what it looks for in the tenant's rows. */
async function until<T>(tenant: string, what: string, pick: (rs: Row[]) => T | undefined | null | false, timeoutMs = 15_000): Promise<T> {
  return eventually(async () => pick(await rows(tenant)), timeoutMs, what);
}

describe('web tag in Chromium', () => {
  it('records a session start and a page view on load, a page view per history navigation, and button and link clicks', async () => {
    const o = await openTestPage();
    // NOTE: both carry the same millisecond: found by type, not by order
    const [start, load] = await until(o.tenant, 'session start and page view', (rs) => {
      const found = [rs.find((r) => r.type === 'session_start'), rs.find((r) => r.type === 'page')];
      return found[0] && found[1] && found;
    });
    expect(start).toMatchObject({ type: 'session_start', path: '/tag/test-page' });
    expect(load).toMatchObject({ type: 'page', path: '/tag/test-page', url: `${server.url}/tag/test-page`, session_id: start!.session_id });
    expect(load!.anonymous_id).toMatch(/^[0-9a-f-]{36}$/);

    await o.page.evaluate(() => (globalThis as unknown as PageGlobals).history.pushState({}, '', '/tag/test-page/settings?tab=billing&token=abc'));
    await o.page.click('#signup');
    await o.page.click('#icon-button');
    await o.page.click('#ignored');
    await o.page.click('#docs-link');

    const rs = await until(o.tenant, 'clicks and SPA page views', (r) => r.filter((x) => x.type === 'page').length >= 3 && r.some((x) => x.type === 'link') && r);
    const pages = rs.filter((r) => r.type === 'page');
    expect(pages.map((p) => [p.path, p.search])).toEqual([
      ['/tag/test-page', null],
      ['/tag/test-page/settings', '?tab=billing&token=redacted'],
      ['/tag/test-page/docs', '?email=redacted&utm_source=tag'],
    ]);
    expect(pages[1]!.referrer).toBe(`${server.url}/tag/test-page`);

    const clicks = rs.filter((r) => r.type === 'click');
    expect(clicks.map((c) => [c.element_tag, c.element_id, c.element_label])).toEqual([
      ['button', 'signup', 'Sign up now'],
      ['button', 'icon-button', 'Close dialog'],
    ]);
    expect(clicks[0]!.element_classes).toEqual(['btn', 'btn-primary', 'cta', 'wide', 'rounded']);
    const link = rs.find((r) => r.type === 'link')!;
    expect(link).toMatchObject({
      element_tag: 'a',
      element_id: 'docs-link',
      element_label: 'Read the docs',
      element_href: `${server.url}/tag/test-page/docs?email=redacted&utm_source=tag`,
      path: '/tag/test-page/settings',
    });
    // one session throughout; the write key and the page's config never reach a stored URL
    expect(new Set(rs.map((r) => r.session_id))).toEqual(new Set([start!.session_id]));
    expect(JSON.stringify(rs)).not.toMatch(/writeKey|host=|opts=|alice/);
    expect(o.posted().length).toBeGreaterThan(0);
    for (const r of o.posted()) {
      expect(r).toMatchObject({ path: '/v1/batch', status: 200 });
      expect(r.headers['content-type']).toMatch(/^text\/plain/);
      expect(r.headers['authorization']).toBeUndefined(); // the write key travels in the body
    }
    expect(o.noise).toEqual([]);
    await o.close();
  });

  it('never sends what is typed: input, password, textarea, contenteditable, submitted forms', async () => {
    const o = await openTestPage();
    const typeEverywhere = async () => {
      await o.page.fill('#nickname', SECRET);
      await o.page.fill('#password', SECRET);
      await o.page.fill('#notes', `${SECRET}\nsecond line`);
      await o.page.click('#editor');
      await o.page.keyboard.type(SECRET);
    };
    await typeEverywhere();
    // implicit submission (Enter in a field), then clicks on the two submit buttons: each posts
    // the form back to the page, which loads again
    await Promise.all([o.page.waitForNavigation(), o.page.press('#nickname', 'Enter')]);
    await tagLoaded(o.page);
    await typeEverywhere();
    await Promise.all([o.page.waitForNavigation(), o.page.click('#submit')]);
    await tagLoaded(o.page);
    await typeEverywhere();
    await Promise.all([o.page.waitForNavigation(), o.page.click('#submit-input')]);

    const rs = await until(o.tenant, 'four page views and the submit clicks', (r) =>
      r.filter((x) => x.type === 'page').length >= 4 && r.some((x) => x.element_id === 'submit-input') && r,
    );
    const clicks = rs.filter((r) => r.type === 'click').map((c) => [c.element_id, c.element_label]);
    expect(clicks).toContainEqual(['submit', 'Send']);
    expect(clicks).toContainEqual(['submit-input', null]); // an input's value is never read, not even a button's caption

    // the form posts themselves carry the secret, to the page; nothing else does
    const withSecret = o.requests.filter((r) => r.body?.includes(SECRET) || r.url.includes(SECRET));
    expect(withSecret.length).toBeGreaterThanOrEqual(2);
    for (const r of withSecret) expect(r).toMatchObject({ method: 'POST', resourceType: 'document' });
    expect(o.posted().length).toBeGreaterThan(0);
    for (const r of o.posted()) expect(r.body).not.toContain('Zq7');
    const all = await server.query(`SELECT * FROM events FINAL WHERE tenant_id = '${o.tenant}'`);
    expect(all.length).toBe(rs.length);
    expect(JSON.stringify(all)).not.toContain('Zq7');
    expect(o.noise).toEqual([]);
    await o.close();
  });

  it('identify attaches user and account ids to later events; optOut stops all sending, across reloads', async () => {
    const o = await openTestPage();
    await o.page.evaluate(() => {
      const tl = (globalThis as unknown as PageGlobals).tracklane;
      tl('identify', { id: 'user-42', email: 'ann@acme.example', firstName: 'Ann' }, { id: 'acct-7', name: 'Acme' });
    });
    await o.page.click('#signup');
    const rs = await until(o.tenant, 'identify and a click', (r) => r.some((x) => x.type === 'click') && r);
    const identify = rs.find((r) => r.type === 'identify')!;
    expect(identify).toMatchObject({ user_id: 'user-42', account_id: 'acct-7', traits: { email: '"ann@acme.example"', firstName: '"Ann"' } });
    expect(rs.find((r) => r.type === 'group')).toMatchObject({ account_id: 'acct-7', account_traits: { name: '"Acme"' } });
    const click = rs.find((r) => r.type === 'click')!;
    expect(click).toMatchObject({ user_id: 'user-42', account_id: 'acct-7', element_label: 'Sign up now' });
    // traits travel in the identify call only
    expect(click.traits).toEqual({});

    await o.page.evaluate(() => (globalThis as unknown as PageGlobals).tracklane('optOut'));
    const sent = o.posted().length;
    await o.page.click('#signup');
    await o.page.evaluate(() => {
      const page = globalThis as unknown as PageGlobals;
      page.history.pushState({}, '', '/tag/test-page/after-opt-out');
      page.tracklane('track', 'Should Not Be Sent');
    });
    await o.page.reload();
    await tagLoaded(o.page);
    await o.page.click('#signup');
    // identity is forgotten with the opt-out; only the opt-out itself is kept
    expect(await o.page.evaluate(() => Object.keys((globalThis as unknown as PageGlobals).localStorage).sort())).toEqual(['tl_optout']);
    // NOTE: a negative check needs a wait: 5× the flush interval, after the reload; then the
    // page goes (page hide would send by beacon)
    await o.page.waitForTimeout(1000);
    await o.page.goto('about:blank');
    await new Promise((r) => setTimeout(r, 300));
    expect(o.posted().length).toBe(sent);
    expect((await rows(o.tenant)).length).toBe(rs.length);
    await o.close();
  });

  it('ends a session after the (shortened) inactivity timeout; the next activity starts a new one', async () => {
    const o = await openTestPage({ sessionTimeoutMs: 1500 });
    const first = await until(o.tenant, 'session start', (r) => r.find((x) => x.type === 'session_start'));
    const ended = await until(o.tenant, 'session end by timeout', (r) => r.find((x) => x.type === 'session_end'), 20_000);
    expect(ended).toMatchObject({ session_id: first.session_id, properties: { reason: '"timeout"' } });

    await o.page.click('#signup');
    const rs = await until(o.tenant, 'a new session', (r) => r.some((x) => x.type === 'click') && r);
    const starts = rs.filter((r) => r.type === 'session_start').map((r) => r.session_id);
    expect(starts).toHaveLength(2);
    expect(starts[1]).not.toBe(first.session_id);
    expect(rs.find((r) => r.type === 'click')!.session_id).toBe(starts[1]);
    expect(o.noise).toEqual([]);
    await o.close();
  });

  it('ends the session on page hide, sending it and everything queued by beacon', async () => {
    // NOTE: a long flush interval keeps everything queued until the page goes
    const o = await openTestPage({ flushIntervalMs: 60_000 });
    await o.page.click('#signup');
    expect(o.posted()).toEqual([]);
    await o.page.goto('about:blank');
    const rs = await until(o.tenant, 'session end on page hide', (r) => r.some((x) => x.type === 'session_end') && r);
    expect(rs.map((r) => r.type).sort()).toEqual(['click', 'page', 'session_end', 'session_start']);
    expect(rs.find((r) => r.type === 'session_end')).toMatchObject({
      session_id: rs.find((r) => r.type === 'session_start')!.session_id,
      properties: { reason: '"page_hide"' },
    });
    const sent = o.posted();
    expect(sent).toHaveLength(1);
    // navigator.sendBeacon: a no-cors request (fetch, even with keepalive, would be "cors")
    expect(sent[0]!.headers).toMatchObject({ 'sec-fetch-mode': 'no-cors', 'sec-fetch-dest': 'empty' });
    expect(sent[0]!.headers['content-type']).toMatch(/^text\/plain/);
    await o.close();
  });

  it('is at most 10 KB gzipped, revalidates by ETag, and adds no long task during a 500-click storm', async () => {
    const gz = await rawGet(`${server.url}/tag.js`, { 'accept-encoding': 'gzip' });
    expect(gz.status).toBe(200);
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(gz.body.length).toBeLessThanOrEqual(10 * 1024);
    expect(gz.headers['cache-control']).toMatch(/max-age=\d+/);
    const again = await rawGet(`${server.url}/tag.js`, { 'if-none-match': String(gz.headers['etag']) });
    expect(again.status).toBe(304);

    // observed from the document's start: the tag's loading counts too.
    // TRICKY: on a busy 2-core machine the OS can stall the renderer past 50 ms on its own (seen
    // once in six CI runs: one 51–88 ms task). A tag that makes long tasks makes them in every
    // storm, so up to three storms on fresh pages are run and one must be free of them.
    const storms: string[] = [];
    let o: Opened | undefined;
    for (let attempt = 1; attempt <= 3; attempt++) {
      await o?.close();
      o = await openTestPage({ batchSize: 20 }, { initScript: LONG_TASK_OBSERVER });
      const box = (await o.page.locator('#storm').boundingBox())!;
      const started = Date.now();
      for (let i = 0; i < 500; i++) await o.page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
      const clickMs = Date.now() - started;
      const n = await until(o.tenant, '500 click rows', (r) => r.filter((x) => x.type === 'click').length === 500 && r.length, 30_000);
      expect(n).toBeGreaterThanOrEqual(500);
      const longTasks = await o.page.evaluate(() => (globalThis as unknown as PageGlobals).longTasks);
      storms.push(`storm ${attempt}: ${clickMs} ms of clicks, long tasks [${longTasks.join(', ')}] ms`);
      if (longTasks.length === 0) break;
    }
    expect(storms.at(-1), storms.join('; ')).toMatch(/long tasks \[\] ms$/);
    if (!o) throw new Error('no storm ran');
    // control: the observer does see a long task when there is one (in a task of the page's
    // own: work done by page.evaluate itself is not reported)
    await o.page.evaluate(() => {
      setTimeout(() => {
        const t = performance.now();
        while (performance.now() - t < 120);
      }, 0);
    });
    await o.page.waitForFunction(() => (globalThis as unknown as PageGlobals).longTasks.length > 0);
    // batched: 500 clicks in about 25 requests of 20, not 500
    expect(o.posted().length).toBeLessThanOrEqual(40);
    expect(o.noise).toEqual([]);
    await o.close();
  }, 120_000);

  it('works on another origin (a customer site): CORS on ingestion, none on the admin API', async () => {
    const html = await (await fetch(`${server.url}/tag/test-page`)).text();
    const shop = await serveHtml(html);
    try {
      const o = await openTestPage({}, { origin: shop.url, path: '/shop' });
      const load = await until(o.tenant, 'page view from the other origin', (r) => r.find((x) => x.type === 'page'));
      expect(load.url).toBe(`${shop.url}/shop`);
      await o.page.click('#signup');
      await until(o.tenant, 'click from the other origin', (r) => r.find((x) => x.type === 'click'));
      // the tag could read every answer (CORS): nothing was retried
      const ids = o.posted().flatMap((r) => (JSON.parse(r.body) as { batch: { messageId: string }[] }).batch.map((m) => m.messageId));
      expect(ids.length).toBeGreaterThanOrEqual(3);
      expect(new Set(ids).size).toBe(ids.length);

      // straight to the collector: a preflighted request (JSON + Basic auth) is allowed on
      // ingestion; the admin API cannot be reached from a page
      const results = await o.page.evaluate(
        async ({ host, writeKey }) => {
          const ingest = await fetch(`${host}/v1/track`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Basic ${btoa(`${writeKey}:`)}` },
            body: JSON.stringify({ event: 'Preflighted', anonymousId: 'a-cors' }),
          }).then((r) => r.status, (e: Error) => e.name);
          const adminQuery = await fetch(`${host}/v1/admin/query`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: 'Bearer x' },
            body: '{"sql":"SELECT 1"}',
          }).then((r) => r.status, (e: Error) => e.name);
          return { ingest, adminQuery };
        },
        { host: server.url, writeKey: o.writeKey },
      );
      expect(results).toEqual({ ingest: 200, adminQuery: 'TypeError' });
      // the browser's own CORS complaint about the admin call is the only console line
      expect(o.noise.filter((n) => !n.includes('/v1/admin/query'))).toEqual([]);
      await o.close();
    } finally {
      await shop.close();
    }
  });
});

describe('web tag in Chromium: consent and cookieless mode', () => {
  it('with requireConsent, sends and stores nothing before consent; then sends what it held, carrying the preferences', async () => {
    const o = await openTestPage({ requireConsent: true }, { initScript: STORAGE_WRITE_RECORDER });
    await o.page.click('#signup');
    await tracklane(o.page, 'track', 'Before Consent');
    await quietPeriod(o.page);
    expect(o.proxied()).toEqual([]);
    expect(await storageWrites(o.page)).toEqual([]);
    expect(await browserStorage(o)).toEqual(NOTHING_STORED);

    // what a CMP does once the visitor accepted
    await tracklane(o.page, 'consent', { analytics: true, marketing: false });
    const held = await eventually(() => {
      const ms = o.messages();
      return ms.some((m) => m.event === 'Before Consent') && ms;
    }, 10_000, 'the held messages');
    expect(held.map((m) => m.type).sort()).toEqual(['click', 'page', 'session_start', 'track']);
    for (const m of held) expect(m.context.consent).toEqual({ categoryPreferences: { analytics: true, marketing: false } });
    const rs = await until(o.tenant, 'the held events', (r) => r.length >= 4 && r);
    expect(rs.map((r) => r.type).sort()).toEqual(['click', 'page', 'session_start', 'track']);
    expect(new Set(rs.map((r) => r.anonymous_id)).size).toBe(1);
    expect((await browserStorage(o))['localStorage']).toEqual(['tl_aid', 'tl_consent', 'tl_session']);
    // control: the recorder does see the tag's writes
    expect(await storageWrites(o.page)).toContain('localStorage.setItem(tl_aid)');

    // the next page load sends at once, on the stored choice (its CMP may call later)
    await o.page.reload();
    await tagLoaded(o.page);
    const again = await eventually(() => o.messages().filter((m) => m.type === 'page')[1], 10_000, 'the next page view');
    expect(again).toMatchObject({ anonymousId: held[0]!.anonymousId, context: { consent: { categoryPreferences: { analytics: true, marketing: false } } } });
    expect(o.noise).toEqual([]);
    await o.close();
  });

  it('after a withdrawal sends nothing more, on this page or the next, and keeps only the choice', async () => {
    const o = await openTestPage({ requireConsent: true }, { initScript: STORAGE_WRITE_RECORDER });
    await tracklane(o.page, 'consent', { analytics: true, marketing: true });
    await tracklane(o.page, 'identify', 'user-42', 'acct-7');
    await o.page.click('#signup');
    await until(o.tenant, 'a click of the identified user', (r) => r.find((x) => x.type === 'click' && x.user_id === 'user-42'));
    expect((await browserStorage(o))['localStorage']).toEqual(['tl_acc', 'tl_aid', 'tl_consent', 'tl_session', 'tl_uid']);

    await tracklane(o.page, 'consent', { analytics: false, marketing: true });
    const sent = o.posted().length;
    expect(await browserStorage(o)).toEqual({ ...NOTHING_STORED, localStorage: ['tl_consent'], origins: [server.url] });
    expect(await o.page.evaluate(() => (globalThis as unknown as PageGlobals).localStorage['tl_consent'])).toBe('{"analytics":false,"marketing":true}');

    await o.page.click('#signup');
    await tracklane(o.page, 'track', 'After Withdrawal');
    await o.page.evaluate(() => (globalThis as unknown as PageGlobals).history.pushState({}, '', '/tag/test-page/after-withdrawal'));
    await o.page.reload();
    await tagLoaded(o.page);
    await o.page.click('#signup');
    await tracklane(o.page, 'track', 'Next Page After Withdrawal');
    await quietPeriod(o.page);
    // the next page load wrote nothing at all
    expect(await storageWrites(o.page)).toEqual([]);
    expect((await browserStorage(o))['localStorage']).toEqual(['tl_consent']);
    // NOTE: then the page goes: a page hide would send by beacon
    await o.page.goto('about:blank');
    await new Promise((r) => setTimeout(r, 300));
    expect(o.posted().length).toBe(sent);
    const rs = await rows(o.tenant);
    expect(rs.filter((r) => r.event?.includes('After Withdrawal') || r.path?.includes('after-withdrawal'))).toEqual([]);
    expect(o.noise).toEqual([]);
    await o.close();
  });

  it("with storage: 'none' writes nothing to any browser storage across two page loads; the collector's daily id joins them", async () => {
    const o = await openTestPage({ storage: 'none' }, { initScript: STORAGE_WRITE_RECORDER });
    await o.page.click('#signup');
    await eventually(() => o.messages().some((m) => m.type === 'click'), 10_000, 'the first page’s click');
    expect(await storageWrites(o.page)).toEqual([]);
    await o.page.reload();
    await tagLoaded(o.page);
    await o.page.click('#signup');
    // NOTE: the page views too: the first load's may still be on its way (sent by beacon on the reload)
    const count = (type: string) => o.messages().filter((m) => m.type === type).length;
    await eventually(() => count('click') === 2 && count('page') === 2, 10_000, 'both pages’ page view and click');
    expect(await storageWrites(o.page)).toEqual([]);
    expect(await browserStorage(o)).toEqual(NOTHING_STORED);

    const sent = o.messages();
    // NOTE: by type, not by order: batches of two page loads interleave at the proxy and in
    // ClickHouse (timestamps are skew-corrected per batch) when the machine is loaded
    expect(sent.map((m) => m.type).sort()).toEqual(['click', 'click', 'page', 'page']);
    for (const m of sent) {
      expect(m).not.toHaveProperty('anonymousId');
      expect(m).not.toHaveProperty('sessionId');
    }
    const rs = await until(o.tenant, 'both page loads’ events', (r) => r.length >= 4 && r);
    expect(rs.map((r) => r.type).sort()).toEqual(['click', 'click', 'page', 'page']);
    const ids = new Set(rs.map((r) => r.anonymous_id));
    expect(ids.size).toBe(1);
    expect([...ids][0]).toMatch(/\S/);
    expect(rs.map((r) => r.session_id)).toEqual([null, null, null, null]);
    expect(o.noise).toEqual([]);
    await o.close();
  });
});

/** A GET without automatic decompression: the bytes and headers as sent. */
function rawGet(url: string, headers: Record<string, string>): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    httpRequest(url, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    })
      .on('error', reject)
      .end();
  });
}

/** Another origin (a customer's site): serves one page at any path. */
async function serveHtml(html: string): Promise<{ url: string; close: () => Promise<void> }> {
  const port = await freePort();
  const srv: Server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(html);
  });
  await new Promise<void>((resolve) => srv.listen(port, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((resolve) => srv.close(() => resolve())) };
}
