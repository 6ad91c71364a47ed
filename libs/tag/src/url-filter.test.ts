import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_SCRUB_PARAMS, REDACTED as SERVER_REDACTED } from '../../enrich/url-scrub.js';
import { REDACTED, SENSITIVE_PARAMS } from './scrub-params.js';
import { createUrlFilter, redactEmails, redactEmailsCounted } from './url-filter.js';

describe('createUrlFilter', () => {
  const filter = createUrlFilter({ drop: ['writeKey', 'utm_content'], mask: ['Order_Ref'] });

  it.each([
    ['harmless URL kept byte for byte', 'https://acme.com/pricing?plan=pro&x=%20y#top', 'https://acme.com/pricing?plan=pro&x=%20y#top'],
    ['dropped params removed with their separator', 'https://acme.com/?writeKey=tl_1&plan=pro&utm_content=a', 'https://acme.com/?plan=pro'],
    ['all params dropped: no dangling ?', 'https://acme.com/p?WRITEKEY=tl_1', 'https://acme.com/p'],
    ['masked params (case-insensitive, also named ones)', 'https://acme.com/?order_ref=123&Email=a', 'https://acme.com/?order_ref=redacted&Email=redacted'],
    ['server sensitive params masked', '/reset?token=abc&password=hunter2&code=1', '/reset?token=redacted&password=redacted&code=redacted'],
    ['encoded param name', '/?e%2Dmail=bob', '/?e%2Dmail=redacted'],
    ['email in another value', '/?ref=bob@example.com&x=1', '/?ref=redacted&x=1'],
    ['encoded email in a path', '/users/bob%40example.com/edit', '/users/redacted/edit'],
    ['email in a path', 'https://acme.com/u/bob+news@example.co.uk', 'https://acme.com/u/redacted'],
    ['credentials in the authority', 'https://user:pw@acme.com/x?y=1', 'https://redacted@acme.com/x?y=1'],
    ['OAuth token in the fragment', 'https://acme.com/cb#access_token=abc&state=s', 'https://acme.com/cb#access_token=redacted&state=s'],
    ['dropped param in the fragment', 'https://acme.com/#writeKey=k', 'https://acme.com/'],
    ['mailto link', 'mailto:alice@example.com?subject=hi', 'mailto:redacted'],
    ['tel link', 'TEL:+441234567890', 'tel:redacted'],
    ['javascript link', 'javascript:void(0)', 'javascript:redacted'],
    ['bare search', '?q=shoes&writeKey=x&pwd=1', '?q=shoes&pwd=redacted'],
    ['@ handle is not an email', 'https://x.com/@tracklane', 'https://x.com/@tracklane'],
    ['empty', '', ''],
  ])('%s', (_name, input, expected) => {
    expect(filter(input)).toBe(expected);
  });

  it('masks the defaults without options', () => {
    expect(createUrlFilter()('/?session_id=1&a=2')).toBe('/?session_id=redacted&a=2');
  });
});

describe('redactEmails', () => {
  it('redacts plain and encoded emails, and the escapes around them rather than too little', () => {
    expect(redactEmails('write to bob@example.com or ann%40example.org')).toBe('write to redacted or redacted');
    expect(redactEmails('%2Fbob%40example.com')).toBe('redacted');
  });

  it.each([
    ['plain', 'write to bob@example.com today', 'write to redacted today'],
    ['no @: the same string', 'a.b.c', 'a.b.c'],
    ['uppercase', 'BOB%2BX%40EXAMPLE.COM', 'redacted'],
    ['a start inside a broken escape', '%4%40a.co', '%redacted'],
    ['the first unit is never the separator', '%40%40a.co', 'redacted'],
    ['%%40: the second % starts', '%%40a%40b.io', '%redacted'],
    ['the last %40 whose domain matches wins', 'a%40b.co%40c', 'redacted%40c'],
    ['an @ ending the run beats every %40', 'a%40b.co@c.io', 'redacted'],
    ['a failed @ falls back to a %40', 'a%40b.co@c', 'redacted@c'],
    ['a %40 right after a match starts the next run: no local part before it', 'a@b.io%40c.io', 'redacted%40c.io'],
    ['longest label chain that leaves a TLD', 'a@b.com.', 'redacted.'],
    ['TLD is a letter prefix of its segment', 'a@b.co1', 'redacted1'],
    ['TLD of at most 63 letters', `a@b.${'c'.repeat(70)}`, `redacted${'c'.repeat(7)}`],
    ['no TLD: no match', 'a@b.c', 'a@b.c'],
    ['empty label: no match', 'a@b..com', 'a@b..com'],
    ['no label: no match', 'a@com', 'a@com'],
    ['a dot after the TLD starts the next local part', 'a@b.io.c@d.io', 'redactedredacted'],
    ['several', 'a@b.io,c@d.io&e%40f.io', 'redacted,redacted&redacted'],
    ['a failed domain is scanned again as a local part', 'x@-.y@z.io', 'x@redacted'],
    ['ASCII only (no case folding of ſ or the Kelvin sign)', 'ſ@b.io \u212A@b.io', 'ſ@b.io \u212A@b.io'],
  ])('%s', (_name, input, expected) => {
    expect(redactEmails(input)).toBe(expected);
  });

  // The regex form of the scanner, as the oracle: the same output on every input.
  const OLD_EMAIL_RE = /(?:[a-z0-9._+!~$'*-]|%[0-9a-f]{2})+(?:@|%40)(?:[a-z0-9-]+\.)+[a-z]{2,63}/gi;
  const oldRedact = (s: string) => (s.indexOf('@') === -1 && s.indexOf('%40') === -1 ? s : s.replace(OLD_EMAIL_RE, REDACTED));
  const piece = fc.constantFrom(
    ...['a', 'Z', 'b', 'F', 'g', '0', '4', '2', '9', '.', '-', '_', '+', '!', '~', '$', "'", '*', '@', '%'],
    ...['&', '=', '/', ':', '?', '#', ' ', '%40', '%4', '%2F', '%2b', '%%40', 'é', 'ſ', '\u212A', '\uD800'],
    ...['co', 'com', '.io', '@a.', 'x@y.io', 'x%40y.io', 'c'.repeat(64)],
  );
  const emailish = fc.array(piece, { maxLength: 24 }).map((xs) => xs.join(''));

  it('matches exactly what the old regex matched (property, 20,000 cases)', () => {
    fc.assert(
      fc.property(emailish, (s) => {
        expect(redactEmails(s)).toBe(oldRedact(s));
      }),
      { numRuns: 20_000, seed: 20260611 },
    );
  });

  // NOTE: a count, not a timing: the regex (or a scanner that re-scans from each start) needs
  // ~n²/2 steps on these shapes.
  const steps = (s: string) => {
    const stats = { steps: 0 };
    redactEmailsCounted(s, stats);
    return stats.steps;
  };
  const bound = (n: number) => 3 * n + 16;
  const fill = (unit: string, n: number, tail = '') => unit.repeat(Math.floor((n - tail.length) / unit.length)) + tail;
  const adversarial: [string, (n: number) => string][] = [
    ['local part then @', (n) => fill('a', n, '@')],
    ['local part then %40', (n) => fill('a', n, '%40')],
    ['escapes then @', (n) => fill('%2b', n, '@')],
    ['%40 runs', (n) => fill('%40', n)],
    ['%40 with failing domains', (n) => fill('a%40b.', n)],
    ['%40 with matching domains in one run', (n) => fill('a%40b.co', n)],
    ['broken escapes and separators', (n) => fill('%4%40a@', n)],
    ['@ then labels without a TLD', (n) => `@${fill('a.', n - 1)}`],
    ['labels with digit TLDs', (n) => `x@${fill('a.1', n - 2)}`],
    ['hyphen runs', (n) => `x@${fill('a-', n - 2)}`],
    ['a long TLD', (n) => `x@b.${fill('c', n - 4)}`],
    ['many short failed emails', (n) => fill('a@a.', n)],
    ['many emails', (n) => fill('a@b.io', n)],
    ['dots after @', (n) => `a@${fill('.', n - 2)}`],
    ['alternating @', (n) => fill('a@', n)],
    ['query pairs', (n) => fill('a=b%40c&', n)],
  ];
  it.each(adversarial)('takes ≤ 3n + 16 steps on %s (n = 1 KB, 8 KB, 64 KB)', (_name, make) => {
    for (const n of [1024, 8192, 65_536]) {
      const s = make(n);
      expect(s.length).toBeLessThanOrEqual(n);
      expect(s.length).toBeGreaterThan(n - 8);
      expect(steps(s)).toBeLessThanOrEqual(bound(s.length));
    }
  });

  it('takes ≤ 3n + 16 steps on any input (property)', () => {
    const long = fc.array(piece, { maxLength: 400 }).map((xs) => xs.join(''));
    fc.assert(
      fc.property(long, (s) => steps(s) <= bound(s.length)),
      { numRuns: 5_000, seed: 20260612 },
    );
  });
});

describe('SENSITIVE_PARAMS', () => {
  it('mirrors the collector scrub list (libs/enrich/url-scrub.ts)', () => {
    expect([...SENSITIVE_PARAMS]).toEqual([...DEFAULT_SCRUB_PARAMS]);
    expect(REDACTED).toBe(SERVER_REDACTED);
  });
});
