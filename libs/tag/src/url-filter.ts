// Client-side URL filters, applied to every URL the tag sends (page URL, referrer, search,
// link hrefs) before it leaves the browser: named query parameters dropped or masked, the
// server's sensitive-parameter list masked (scrub-params.ts), emails and credentials redacted, and non-web
// links (mailto:, tel:, javascript: …) reduced to their scheme. The collector scrubs again
// (libs/enrich/url-scrub.ts); this side makes sure the values never travel at all.
import { domainEnd, has, HEX, LOCAL, type ScanStats } from './email-scan.js';
import { REDACTED, SENSITIVE_PARAMS } from './scrub-params.js';

export type { ScanStats };

export interface UrlFilters {
  /** query/fragment parameters removed with their values (case-insensitive names) */
  drop?: string[];
  /** query/fragment parameters whose values are replaced by "redacted", on top of the defaults */
  mask?: string[];
}

// The email pattern, as a hand-written scanner (one left-to-right pass). The regex it replaces,
// /(?:[a-z0-9._+!~$'*-]|%[0-9a-f]{2})+(?:@|%40)(?:[a-z0-9-]+\.)+[a-z]{2,63}/gi, backtracked: each
// start in a long run of local-part characters rescanned the run, so 8 KB of crafted query string
// stalled the tab. Same output as that regex with String.replace (url-filter.test.ts keeps it as
// an oracle), ASCII-only like /i without /u.
// NOTE: no lookbehind (Safari < 16.4 would fail to parse the whole bundle). Instead of refusing
// to start inside a %XX escape like the server does, escapes are part of the local part: the
// client may over-redact a delimiter next to an email, never under-redact.
const SCHEME_RE = /^([a-z][a-z0-9+.-]*):/i;

/** Length of the local-part unit at i: 1 (a character), 3 (a %XX escape) or 0 (none). */
function unitAt(s: string, i: number): number {
  if (has(s, i, LOCAL)) return 1;
  return s.charCodeAt(i) === 37 /* % */ && has(s, i + 1, HEX) && has(s, i + 2, HEX) ? 3 : 0;
}

/** `%40` at i. */
function isEncodedAt(s: string, i: number): boolean {
  return s.charCodeAt(i) === 37 && s.charCodeAt(i + 1) === 52 && s.charCodeAt(i + 2) === 48;
}

/** redactEmails with a step count; the exported function is this without the count. */
export function redactEmailsCounted(s: string, stats: ScanStats): string {
  if (s.indexOf('@') === -1 && s.indexOf('%40') === -1) return s;
  const n = s.length;
  let out = '';
  let copied = 0; // s[copied, start) is still to be copied to out
  let i = 0;
  while (i < n) {
    stats.steps++;
    if (unitAt(s, i) === 0) {
      i++;
      continue;
    }
    // TRICKY: a run of local-part units. Every start inside it tokenizes in step with `start` (a
    // start inside a %XX escape reads two hex characters, then meets the same units), so all its
    // starts share one set of separators: the leftmost start matches if any does, and one pass
    // decides. The separators are each %40 after the first unit (an escape like any other, so
    // the run goes on past it) and an '@' ending the run; the greedy regex takes the last one
    // whose domain matches (a later separator's domain also ends later: Math.max keeps the last).
    const start = i;
    let end = -1; // end of the match from `start`, or -1
    for (let unit = unitAt(s, i); unit !== 0; unit = unitAt(s, i)) {
      stats.steps++;
      if (i > start && isEncodedAt(s, i)) end = Math.max(end, domainEnd(s, i + 3, stats));
      i += unit;
    }
    if (s.charCodeAt(i) === 64 /* @ */) end = Math.max(end, domainEnd(s, i + 1, stats));
    if (end === -1) continue;
    out += `${s.slice(copied, start)}${REDACTED}`;
    copied = end;
    // NOTE: a match ending inside the run (at a %40's domain) leaves no separator with a domain
    // in the rest of the run: the scan goes on from the run's end, never back.
    if (end > i) i = end;
  }
  return out === '' ? s : out + s.slice(copied);
}

const NO_STATS: ScanStats = { steps: 0 };

/** Email addresses (plain or %40-encoded) replaced by REDACTED, in linear time. */
export function redactEmails(s: string): string {
  NO_STATS.steps = 0;
  return redactEmailsCounted(s, NO_STATS);
}

function nameSet(names: readonly string[] | undefined): Set<string> {
  const out = new Set<string>();
  for (const n of names ?? []) {
    const t = String(n).trim().toLowerCase();
    if (t) out.add(t);
  }
  return out;
}

function decodeName(raw: string): string {
  try {
    return decodeURIComponent(raw.replace(/\+/g, ' ')).toLowerCase();
  } catch {
    return raw.toLowerCase();
  }
}

export type UrlFilter = (url: string) => string;

export function createUrlFilter(filters: UrlFilters = {}): UrlFilter {
  const drop = nameSet(filters.drop);
  const mask = nameSet([...SENSITIVE_PARAMS, ...(filters.mask ?? [])]);

  /** `k=v&k2=v2`: dropped pairs removed, masked values replaced, emails redacted elsewhere. */
  function pairs(s: string): string {
    const out: string[] = [];
    for (const pair of s.split('&')) {
      const eq = pair.indexOf('=');
      const name = decodeName(eq === -1 ? pair : pair.slice(0, eq));
      if (drop.has(name)) continue;
      out.push(eq !== -1 && mask.has(name) ? `${pair.slice(0, eq + 1)}${REDACTED}` : redactEmails(pair));
    }
    return out.join('&');
  }

  function base(b: string): string {
    const scheme = b.indexOf('://');
    if (scheme > 0) {
      const authEnd = b.indexOf('/', scheme + 3);
      const end = authEnd === -1 ? b.length : authEnd;
      const at = b.lastIndexOf('@', end - 1);
      if (at > scheme) return `${b.slice(0, scheme + 3)}${REDACTED}@${b.slice(at + 1, end)}${redactEmails(b.slice(end))}`;
    }
    return redactEmails(b);
  }

  return (url) => {
    const m = SCHEME_RE.exec(url);
    if (m && !/^https?$/i.test(m[1]!)) return `${m[1]!.toLowerCase()}:${REDACTED}`;
    const h = url.indexOf('#');
    const beforeHash = h === -1 ? url : url.slice(0, h);
    const q = beforeHash.indexOf('?');
    let out = base(q === -1 ? beforeHash : beforeHash.slice(0, q));
    if (q !== -1) {
      const query = pairs(beforeHash.slice(q + 1));
      if (query) out += `?${query}`;
    }
    if (h !== -1) {
      const frag = url.slice(h + 1);
      // TRICKY: OAuth implicit flows put access_token=… in the fragment.
      const f = frag.indexOf('=') !== -1 ? pairs(frag) : redactEmails(frag);
      if (f) out += `#${f}`;
    }
    return out;
  };
}
