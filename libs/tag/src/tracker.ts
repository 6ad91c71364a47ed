// The tag's core in the page: builds Segment-shaped messages (page, click, link, track,
// identify, group, session_start, session_end), wires automatic tracking to the DOM and
// hands serialized messages to delivery — or holds them until consent. Reads no form field,
// no markup, nothing typed.
import { createConsent, type ConsentMode } from './consent.js';
import { createDelivery } from './delivery.js';
import { describeClick } from './element.js';
import { uuid } from './ids.js';
import { createSession, type Session } from './session.js';
import { deferredStore, localStore } from './storage.js';
import { createUrlFilter, redactEmails, type UrlFilters } from './url-filter.js';

export const TAG_VERSION = '0.1.0';

export interface TagOptions {
  /** collector base URL; default: where tag.js was loaded from */
  host?: string;
  /** session_start / session_end and a session id on every event (default true) */
  trackSessions?: boolean;
  /** a page view on load and on history navigation (default true) */
  trackPageViews?: boolean;
  /** button and link clicks (default true) */
  trackClicks?: boolean;
  /** inactivity that ends a session (default 30 minutes) */
  sessionTimeoutMs?: number;
  /** send nothing when the browser signals Do Not Track or Global Privacy Control (default false) */
  honorDnt?: boolean;
  urlFilters?: UrlFilters;
  /** messages per request (default 20) */
  batchSize?: number;
  /** longest wait before a partial batch is sent (default 1000 ms) */
  flushIntervalMs?: number;
  /** oldest unsent messages are dropped beyond this (default 1000); also the most messages held until consent */
  maxQueue?: number;
  /** send nothing and store nothing until a consent call grants (default false); messages meanwhile are held in memory */
  requireConsent?: boolean;
  /** 'local' (default): ids in localStorage; 'none': in memory for the page's life, no anonymousId, no sessions */
  storage?: 'local' | 'none';
}

export interface Tracker {
  identify(user: unknown, account?: unknown): void;
  track(name: unknown, properties?: unknown): void;
  page(name?: unknown, properties?: unknown): void;
  consent(preferences: unknown): void;
  optOut(): void;
  optIn(): void;
  reset(): void;
  flush(): void;
}

type Fields = Record<string, unknown>;

/** Runs fn, swallowing errors: the tag must never break the page nor write to its console. */
export function safe(fn: () => void): void {
  try {
    fn();
  } catch {
    // deliberately silent (no console noise)
  }
}

const num = (v: unknown, fallback: number, min: number): number =>
  typeof v === 'number' && Number.isFinite(v) && v >= min ? v : fallback;

const asFields = (v: unknown): Fields => (v !== null && typeof v === 'object' && !Array.isArray(v) ? { ...(v as Fields) } : {});

/** `"u1"`, `42` or `{ id: "u1", …traits }` → id and traits. */
function identity(v: unknown): { id: string; traits: Fields } | null {
  if (typeof v === 'string' || typeof v === 'number') return String(v).trim() ? { id: String(v).trim(), traits: {} } : null;
  const traits = asFields(v);
  const id = traits['id'];
  delete traits['id'];
  return (typeof id === 'string' || typeof id === 'number') && String(id).trim() ? { id: String(id).trim(), traits } : null;
}

export function startTracker(writeKey: string, options: TagOptions, scriptOrigin: string | null): Tracker {
  const w = window;
  const d = document;
  const nav = navigator as Navigator & { globalPrivacyControl?: boolean };
  // NOTE: any value but 'local' is cookieless: a typo must store less, not more.
  const cookieless = options.storage !== undefined && options.storage !== 'local';
  const store = deferredStore(cookieless ? null : () => localStore('tl_', () => w.localStorage));
  if (!cookieless) {
    // NOTE: before storage may be used, only the visitor's own choices are read from it.
    for (const k of ['consent', 'optout']) {
      let v: string | null = null;
      try {
        v = w.localStorage.getItem(`tl_${k}`);
      } catch {
        // storage unavailable: no choice stored
      }
      if (v !== null) store.set(k, v);
    }
  }
  const maxQueue = num(options.maxQueue, 1000, 1);
  const consent = createConsent<Fields>({ store, required: options.requireConsent === true, maxHeld: maxQueue });
  const host = String(options.host || scriptOrigin || location.origin).replace(/\/+$/, '');
  const endpoint = `${host}/v1/batch`;
  const filterUrl = createUrlFilter(options.urlFilters);
  const dnt =
    options.honorDnt === true &&
    (nav.doNotTrack === '1' || (w as { doNotTrack?: string }).doNotTrack === '1' || nav.globalPrivacyControl === true);
  const mode = (): ConsentMode => (dnt || store.get('optout') === '1' ? 'off' : consent.mode());
  const off = () => mode() === 'off';
  /** Ids may be kept in the browser from now on (consent given or not needed, not opted out). */
  const allowStorage = (): void => {
    if (mode() === 'send') store.persist();
  };
  allowStorage();

  let userId = store.get('uid');
  let accountId = store.get('acc');
  let referrer = d.referrer;
  let lastHref: string | null = null;
  let timezone: string | undefined;
  let timezoneKnown = false;
  function resolveTimezone(): void {
    if (timezoneKnown) return;
    timezoneKnown = true;
    try {
      timezone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    } catch {
      timezone = undefined;
    }
  }
  // TRICKY: a page's first Intl call initializes ICU: 30–35 ms in Chromium 156 on a 2-core
  // machine, which with the tag's own start made a long task (> 50 ms) on every page load. It
  // runs in a task of its own right after the tag has loaded, and the first page view in the
  // task after that; an event emitted before then (a click in those milliseconds) resolves it
  // on the spot.
  w.setTimeout(() => safe(resolveTimezone), 0);

  const delivery = createDelivery({
    post: (body) =>
      // NOTE: a string body is sent as text/plain: a CORS "simple" request, no preflight.
      // keepalive lets a request outlive the page; browsers cap those bodies at 64 KB.
      fetch(endpoint, { method: 'POST', body, credentials: 'omit', keepalive: body.length <= 20_000 }).then((r) => r.status),
    beacon: (body) => typeof nav.sendBeacon === 'function' && nav.sendBeacon(endpoint, body),
    wrap: (messages) =>
      `{"batch":[${messages.join(',')}],"sentAt":"${new Date().toISOString()}","writeKey":${JSON.stringify(writeKey)}}`,
    now: Date.now,
    random: Math.random,
    setTimer: (fn, ms) => w.setTimeout(() => safe(fn), ms),
    clearTimer: (h) => w.clearTimeout(h as number),
    batchSize: num(options.batchSize, 20, 1),
    flushIntervalMs: num(options.flushIntervalMs, 1000, 0),
    maxQueue,
    maxBatchChars: 16_000,
    maxAttempts: 8,
    backoffBaseMs: 1000,
    backoffMaxMs: 60_000,
  });

  // NOTE: cookieless, a session could not outlive the page: one per page load would split every
  // visit of a multi-page site, so there are none; the collector's daily id joins the events.
  const session: Session | null =
    options.trackSessions === false || cookieless
      ? null
      : createSession({
          store,
          timeoutMs: num(options.sessionTimeoutMs, 30 * 60_000, 1),
          now: Date.now,
          newId: uuid,
          setTimer: (fn, ms) => w.setTimeout(() => safe(fn), ms),
          clearTimer: (h) => w.clearTimeout(h as number),
          onStart: (id, at) => emit('session_start', {}, at, id),
          onEnd: (id, at, reason) => emit('session_end', { properties: { reason } }, at, id),
        });

  function anonymousId(): string {
    let id = store.get('aid');
    if (!id) store.set('aid', (id = uuid()));
    return id;
  }

  function context(): Fields {
    resolveTimezone();
    const search = filterUrl(location.search);
    return {
      page: {
        url: filterUrl(location.href),
        path: filterUrl(location.pathname),
        ...(search ? { search } : {}),
        ...(referrer ? { referrer: filterUrl(referrer) } : {}),
        title: redactEmails(d.title),
      },
      library: { name: 'tracklane-tag', version: TAG_VERSION },
      locale: nav.language,
      ...(timezone ? { timezone } : {}),
      screen: { width: w.screen.width, height: w.screen.height },
      ...(accountId ? { groupId: accountId } : {}),
    };
  }

  /**
   * Queues one message. Activity (anything but a session's own events) touches the session
   * first, which may emit session_end and session_start ahead of it.
   */
  function emit(type: string, fields: Fields, at = Date.now(), sessionId?: string): void {
    const m = mode();
    if (m === 'off') return;
    const sid = sessionId ?? session?.touch();
    const msg: Fields = {
      type,
      messageId: uuid(),
      // NOTE: cookieless, the collector derives a daily id from the request instead.
      ...(cookieless ? {} : { anonymousId: anonymousId() }),
      ...(userId ? { userId } : {}),
      ...(sid ? { sessionId: sid } : {}),
      timestamp: new Date(at).toISOString(),
      context: context(),
      ...fields,
    };
    if (m === 'hold') consent.hold(msg);
    else send(msg);
  }

  function send(msg: Fields): void {
    const p = consent.preferences();
    // NOTE: stamped when sent, so a message held until consent carries the choice that released it.
    if (p) msg['context'] = { ...(msg['context'] as Fields), consent: { categoryPreferences: p } };
    delivery.push(JSON.stringify(msg));
  }

  const hrefWithoutHash = () => location.href.replace(/#.*$/, '');

  function autoPage(): void {
    const href = hrefWithoutHash();
    if (href === lastHref) return;
    if (lastHref !== null) referrer = lastHref;
    lastHref = href;
    emit('page', {});
  }

  if (!dnt) {
    if (options.trackPageViews !== false) {
      // TRICKY: SPA routers call pushState/replaceState directly; no event fires for them.
      for (const method of ['pushState', 'replaceState'] as const) {
        const original = history[method];
        history[method] = function (this: History, ...args: Parameters<History['pushState']>) {
          const result = original.apply(this, args);
          safe(autoPage);
          return result;
        };
      }
      w.addEventListener('popstate', () => safe(autoPage));
      // NOTE: after the timezone's task (timers of equal delay run in order)
      w.setTimeout(() => safe(autoPage), 0);
    }
    if (options.trackClicks !== false) {
      // NOTE: capture phase, so a handler that stops propagation does not hide the click;
      // passive, so the tag never delays the page's own handling.
      d.addEventListener(
        'click',
        (e) =>
          safe(() => {
            const click = describeClick(e.target, filterUrl);
            if (click) emit(click.type, { element: click.element });
          }),
        { capture: true, passive: true },
      );
    }
    w.addEventListener('pagehide', () =>
      safe(() => {
        if (off()) return;
        session?.hide();
        delivery.flushOnHide();
      }),
    );
    d.addEventListener('visibilitychange', () =>
      safe(() => {
        // NOTE: mobile browsers may discard a hidden tab without a pagehide.
        if (d.visibilityState === 'hidden' && !off()) delivery.flushOnHide();
      }),
    );
  }

  function forgetIdentity(): void {
    userId = null;
    accountId = null;
    for (const k of ['uid', 'acc', 'aid', 'session']) store.remove(k);
  }

  /** Opt-out and withdrawal: nothing queued or held is sent, the ids are gone. */
  function stop(): void {
    delivery.clear();
    consent.discard();
    session?.stop();
    forgetIdentity();
  }

  return {
    identify(user, account) {
      const u = identity(user);
      if (!u || off()) return;
      userId = u.id;
      store.set('uid', u.id);
      const a = account === undefined ? undefined : identity(account);
      if (a !== undefined) {
        accountId = a?.id ?? null;
        if (accountId) store.set('acc', accountId);
        else store.remove('acc');
      }
      // NOTE: traits travel in these calls only; later events carry just the ids.
      emit('identify', { traits: u.traits });
      if (a && Object.keys(a.traits).length > 0) emit('group', { groupId: a.id, traits: a.traits });
    },
    track(name, properties) {
      if (typeof name === 'string' && name.trim()) emit('track', { event: name.trim(), properties: asFields(properties) });
    },
    page(name, properties) {
      emit('page', { ...(typeof name === 'string' ? { name } : {}), properties: asFields(properties) });
    },
    consent(preferences) {
      const r = consent.update(preferences);
      if (!r) return;
      // NOTE: a withdrawal sends nothing, not even itself; what stays is the stored choice.
      if (r.result === 'withdraw') return stop();
      if (off()) return; // opted out or Do Not Track: what was held stays unsent
      allowStorage();
      for (const m of r.held) send(m);
    },
    optOut() {
      store.set('optout', '1');
      stop();
    },
    optIn() {
      store.remove('optout');
      allowStorage();
    },
    reset() {
      session?.stop();
      forgetIdentity();
    },
    flush() {
      delivery.flush();
    },
  };
}
