import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeComponent, DEFAULT_SCRUB_PARAMS, redactEmails, redactEmailsCounted, scrubParamSet, scrubUrl } from './url-scrub.js';

const DEFAULTS = scrubParamSet(DEFAULT_SCRUB_PARAMS);

describe('scrubUrl', () => {
  it.each([
    ['no query: untouched', 'https://acme.com/pricing', 'https://acme.com/pricing'],
    ['harmless query kept byte for byte', 'https://acme.com/?utm_source=x&utm_medium=y%20z', 'https://acme.com/?utm_source=x&utm_medium=y%20z'],
    ['email param', 'https://acme.com/signup?email=bob%40x.com&plan=pro', 'https://acme.com/signup?email=redacted&plan=pro'],
    ['param names are case-insensitive', 'https://acme.com/?Email=a&TOKEN=b&Api_Key=c', 'https://acme.com/?Email=redacted&TOKEN=redacted&Api_Key=redacted'],
    ['encoded param name', 'https://acme.com/?e%2Dmail=x', 'https://acme.com/?e%2Dmail=redacted'],
    ['email in another param value', 'https://acme.com/?ref=bob@example.com&x=1', 'https://acme.com/?ref=redacted&x=1'],
    ['encoded email in a value', 'https://acme.com/?next=%2Finvite%3Fu%3Dbob%40example.co.uk', 'https://acme.com/?next=%2Finvite%3Fu%3Dredacted'],
    ['email in a path segment', 'https://acme.com/users/bob@example.com/profile', 'https://acme.com/users/redacted/profile'],
    ['encoded email in a path segment', '/users/bob%40example.com', '/users/redacted'],
    ['plus-addressed email', '/u/bob+news@example.com', '/u/redacted'],
    ['email in the fragment', 'https://acme.com/#mailto:bob@example.com', 'https://acme.com/#mailto:redacted'],
    ['encoded plus in an email', '/?ref=bob%2Bnews%40example.com', '/?ref=redacted'],
    ['token params in the fragment (OAuth implicit)', 'https://acme.com/cb#access_token=abc&state=xyz', 'https://acme.com/cb#access_token=redacted&state=xyz'],
    ['credentials in the authority', 'https://user:pa55@acme.com/x?y=1', 'https://redacted@acme.com/x?y=1'],
    ['an email before a later ://', '/u/bob@example.com/https://@?x', '/u/redacted/https://redacted@?x'],
    ['an encoded email as the host', 'https://u:p@bob%40example.com/x', 'https://redacted@redacted/x'],
    ['bare search string', '?q=shoes&password=hunter2', '?q=shoes&password=redacted'],
    ['relative URL', '/reset?token=abc#top', '/reset?token=redacted#top'],
    ['valueless and empty pairs survive', '/x?flag&&code=1&', '/x?flag&&code=redacted&'],
    ['garbage stays garbage', '%%%?%zz=%%&email', '%%%?%zz=%%&email'],
    ['garbage with an email', 'not a url bob@example.com', 'not a url redacted'],
    ['@ without an email', 'https://twitter.com/@tracklane', 'https://twitter.com/@tracklane'],
    ['empty string', '', ''],
  ])('%s', (_name, input, expected) => {
    expect(scrubUrl(input, DEFAULTS)).toBe(expected);
  });

  it.each([
    ['tenant param is added', ['invite'], 'https://acme.com/?invite=abc&email=x', 'https://acme.com/?invite=redacted&email=redacted'],
    ['tenant param with other case', ['Member_ID'], '/x?member_id=9&page=2', '/x?member_id=redacted&page=2'],
  ])('%s', (_name, extra, input, expected) => {
    expect(scrubUrl(input, scrubParamSet([...DEFAULT_SCRUB_PARAMS, ...extra]))).toBe(expected);
  });

  it('returns the same string instance when nothing can match (fast path)', () => {
    const s = 'https://acme.com/docs/getting-started';
    expect(scrubUrl(s, DEFAULTS)).toBe(s);
  });
});

describe('redactEmails', () => {
  it.each([
    ['plain', 'write to bob@example.com today', 'write to redacted today'],
    ['encoded @', 'bob%40example.com', 'redacted'],
    ['encoded plus in the local part', 'bob%2Bnews%40example.com', 'redacted'],
    ['uppercase escapes', 'BOB%2BX%40EXAMPLE.COM', 'redacted'],
    ['no match starts inside an escape', '%2Fbob%40example.com', '%2Fredacted'],
    ['no match starts right after %x', '%3Dbob@x.io', '%3Dredacted'],
    ['%%2b: the escape cannot start a match', '%%2bbob@x.io', '%%2bredacted'],
    ['longest label chain that leaves a TLD', 'a@b.com.', 'redacted.'],
    ['TLD is a letter prefix of its segment', 'a@b.co1', 'redacted1'],
    ['TLD of at most 63 letters', `a@b.${'c'.repeat(70)}`, `redacted${'c'.repeat(7)}`],
    ['no TLD: no match', 'a@b.c', 'a@b.c'],
    ['empty label: no match', 'a@b..com', 'a@b..com'],
    ['no label: no match', 'a@com', 'a@com'],
    ['several', 'a@b.io,c@d.io', 'redacted,redacted'],
    ['a dot starts the next local part', 'a@b.io.c@d.io', 'redactedredacted'],
    ['ASCII only (no case folding of ſ or the Kelvin sign)', 'ſ@b.io \u212A@b.io', 'ſ@b.io \u212A@b.io'],
    ['a failed domain is scanned again as a local part', 'x@-.y@z.io', 'x@redacted'],
  ])('%s', (_name, input, expected) => {
    expect(redactEmails(input)).toBe(expected);
  });

  // The regex form of the scanner, as the oracle: same matches on short strings.
  const OLD_EMAIL_RE = /(?<!%[0-9a-f]?)(?:[a-z0-9._+!~$'*-]|%2b)+(?:@|%40)(?:[a-z0-9-]+\.)+[a-z]{2,63}/gi;
  const oldRedact = (s: string) => (s.indexOf('@') === -1 && s.indexOf('%40') === -1 ? s : s.replace(OLD_EMAIL_RE, 'redacted'));
  const piece = fc.constantFrom(
    ...['a', 'Z', '0', '9', '.', '-', '_', '+', '!', "'", '*', '@', '%', '%40', '%2b', '%2B', '%2F', '%4', '4', '2', 'b', 'f'],
    ...['/', '?', '&', '=', '#', ' ', ':', 'é', 'ſ', '\u212A', '\uD800', 'co', 'com', '.io', 'x@y.io', 'c'.repeat(64)],
  );
  const emailish = fc.array(piece, { maxLength: 24 }).map((xs) => xs.join(''));

  it('matches exactly what the old regex matched (property, 20,000 cases)', () => {
    fc.assert(
      fc.property(emailish, (s) => {
        expect(redactEmails(s)).toBe(oldRedact(s));
      }),
      { numRuns: 20_000, seed: 20260601 },
    );
  });

  // NOTE: a count, not a timing: a scanner that re-scans from each start (what the regex did)
  // needs ~n²/2 steps on these shapes.
  const steps = (s: string) => {
    const stats = { steps: 0 };
    redactEmailsCounted(s, stats);
    return stats.steps;
  };
  const bound = (n: number) => 4 * n + 16;
  const adversarial: [string, (n: number) => string][] = [
    ['local part then @', (n) => `${'a'.repeat(n - 1)}@`],
    ['local part then %40', (n) => `${'a'.repeat(n - 3)}%40`],
    ['encoded pluses then @', (n) => `${'%2b'.repeat(Math.floor((n - 1) / 3))}@`],
    ['@ then labels without a TLD', (n) => `@${'a.'.repeat(Math.floor((n - 1) / 2))}`],
    ['labels with digit TLDs', (n) => `x@${'a.1'.repeat(Math.floor((n - 2) / 3))}`],
    ['hyphen runs', (n) => `x@${'a-'.repeat(Math.floor((n - 2) / 2))}`],
    ['many short failed emails', (n) => 'a@a.'.repeat(Math.floor(n / 4))],
    ['many emails', (n) => 'a@b.io'.repeat(Math.floor(n / 6))],
    ['dots after @', (n) => `a@${'.'.repeat(n - 2)}`],
    ['alternating @', (n) => 'a@'.repeat(Math.floor(n / 2))],
    ['escapes and @', (n) => '%4%40a@'.repeat(Math.floor(n / 7))],
  ];
  it.each(adversarial)('takes ≤ 4n + 16 steps on %s (n = 1 KB, 8 KB, 64 KB)', (_name, make) => {
    for (const n of [1024, 8192, 65_536]) {
      const s = make(n);
      expect(steps(s)).toBeLessThanOrEqual(bound(s.length));
    }
  });

  it('takes ≤ 4n + 16 steps on any input (property)', () => {
    const long = fc.array(piece, { maxLength: 400 }).map((xs) => xs.join(''));
    fc.assert(
      fc.property(long, (s) => steps(s) <= bound(s.length)),
      { numRuns: 5_000, seed: 20260602 },
    );
  });
});

describe('decodeComponent', () => {
  it.each([
    ['plain', 'abc', 'abc'],
    ['ASCII escape', 'e%2Dmail', 'e-mail'],
    ['two-byte UTF-8', 'caf%C3%A9', 'café'],
    ['four-byte UTF-8', '%F0%9F%98%80', '😀'],
    ['bad escape', '%zz', null],
    ['truncated escape', 'a%2', null],
    ['lone continuation byte', '%80', null],
    ['overlong form', '%C0%AF', null],
    ['surrogate', '%ED%A0%80', null],
    ['past U+10FFFF', '%F4%90%80%80', null],
  ])('%s', (_name, input, expected) => {
    expect(decodeComponent(input)).toBe(expected);
  });

  it('agrees with decodeURIComponent, returning null where it throws (property)', () => {
    const piece = fc.constantFrom('%', 'a', 'F', '0', '8', 'C', '%C3', '%A9', '%E2', '%82', '%AC', '%F0', '%9F', '%80', '%ED', '%A0', '%F4', '%90', '%C0', '%41', '%zz', 'é', '\uD800');
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 12 }).map((xs) => xs.join('')), (s) => {
        let expected: string | null;
        try {
          expected = decodeURIComponent(s);
        } catch {
          expected = null;
        }
        expect(decodeComponent(s)).toBe(expected);
      }),
      { numRuns: 20_000, seed: 20260603 },
    );
  });
});
