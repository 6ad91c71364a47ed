// Scrubs PII from page URLs and referrers before storage: email-looking values anywhere in the
// URL, credentials in the authority, and the values of sensitive query/fragment parameters.
// Works on the raw string (no URL object): relative URLs and garbage pass through, emails redacted.
import { domainEnd, has, HEX, LOCAL, type ScanStats } from '../tag/src/email-scan.js';

export type { ScanStats };

export const REDACTED = 'redacted';

/** Query parameter names whose values are always redacted (compared case-insensitively). */
export const DEFAULT_SCRUB_PARAMS: readonly string[] = Object.freeze([
  'email', 'e-mail', 'e_mail', 'mail', 'email_address', 'emailaddress', 'user_email', 'username',
  'token', 'access_token', 'refresh_token', 'id_token', 'auth', 'auth_token', 'authorization',
  'jwt', 'bearer', 'password', 'passwd', 'pwd', 'pass', 'secret', 'client_secret',
  'api_key', 'apikey', 'api-key', 'key', 'session', 'sessionid', 'session_id', 'sid',
  'code', 'otp', 'ssn', 'phone', 'phone_number', 'mobile', 'tel',
  'first_name', 'firstname', 'last_name', 'lastname',
  'signature', 'sig', 'x-amz-signature', 'x-amz-credential', 'x-amz-security-token',
]);

export type ScrubParams = ReadonlySet<string>;

export function scrubParamSet(names: readonly string[]): ScrubParams {
  return new Set(names.map((n) => n.trim().toLowerCase()).filter((n) => n.length > 0));
}

// The email pattern, as a hand-written scanner (one left-to-right pass; the regex it replaces,
// /(?<!%[0-9a-f]?)(?:[a-z0-9._+!~$'*-]|%2b)+(?:@|%40)(?:[a-z0-9-]+\.)+[a-z]{2,63}/gi, backtracked:
// an 8 KB value cost 100–500 ms). Same matches as that regex with String.replace, ASCII-only:
// local part: unreserved chars or an encoded '+' (%2B; other escapes are delimiters such as
// %2F %3D %26 and must not be swallowed, nor may a match start inside one); '@' plain or as %40;
// domain: labels + alpha TLD (longest label chain that leaves a TLD of ≥ 2 letters, TLD ≤ 63).
// NOTE: the scan never moves back: a character is visited once as a local part and at most
// once more as a domain (url-scrub.test.ts counts ≤ 4n + 16 steps on adversarial inputs).

/** `%2b`/`%2B` at i. */
function isEncodedPlus(s: string, i: number): boolean {
  return s.charCodeAt(i) === 37 && s.charCodeAt(i + 1) === 50 && (s.charCodeAt(i + 2) | 32) === 98;
}

/** Length of the local-part unit at i: 1 (a char), 3 (%2b) or 0 (none). */
function localUnit(s: string, i: number): number {
  return has(s, i, LOCAL) ? 1 : isEncodedPlus(s, i) ? 3 : 0;
}

/** The regex's lookbehind (?<!%[0-9a-f]?): no match starts right after `%` or `%x`. */
function mayStartAt(s: string, i: number): boolean {
  return !(s.charCodeAt(i - 1) === 37 || (s.charCodeAt(i - 2) === 37 && has(s, i - 1, HEX)));
}

/** redactEmails with a step count; the exported function is this without the count. */
export function redactEmailsCounted(s: string, stats: ScanStats): string {
  if (s.indexOf('@') === -1 && s.indexOf('%40') === -1) return s;
  const n = s.length;
  let out = '';
  let copied = 0; // s[copied, start) is still to be copied to out
  let start = -1; // leftmost possible match start of the current local-part run, or -1
  let i = 0;
  while (i < n) {
    stats.steps++;
    if (start === -1) {
      const unit = localUnit(s, i);
      if (unit === 0 || !mayStartAt(s, i)) {
        i++;
        continue;
      }
      start = i;
      i += unit;
      continue;
    }
    const unit = localUnit(s, i);
    if (unit !== 0) {
      i += unit;
      continue;
    }
    // TRICKY: every start inside this run ends its local part here (the run's units cannot be
    // split differently: a start inside a %2b is excluded by the lookbehind), so one check
    // decides them all; on failure the scan goes on from here, never back.
    const sep = s.charCodeAt(i) === 64 /* @ */ ? 1 : s.startsWith('%40', i) ? 3 : 0;
    const end = sep === 0 ? -1 : domainEnd(s, i + sep, stats);
    if (end !== -1) {
      out += `${s.slice(copied, start)}${REDACTED}`;
      copied = end;
      i = end;
    }
    start = -1;
  }
  return out === '' ? s : out + s.slice(copied);
}

const NO_STATS: ScanStats = { steps: 0 };

/** Email addresses (plain or %40-encoded) in free text, replaced by REDACTED. Linear time. */
export function redactEmails(s: string): string {
  NO_STATS.steps = 0;
  return redactEmailsCounted(s, NO_STATS);
}

function hexByte(s: string, i: number): number {
  if (!has(s, i, HEX) || !has(s, i + 1, HEX)) return -1;
  return Number.parseInt(s.slice(i, i + 2), 16);
}

/**
 * decodeURIComponent without the exception: null where it would throw (a bad escape or
 * invalid UTF-8). NOTE: a throw costs microseconds; `?%=&%=&…` made one per pair, 18 ms per 8 KB.
 */
export function decodeComponent(raw: string): string | null {
  let out = '';
  let i = 0;
  while (i < raw.length) {
    if (raw.charCodeAt(i) !== 37 /* % */) {
      const next = raw.indexOf('%', i);
      const end = next === -1 ? raw.length : next;
      out += raw.slice(i, end);
      i = end;
      continue;
    }
    const b = hexByte(raw, i + 1);
    if (b === -1) return null;
    i += 3;
    if (b < 0x80) {
      out += String.fromCharCode(b);
      continue;
    }
    // UTF-8 sequence of escapes; overlong forms, surrogates and values past U+10FFFF are errors.
    const need = (b & 0xe0) === 0xc0 ? 1 : (b & 0xf0) === 0xe0 ? 2 : (b & 0xf8) === 0xf0 ? 3 : 0;
    if (need === 0) return null;
    let cp = b & (0x3f >> need);
    for (let k = 0; k < need; k++) {
      const c = raw.charCodeAt(i) === 37 ? hexByte(raw, i + 1) : -1;
      if (c === -1 || (c & 0xc0) !== 0x80) return null;
      cp = (cp << 6) | (c & 0x3f);
      i += 3;
    }
    if (cp < (need === 1 ? 0x80 : need === 2 ? 0x800 : 0x10000) || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return null;
    out += String.fromCodePoint(cp);
  }
  return out;
}

function decodeName(raw: string): string {
  if (raw.indexOf('%') === -1 && raw.indexOf('+') === -1) return raw.toLowerCase();
  return (decodeComponent(raw.replaceAll('+', ' ')) ?? raw).toLowerCase();
}

/** `k=v&k2=v2` with sensitive values replaced; separators and unchanged pairs kept byte for byte. */
function scrubPairs(s: string, params: ScrubParams): string {
  let out = '';
  let start = 0;
  while (start <= s.length) {
    let amp = s.indexOf('&', start);
    if (amp === -1) amp = s.length;
    const pair = s.slice(start, amp);
    const eq = pair.indexOf('=');
    if (eq !== -1 && params.has(decodeName(pair.slice(0, eq)))) out += `${pair.slice(0, eq + 1)}${REDACTED}`;
    else out += redactEmails(pair);
    if (amp < s.length) out += '&';
    start = amp + 1;
  }
  return out;
}

/** scheme://user:pass@host → scheme://redacted@host (credentials in the authority). */
function scrubBase(base: string): string {
  const scheme = base.indexOf('://');
  if (scheme > 0 && scheme < 32) {
    const authStart = scheme + 3;
    let authEnd = base.indexOf('/', authStart);
    if (authEnd === -1) authEnd = base.length;
    const at = base.lastIndexOf('@', authEnd - 1);
    if (at >= authStart) {
      // NOTE: the part before `://` is not always a scheme (`/u/bob@x.io/https://…`), nor the
      // host free of an encoded email: both are scrubbed too (found by ingest-fuzz.test.ts).
      return `${redactEmails(base.slice(0, authStart))}${REDACTED}@${redactEmails(base.slice(at + 1))}`;
    }
  }
  return redactEmails(base);
}

/** Scrubs one URL (absolute, relative, a bare `?query`, or garbage). Never throws. */
export function scrubUrl(url: string, params: ScrubParams): string {
  const q = url.indexOf('?');
  const h = url.indexOf('#');
  // NOTE: fast path: nothing that could carry a parameter value or an email.
  if (q === -1 && h === -1 && url.indexOf('@') === -1 && url.indexOf('%40') === -1) return url;
  const baseEnd = q !== -1 && (h === -1 || q < h) ? q : h !== -1 ? h : url.length;
  let out = scrubBase(url.slice(0, baseEnd));
  if (q !== -1 && (h === -1 || q < h)) {
    const qEnd = h === -1 ? url.length : h;
    out += `?${scrubPairs(url.slice(q + 1, qEnd), params)}`;
  }
  if (h !== -1) {
    const frag = url.slice(h + 1);
    // TRICKY: OAuth implicit flows put access_token=… in the fragment: treat k=v fragments as a query.
    out += `#${frag.indexOf('=') !== -1 ? scrubPairs(frag, params) : redactEmails(frag)}`;
  }
  return out;
}

export function scrubNullableUrl(url: string | null, params: ScrubParams): string | null {
  return url === null ? null : scrubUrl(url, params);
}
