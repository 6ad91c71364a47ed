import { describe, expect, it } from 'vitest';
import { DEFAULT_SCRUB_PARAMS, scrubParamSet, scrubUrl } from './url-scrub.js';

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
