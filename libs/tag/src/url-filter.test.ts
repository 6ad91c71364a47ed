import { describe, expect, it } from 'vitest';
import { DEFAULT_SCRUB_PARAMS, REDACTED as SERVER_REDACTED } from '../../enrich/url-scrub.js';
import { REDACTED, SENSITIVE_PARAMS } from './scrub-params.js';
import { createUrlFilter, redactEmails } from './url-filter.js';

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
});

describe('SENSITIVE_PARAMS', () => {
  it('mirrors the collector scrub list (libs/enrich/url-scrub.ts)', () => {
    expect([...SENSITIVE_PARAMS]).toEqual([...DEFAULT_SCRUB_PARAMS]);
    expect(REDACTED).toBe(SERVER_REDACTED);
  });
});
