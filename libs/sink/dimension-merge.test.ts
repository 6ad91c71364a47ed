import { describe, expect, it } from 'vitest';
import { accountKey, groupPatches, mergeAccount, mergeUser, needsLinkSource, userKey } from './dimension-merge.js';
import type { AccountRow } from '../clickhouse/tables/accounts.js';
import type { UserRow } from '../clickhouse/tables/users.js';
import type { AccountPatch, UserPatch } from './event-rows.js';

const NOW = 9_999_999;

function patch(version: number, columns: UserPatch['columns'], extra: Partial<UserPatch> = {}): UserPatch {
  return { tenant_id: 't', user_id: 'u', columns, traits: {}, account_id: null, account_source: null, identity_anonymized: false, version, ...extra };
}

function stored(extra: Partial<UserRow> = {}): UserRow {
  return {
    tenant_id: 't',
    user_id: 'u',
    email: 'old@acme.com',
    first_name: 'Ada',
    last_name: 'Lovelace',
    name: null,
    phone: null,
    title: null,
    company: null,
    account_id: 'acme.com',
    traits: { plan: '"free"' },
    first_seen: 100,
    last_seen: 200,
    identity_anonymized: 0,
    version: 200,
    is_deleted: 0,
    updated_at: 200,
    ...extra,
  };
}

describe('mergeUser', () => {
  it('first identify creates a row with only what was sent', () => {
    const row = mergeUser(null, [patch(10, { email: 'a@b.c' }, { traits: { plan: '"pro"' } })], NOW);
    expect(row).toMatchObject({ email: 'a@b.c', first_name: null, traits: { plan: '"pro"' }, first_seen: 10, last_seen: 10, version: 10, updated_at: NOW });
  });

  it('an identify with only email keeps the stored first/last name', () => {
    const row = mergeUser(stored(), [patch(300, { email: 'new@acme.com' })], NOW);
    expect(row).toMatchObject({ email: 'new@acme.com', first_name: 'Ada', last_name: 'Lovelace', traits: { plan: '"free"' }, version: 300, last_seen: 300 });
  });

  it('an explicit null clears a column', () => {
    expect(mergeUser(stored(), [patch(300, { first_name: null })], NOW)).toMatchObject({ first_name: null, last_name: 'Lovelace' });
  });

  it('patches apply in version order; equal versions keep arrival order', () => {
    const ps = [patch(400, { email: 'late@x' }), patch(300, { email: 'early@x', first_name: 'B' }), patch(400, { first_name: 'C' })];
    const grouped = groupPatches(ps, userKey).get(userKey({ tenant_id: 't', user_id: 'u' }))!;
    expect(grouped.map((p) => p.version)).toEqual([300, 400, 400]);
    expect(mergeUser(stored(), grouped, NOW)).toMatchObject({ email: 'late@x', first_name: 'C', version: 400 });
  });

  it('an event older than the stored row (e.g. a compactor overwrite) changes no attribute', () => {
    const overwritten = stored({ email: null, first_name: null, version: 5_000 });
    expect(mergeUser(overwritten, [patch(150, { email: 'old@acme.com', first_name: 'Ada' })], NOW)).toBeNull();
    // only the activity window moves; the cleared PII stays cleared
    expect(mergeUser(overwritten, [patch(300, { email: 'old@acme.com', first_name: 'Ada' })], NOW)).toMatchObject({
      email: null,
      first_name: null,
      last_seen: 300,
      version: 5_000,
    });
  });

  it('an older event still widens first_seen / last_seen', () => {
    const row = mergeUser(stored({ version: 5_000 }), [patch(50, { email: 'x@y' })], NOW);
    expect(row).toMatchObject({ first_seen: 50, email: 'old@acme.com', version: 5_000 });
  });

  it('redelivering the same identify writes nothing', () => {
    const p = patch(300, { email: 'new@acme.com' });
    const after = mergeUser(stored(), [p], NOW)!;
    expect(mergeUser(after, [p], NOW + 1)).toBeNull();
  });

  it('a tombstone is only replaced by newer events, as a fresh row', () => {
    const tomb = stored({ is_deleted: 1, version: 1_000 });
    expect(mergeUser(tomb, [patch(900, { email: 'a@b' })], NOW)).toBeNull();
    expect(mergeUser(tomb, [patch(1_100, { email: 'a@b' })], NOW)).toMatchObject({
      is_deleted: 0,
      email: 'a@b',
      first_name: null,
      traits: {},
      first_seen: 1_100,
    });
  });

  it('account and anonymization flag follow the newest identify', () => {
    const row = mergeUser(stored(), [patch(300, {}, { account_id: 'other.com', identity_anonymized: true })], NOW);
    expect(row).toMatchObject({ account_id: 'other.com', identity_anonymized: 1 });
    expect(mergeUser(stored(), [patch(300, {}, { account_id: null })], NOW)).toMatchObject({ account_id: 'acme.com' });
  });
});

describe('mergeAccount', () => {
  const acc = (extra: Partial<AccountRow> = {}): AccountRow => ({
    tenant_id: 't',
    account_id: 'acme.com',
    domain: 'acme.com',
    source: 'explicit',
    name: 'Acme',
    traits: { plan: '"pro"' },
    version: 100,
    is_deleted: 0,
    updated_at: 100,
    ...extra,
  });
  const ap = (version: number, extra: Partial<AccountPatch> = {}): AccountPatch => ({
    tenant_id: 't',
    account_id: 'acme.com',
    domain: 'acme.com',
    source: 'email_domain',
    traits: {},
    version,
    ...extra,
  });

  it.each([
    { name: 'new from email domain', stored: null, patches: [ap(10)], want: { source: 'email_domain', domain: 'acme.com', name: null } },
    { name: 'explicit wins over a later email_domain', stored: acc(), patches: [ap(200, { domain: 'acme.com' })], want: null },
    { name: 'explicit upgrades email_domain', stored: acc({ source: 'email_domain', name: null }), patches: [ap(50, { source: 'explicit' })], want: { source: 'explicit', version: 100 } },
    { name: 'inference does not blank the name', stored: acc(), patches: [ap(200, { domain: 'acme.io' })], want: { name: 'Acme', domain: 'acme.io', version: 200 } },
    { name: 'group sets name and traits', stored: acc(), patches: [ap(200, { source: 'explicit', name: 'Acme Ltd', traits: { seats: '9' } })], want: { name: 'Acme Ltd', traits: { plan: '"pro"', seats: '9' } } },
    { name: 'older group call does not override', stored: acc(), patches: [ap(50, { source: 'explicit', name: 'Old' })], want: null },
    { name: 'older event fills a missing domain', stored: acc({ domain: null }), patches: [ap(50)], want: { domain: 'acme.com', version: 100 } },
  ])('$name', ({ stored: s, patches, want }) => {
    const got = mergeAccount(s, patches, NOW);
    if (want === null) expect(got).toBeNull();
    else expect(got).toMatchObject(want);
  });

  it('keys tenant and id apart', () => {
    expect(accountKey({ tenant_id: 'a', account_id: 'b:c' })).not.toBe(accountKey({ tenant_id: 'a:b', account_id: 'c' }));
  });
});

describe('mergeUser: the account link (an explicit account wins, in any order)', () => {
  const explicit = (version: number, account_id = 'acct-42'): UserPatch => patch(version, {}, { account_id, account_source: 'explicit' });
  const inferred = (version: number, account_id = 'acme.com'): UserPatch => patch(version, {}, { account_id, account_source: 'email_domain' });
  const linked = (account_id: string | null, extra: Partial<UserRow> = {}): UserRow => stored({ account_id, version: 200, ...extra });

  it.each([
    // one batch: the patches of one flush, in arrival order (mergeUser sees them sorted by version)
    { name: 'explicit then inferred', stored: null, explicitLink: false, patches: [explicit(10), inferred(20)], want: 'acct-42' },
    { name: 'inferred then explicit', stored: null, explicitLink: false, patches: [inferred(10), explicit(20)], want: 'acct-42' },
    { name: 'same version, explicit first', stored: null, explicitLink: false, patches: [explicit(10), inferred(10)], want: 'acct-42' },
    { name: 'same version, inferred first', stored: null, explicitLink: false, patches: [inferred(10), explicit(10)], want: 'acct-42' },
    { name: 'explicit received after, arriving first', stored: null, explicitLink: false, patches: [explicit(20), inferred(10)], want: 'acct-42' },
    { name: 'inferred only: fills a new user', stored: null, explicitLink: false, patches: [inferred(10)], want: 'acme.com' },
    // a later batch: the stored row, and whether its link's account row is explicit
    { name: 'stored explicit link, newer inferred', stored: linked('acct-42'), explicitLink: true, patches: [inferred(300)], want: 'acct-42' },
    { name: 'stored inferred link, newer explicit', stored: linked('acme.com'), explicitLink: false, patches: [explicit(300)], want: 'acct-42' },
    { name: 'stored inferred link, older explicit (flushed late)', stored: linked('acme.com'), explicitLink: false, patches: [explicit(100)], want: 'acct-42' },
    { name: 'stored explicit link, older inferred (flushed late)', stored: linked('acct-42'), explicitLink: true, patches: [inferred(100)], want: 'acct-42' },
    { name: 'stored no link: inferred fills it', stored: linked(null), explicitLink: false, patches: [inferred(300)], want: 'acme.com' },
    { name: 'stored inferred link: a newer inferred moves it', stored: linked('acme.com'), explicitLink: false, patches: [inferred(300, 'globex.org')], want: 'globex.org' },
    { name: 'stored inferred link: an older inferred does not', stored: linked('acme.com'), explicitLink: false, patches: [inferred(100, 'globex.org')], want: 'acme.com' },
    { name: 'stored explicit link: a newer explicit replaces it', stored: linked('acct-42'), explicitLink: true, patches: [explicit(300, 'acct-7')], want: 'acct-7' },
    { name: 'stored explicit link: an older explicit does not', stored: linked('acct-42'), explicitLink: true, patches: [explicit(100, 'acct-7')], want: 'acct-42' },
    { name: 'stored explicit link, then explicit and inferred in one batch', stored: linked('acct-42'), explicitLink: true, patches: [inferred(300), explicit(300, 'acct-7'), inferred(400)], want: 'acct-7' },
    { name: 'a tombstone forgets its explicit link', stored: linked('acct-42', { is_deleted: 1 }), explicitLink: true, patches: [inferred(300)], want: 'acme.com' },
  ])('$name → $want', ({ stored: s, explicitLink, patches, want }) => {
    const sorted = groupPatches(patches, userKey).get(userKey({ tenant_id: 't', user_id: 'u' })) ?? [];
    const row = mergeUser(s, sorted, NOW, { storedLinkExplicit: explicitLink });
    expect(row?.account_id ?? s?.account_id).toBe(want);
  });

  it('an older explicit link changes no other attribute (a compactor overwrite stays)', () => {
    const overwritten = stored({ account_id: 'acme.com', email: null, version: 5_000 });
    const row = mergeUser(overwritten, [patch(300, { email: 'old@acme.com' }, { account_id: 'acct-42', account_source: 'explicit' })], NOW);
    expect(row).toMatchObject({ account_id: 'acct-42', email: null, version: 5_000 });
  });

  it.each([
    { name: 'an inferred patch that would move the link', stored: stored(), patches: [patch(300, {}, { account_id: 'globex.org', account_source: 'email_domain' })], want: true },
    { name: 'the same account', stored: stored(), patches: [patch(300, {}, { account_id: 'acme.com', account_source: 'email_domain' })], want: false },
    { name: 'an explicit patch', stored: stored(), patches: [patch(300, {}, { account_id: 'acct-42', account_source: 'explicit' })], want: false },
    { name: 'no link stored', stored: stored({ account_id: null }), patches: [patch(300, {}, { account_id: 'globex.org', account_source: 'email_domain' })], want: false },
    { name: 'a tombstone', stored: stored({ is_deleted: 1 }), patches: [patch(300, {}, { account_id: 'globex.org', account_source: 'email_domain' })], want: false },
  ])('needsLinkSource: $name → $want', ({ stored: s, patches, want }) => {
    expect(needsLinkSource(s, patches)).toBe(want);
  });
});
