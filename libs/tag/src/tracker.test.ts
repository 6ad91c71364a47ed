// The tracker against a fake page (node): consent gating, what reaches the browser's storage
// and cookieless mode. The page's globals are stubbed; timers run on the manual clock.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { fakeClock, type FakeClock } from './fake-clock.js';
import { startTracker, type TagOptions, type Tracker } from './tracker.js';

type Message = Record<string, unknown> & { type: string; context: Record<string, unknown> };

let clock: FakeClock;
/** the page's localStorage, shared by the page loads of a test */
let storage: Map<string, string>;
/** every access to localStorage, in order: `get k`, `set k`, `remove k` */
let access: string[];
let posts: Message[];

const writes = () => access.filter((a) => !a.startsWith('get '));
const flushPromises = () => new Promise((r) => setTimeout(r, 0));

/** A page load: fresh globals over the same storage, then the tracker, its first tasks run. */
function load(options: TagOptions = {}): Tracker {
  const listen = () => undefined;
  const localStorage = {
    getItem: (k: string) => (access.push(`get ${k}`), storage.get(k) ?? null),
    setItem: (k: string, v: string) => void (access.push(`set ${k}`), storage.set(k, String(v))),
    removeItem: (k: string) => void (access.push(`remove ${k}`), storage.delete(k)),
  };
  vi.stubGlobal('window', {
    localStorage,
    setTimeout: (fn: () => void, ms?: number) => clock.setTimer(fn, ms ?? 0),
    clearTimeout: clock.clearTimer,
    addEventListener: listen,
    screen: { width: 1280, height: 800 },
  });
  vi.stubGlobal('document', { referrer: '', title: 'Home', visibilityState: 'visible', addEventListener: listen });
  vi.stubGlobal('navigator', { language: 'en-GB', sendBeacon: () => false });
  vi.stubGlobal('location', { href: 'https://shop.example/home', search: '', pathname: '/home', origin: 'https://shop.example' });
  vi.stubGlobal('history', { pushState: () => undefined, replaceState: () => undefined });
  vi.stubGlobal('fetch', (_url: string, init: { body: string }) => {
    posts.push(...(JSON.parse(init.body) as { batch: Message[] }).batch);
    return Promise.resolve({ status: 200 });
  });
  const t = startTracker('wk', { flushIntervalMs: 100, ...options }, null);
  clock.advance(0); // the timezone's task, then the page view on load
  return t;
}

/** Lets every pending batch go. */
async function settle(): Promise<void> {
  clock.advance(1000);
  await flushPromises();
}

const types = () => posts.map((m) => (m.type === 'track' ? `track ${String(m['event'])}` : m.type));

beforeEach(() => {
  clock = fakeClock(Date.UTC(2026, 11, 3, 12));
  vi.spyOn(Date, 'now').mockImplementation(clock.now);
  storage = new Map();
  access = [];
  posts = [];
});

afterEach(() => {
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

describe('requireConsent', () => {
  it('sends nothing and writes nothing before consent; a grant sends what was held, carrying the preferences', async () => {
    const t = load({ requireConsent: true });
    t.track('Before Consent');
    t.identify('user-42');
    await settle();
    expect(posts).toEqual([]);
    // not even localStorage's probe; only the visitor's own choices were looked up
    expect(access).toEqual(['get tl_consent', 'get tl_optout']);

    t.consent({ analytics: true, marketing: false });
    await settle();
    expect(types()).toEqual(['session_start', 'page', 'track Before Consent', 'identify']);
    for (const m of posts) {
      expect(m.context['consent']).toEqual({ categoryPreferences: { analytics: true, marketing: false } });
      expect(m['anonymousId']).toBe(storage.get('tl_aid'));
    }
    expect(posts.at(-1)).toMatchObject({ userId: 'user-42' });
    expect([...storage.keys()].sort()).toEqual(['tl_aid', 'tl_consent', 'tl_session', 'tl_uid']);
    expect(storage.get('tl_consent')).toBe('{"analytics":true,"marketing":false}');
  });

  it('the stored consent lasts across page loads: the next page sends at once', async () => {
    load({ requireConsent: true }).consent({ analytics: true });
    await settle();
    const aid = storage.get('tl_aid');
    posts = [];
    load({ requireConsent: true });
    await settle();
    expect(types()).toEqual(['page']);
    expect(posts[0]).toMatchObject({ anonymousId: aid, context: { consent: { categoryPreferences: { analytics: true } } } });
  });

  it('a denial before any grant discards what was held and stores nothing, on this page and the next', async () => {
    const t = load({ requireConsent: true });
    t.track('Before');
    t.consent({ analytics: false, marketing: true });
    t.track('After Denial');
    await settle();
    load({ requireConsent: true }).track('Next Page');
    await settle();
    expect(posts).toEqual([]);
    expect(writes()).toEqual([]);
    expect(storage.size).toBe(0);
  });

  it('a grant after a denial on the same page starts afresh', async () => {
    const t = load({ requireConsent: true });
    t.track('Before');
    t.consent({ analytics: false });
    t.consent({ analytics: true });
    t.track('After Grant');
    await settle();
    expect(types()).toEqual(['session_start', 'track After Grant']);
  });

  it('an ignored call (no boolean category) keeps holding', async () => {
    const t = load({ requireConsent: true });
    t.consent({ analytics: 'yes' });
    t.consent(null);
    await settle();
    expect(posts).toEqual([]);
    expect(writes()).toEqual([]);
    t.consent({ analytics: true });
    await settle();
    expect(types()).toEqual(['session_start', 'page']);
  });

  it('a stored opt-out holds before consent; optIn then a grant lift it, in storage too', async () => {
    storage.set('tl_optout', '1');
    const t = load({ requireConsent: true });
    t.consent({ analytics: true });
    t.track('Opted Out');
    await settle();
    expect(posts).toEqual([]);
    t.optIn();
    t.track('Opted In');
    await settle();
    expect(types()).toEqual(['session_start', 'track Opted In']);
    expect(storage.has('tl_optout')).toBe(false);
  });

  it('opted out, a grant sends nothing held', async () => {
    const t = load({ requireConsent: true });
    t.optOut();
    t.consent({ analytics: true });
    t.track('Opted Out');
    await settle();
    expect(posts).toEqual([]);
  });
});

describe('withdrawal', () => {
  it('stops sending (queued messages too), clears the stored ids and keeps only the choice, across page loads', async () => {
    const t = load({ requireConsent: true });
    t.consent({ analytics: true, marketing: true });
    t.identify('user-42', 'acct-7');
    await settle();
    const sent = posts.length;
    expect(sent).toBeGreaterThan(0);
    t.track('Queued Before Withdrawal'); // not sent yet: the flush interval has not passed
    t.consent({ analytics: false, marketing: true });
    t.track('After Withdrawal');
    t.page();
    await settle();
    expect(posts).toHaveLength(sent);
    expect([...storage.entries()]).toEqual([['tl_consent', '{"analytics":false,"marketing":true}']]);

    access = [];
    load({ requireConsent: true }).track('Next Page');
    await settle();
    expect(posts).toHaveLength(sent);
    expect(writes()).toEqual([]);
  });

  it('works the same without requireConsent: the stored withdrawal keeps the next page silent', async () => {
    const t = load();
    await settle();
    expect(types()).toEqual(['session_start', 'page']);
    expect(posts[0]!.context['consent']).toBeUndefined(); // no choice made: none carried
    t.consent({ analytics: false });
    expect([...storage.keys()]).toEqual(['tl_consent']);
    load().track('Next Page');
    await settle();
    expect(posts).toHaveLength(2);
  });

  it('a later grant resumes with new ids', async () => {
    const t = load();
    await settle();
    const first = posts[0]!['anonymousId'];
    t.consent({ analytics: false });
    t.consent({ analytics: true });
    t.track('Back');
    await settle();
    expect(posts.at(-1)).toMatchObject({ type: 'track', context: { consent: { categoryPreferences: { analytics: true } } } });
    expect(posts.at(-1)!['anonymousId']).not.toBe(first);
  });
});

describe("storage: 'none' (cookieless)", () => {
  it('never touches localStorage; no anonymousId, no session; userId after identify', async () => {
    const t = load({ storage: 'none' });
    t.track('Clicked');
    t.identify('user-42');
    t.track('Identified');
    await settle();
    expect(access).toEqual([]);
    expect(types()).toEqual(['page', 'track Clicked', 'identify', 'track Identified']);
    for (const m of posts) {
      expect(m).not.toHaveProperty('anonymousId');
      expect(m).not.toHaveProperty('sessionId');
    }
    expect(posts[0]).not.toHaveProperty('userId');
    expect(posts.slice(2).map((m) => m['userId'])).toEqual(['user-42', 'user-42']);

    posts = [];
    load({ storage: 'none' });
    await settle();
    expect(posts.map((m) => m['userId'])).toEqual([undefined]); // nothing lasts beyond the page
    expect(access).toEqual([]);
  });

  it('with requireConsent: held in memory, consent for the page only, a withdrawal for the page only', async () => {
    const t = load({ storage: 'none', requireConsent: true });
    t.track('Held');
    await settle();
    expect(posts).toEqual([]);
    t.consent({ analytics: true });
    await settle();
    expect(types()).toEqual(['page', 'track Held']);
    expect(posts[1]).toMatchObject({ context: { consent: { categoryPreferences: { analytics: true } } } });
    t.consent({ analytics: false });
    t.track('Withdrawn');
    await settle();
    expect(posts).toHaveLength(2);
    expect(access).toEqual([]);
  });

  it.each(['None', 'memory', 'cookie'])('treats an unknown storage value %j as none (a typo stores less, not more)', async (storageOption) => {
    load({ storage: storageOption as 'none' });
    await settle();
    expect(access).toEqual([]);
    expect(posts[0]).not.toHaveProperty('anonymousId');
  });
});

describe("storage: 'local' (default)", () => {
  it('stores the visitor and session ids as before', async () => {
    load({ storage: 'local' });
    await settle();
    expect(types()).toEqual(['session_start', 'page']);
    expect(posts[1]).toMatchObject({ anonymousId: storage.get('tl_aid'), sessionId: expect.any(String) });
  });
});
