import { describe, expect, it } from 'vitest';
import { parseAccountRow, parseUserRow, strArray, strMap } from './row-parsers.js';

const user = {
  tenant_id: 't1',
  user_id: 'u1',
  email: 'a@example.com',
  first_name: null,
  last_name: 'L',
  name: null,
  phone: null,
  title: null,
  company: null,
  account_id: 'example.com',
  traits: { plan: '"pro"' },
  identity_anonymized: 0,
  is_deleted: 1,
};

describe('parseUserRow', () => {
  // chDB returns 64-bit integers as numbers, the HTTP server as strings
  it.each([
    ['numbers (chDB)', { first_seen: 1000, last_seen: 2000, version: 3000, updated_at: 4000 }],
    ['strings (HTTP)', { first_seen: '1000', last_seen: '2000', version: '3000', updated_at: '4000' }],
  ])('reads times and versions sent as %s', (_, times) => {
    expect(parseUserRow({ ...user, ...times })).toEqual({ ...user, first_seen: 1000, last_seen: 2000, version: 3000, updated_at: 4000 });
  });

  it.each([
    ['a missing tenant', { tenant_id: undefined }],
    ['a non-numeric version', { version: 'x' }],
    ['traits that are not a map', { traits: ['a'] }],
  ])('rejects %s', (_, bad) => {
    expect(() => parseUserRow({ ...user, first_seen: 1, last_seen: 1, version: 1, updated_at: 1, ...bad })).toThrow();
  });
});

describe('parseAccountRow', () => {
  const account = { tenant_id: 't1', account_id: 'a1', domain: 'example.com', source: 'email_domain', name: null, traits: {}, version: '5', is_deleted: 0, updated_at: 6 };
  it('reads a row', () => {
    expect(parseAccountRow(account)).toEqual({ ...account, version: 5 });
  });
  it('rejects an unknown source', () => {
    expect(() => parseAccountRow({ ...account, source: 'guess' })).toThrow();
  });
});

describe('field parsers', () => {
  it.each([
    [strArray, ['a', 'b'], ['a', 'b']],
    [strMap, { k: 'v' }, { k: 'v' }],
  ] as const)('%o keeps strings', (parse, input, out) => {
    expect(parse(input)).toEqual(out);
  });
  it.each([[strArray, 'a'], [strMap, null], [strMap, [1]]] as const)('%o rejects %o', (parse, input) => {
    expect(() => parse(input)).toThrow();
  });
});
