import { describe, expect, it } from 'vitest';
import { EMAIL_DOMAIN_CONFIDENCE, emailHost, inferAccount } from './email-account.js';

describe('inferAccount', () => {
  it.each([
    ['alice@eng.acme.co.uk', 'acme.co.uk'],
    ['carol@acme.com', 'acme.com'],
    ['  Dave@Sales.ACME.com  ', 'acme.com'],
    ['erin@acme.com.', 'acme.com'],
    ['frank@startup.io', 'startup.io'],
  ])('%j → account %s from the email domain', (email, domain) => {
    expect(inferAccount({ explicitAccountId: null, email })).toEqual({
      account_id: domain,
      domain,
      source: 'email_domain',
      confidence: EMAIL_DOMAIN_CONFIDENCE,
    });
  });

  it.each([
    ['free-mail', 'bob@gmail.com'],
    ['free-mail (other)', 'bob@yahoo.co.uk'],
    ['free-mail subdomain host', 'bob@mail.yahoo.co.jp'],
    ['disposable', 'x@mailinator.com'],
    ['IP literal', 'a@[1.2.3.4]'],
    ['bare IP host', 'a@1.2.3.4'],
    ['no public suffix', 'a@acme.internal'],
    ['single label', 'a@localhost'],
    ['no @', 'not-an-email'],
    ['two @', 'a@b@c.com'],
    ['empty local part', '@acme.com'],
    ['space inside', 'a b@acme.com'],
    ['empty', ''],
    ['null', null],
  ])('no inference: %s (%j)', (_name, email) => {
    expect(inferAccount({ explicitAccountId: null, email })).toBeNull();
  });

  it.each([
    ['with a work email', 'alice@eng.acme.co.uk', 'acme.co.uk'],
    ['with a free-mail email', 'bob@gmail.com', null],
    ['without email', null, null],
  ])('explicit account id wins %s', (_name, email, domain) => {
    expect(inferAccount({ explicitAccountId: 'acct_42', email })).toEqual({
      account_id: 'acct_42',
      domain,
      source: 'explicit',
      confidence: 1,
    });
  });

  it('ignores a blank explicit id', () => {
    expect(inferAccount({ explicitAccountId: '  ', email: 'carol@acme.com' })?.source).toBe('email_domain');
  });
});

describe('emailHost', () => {
  it.each([
    ['A@B.COM', 'b.com'],
    ['a@[::1]', null],
    ['a@', null],
  ])('%j → %j', (email, host) => {
    expect(emailHost(email)).toBe(host);
  });
});
