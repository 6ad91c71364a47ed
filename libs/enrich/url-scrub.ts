// Scrubs PII from page URLs and referrers before storage: email-looking values anywhere in the
// URL, credentials in the authority, and the values of sensitive query/fragment parameters.
// Works on the raw string (no URL object): relative URLs and garbage pass through, emails redacted.

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

// local part: unreserved chars or an encoded '+' (%2B; other escapes are delimiters such as
// %2F %3D %26 and must not be swallowed, nor may a match start inside one); '@' plain or as %40;
// domain: labels + alpha TLD
const EMAIL_RE = /(?<!%[0-9a-f]?)(?:[a-z0-9._+!~$'*-]|%2b)+(?:@|%40)(?:[a-z0-9-]+\.)+[a-z]{2,63}/gi;

/** Email addresses (plain or %40-encoded) in free text, replaced by REDACTED. */
export function redactEmails(s: string): string {
  return s.indexOf('@') === -1 && s.indexOf('%40') === -1 ? s : s.replace(EMAIL_RE, REDACTED);
}

function decodeName(raw: string): string {
  if (raw.indexOf('%') === -1 && raw.indexOf('+') === -1) return raw.toLowerCase();
  try {
    return decodeURIComponent(raw.replaceAll('+', ' ')).toLowerCase();
  } catch {
    return raw.toLowerCase();
  }
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
      return `${base.slice(0, authStart)}${REDACTED}@${base.slice(at + 1, authEnd)}${redactEmails(base.slice(authEnd))}`;
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
