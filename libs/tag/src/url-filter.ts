// Client-side URL filters, applied to every URL the tag sends (page URL, referrer, search,
// link hrefs) before it leaves the browser: named query parameters dropped or masked, the
// server's sensitive-parameter list masked (scrub-params.ts), emails and credentials redacted, and non-web
// links (mailto:, tel:, javascript: …) reduced to their scheme. The collector scrubs again
// (libs/enrich/url-scrub.ts); this side makes sure the values never travel at all.
import { REDACTED, SENSITIVE_PARAMS } from './scrub-params.js';

export interface UrlFilters {
  /** query/fragment parameters removed with their values (case-insensitive names) */
  drop?: string[];
  /** query/fragment parameters whose values are replaced by "redacted", on top of the defaults */
  mask?: string[];
}

// NOTE: no lookbehind (Safari < 16.4 would fail to parse the whole bundle). Instead of refusing
// to start inside a %XX escape like the server does, escapes are part of the local part: the
// client may over-redact a delimiter next to an email, never under-redact.
const EMAIL_RE = /(?:[a-z0-9._+!~$'*-]|%[0-9a-f]{2})+(?:@|%40)(?:[a-z0-9-]+\.)+[a-z]{2,63}/gi;
const SCHEME_RE = /^([a-z][a-z0-9+.-]*):/i;

export function redactEmails(s: string): string {
  return s.indexOf('@') === -1 && s.indexOf('%40') === -1 ? s : s.replace(EMAIL_RE, REDACTED);
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
