import { describe, expect, it } from 'vitest';
import { cleanEvent, identifyEvent } from '../../test/support/clickhouse-fixtures.js';
import { EVENT_COLUMNS } from '../clickhouse/tables/events.js';
import { IDENTIFY_SNAPSHOT_COLUMNS } from '../clickhouse/tables/identify-snapshots.js';
import {
  clientTimestamp,
  toAccountPatch,
  toEventRow,
  toEventTuple,
  toSnapshotRow,
  toSnapshotTuple,
  toUserPatch,
  type UserPatch,
} from './event-rows.js';
import type { CleanEvent } from '../events/envelope.js';
import { inferAccount } from '../enrich/email-account.js';

describe('toEventRow / toEventTuple', () => {
  const cases: { name: string; event: CleanEvent }[] = [
    { name: 'track with everything', event: cleanEvent() },
    {
      name: 'click without enrichment',
      event: cleanEvent({
        type: 'click',
        geo: null,
        ua: null,
        ip_org: null,
        element: { tag: 'a', id: null, classes: ['nav'], label: 'Docs', href: '/docs' },
      }),
    },
    {
      name: 'identify with inferred account, anonymized',
      event: identifyEvent({
        user_id: 'v1:abc',
        identity_anonymized: true,
        key_version: 1,
        inferred_account: { account_id: 'acme.com', domain: 'acme.com', source: 'email_domain', confidence: 0.8 },
      }),
    },
    { name: 'explicit account only', event: cleanEvent({ account_id: 'acc-9' }) },
  ];

  it.each(cases)('tuple matches the row column by column: $name', ({ event }) => {
    const row = toEventRow(event);
    expect(toEventTuple(event)).toEqual(EVENT_COLUMNS.map((c) => row[c]));
    expect(Object.keys(row).sort()).toEqual([...EVENT_COLUMNS].sort());
  });

  it('maps names, flags and enrichment', () => {
    const row = toEventRow(cases[2]!.event);
    expect(row).toMatchObject({
      type: 'identify',
      user_id: 'v1:abc',
      identity_anonymized: 1,
      key_version: 1,
      account_id: 'acme.com',
      account_source: 'email_domain',
      account_domain: 'acme.com',
      geo_country: 'GB',
      geo_city: 'London',
      ua_browser: 'Firefox',
      ip_asn: 20712,
      path: '/pricing',
      timestamp_clamped: 0,
    });
    expect(toEventRow(cleanEvent({ name: 'Signed Up' })).event).toBe('Signed Up');
    expect(toEventRow(cases[3]!.event)).toMatchObject({ account_id: 'acc-9', account_source: 'explicit', account_domain: null });
    expect(toEventRow(cases[1]!.event)).toMatchObject({ geo_country: null, element_classes: ['nav'], element_href: '/docs' });
  });
});

describe('toSnapshotRow / toSnapshotTuple: the trait maps leave events', () => {
  const identify = identifyEvent({ user_id: 'u1', traits: { email: '"ada@acme.com"', plan: '"pro"' }, account_id: 'acc-1' });
  const group = cleanEvent({ type: 'group', user_id: 'u1', account_id: 'acc-1', traits: {}, account_traits: { name: '"Acme"' } });

  it.each([
    { name: 'identify', event: identify },
    { name: 'group', event: group },
  ])('$name: the snapshot holds the maps, the events row none', ({ event }) => {
    const row = toSnapshotRow(event);
    expect(row).toMatchObject({ tenant_id: event.tenant_id, event_id: event.event_id, type: event.type, user_id: 'u1', traits: event.traits, account_traits: event.account_traits });
    expect(toSnapshotTuple(event)).toEqual(IDENTIFY_SNAPSHOT_COLUMNS.map((c) => row?.[c]));
    expect(Object.keys(row ?? {}).sort()).toEqual([...IDENTIFY_SNAPSHOT_COLUMNS].sort());
    expect(toEventRow(event)).toMatchObject({ traits: {}, account_traits: {} });
    const tuple = toEventTuple(event);
    expect(tuple[EVENT_COLUMNS.indexOf('traits')]).toEqual({});
    expect(tuple[EVENT_COLUMNS.indexOf('account_traits')]).toEqual({});
  });

  it('the snapshot keeps the event\'s attribution and times', () => {
    const row = toSnapshotRow(identify);
    const ev = toEventRow(identify);
    expect(row).toMatchObject({ account_id: ev.account_id, anonymous_id: ev.anonymous_id, timestamp: ev.timestamp, client_ts: ev.client_ts, received_at: ev.received_at });
  });

  it('an event without traits has no snapshot', () => {
    expect(toSnapshotRow(cleanEvent({ traits: {}, account_traits: {} }))).toBeNull();
    expect(toSnapshotTuple(cleanEvent({ traits: {}, account_traits: {} }))).toBeNull();
  });
});

describe('clientTimestamp', () => {
  it.each([
    { name: 'undoes the skew correction', e: { occurred_at: 9_000, sent_at: 10_500, received_at: 11_000, timestamp_clamped: false }, want: 8_500 },
    { name: 'no sent_at: nothing to undo', e: { occurred_at: 9_000, sent_at: null, received_at: 11_000, timestamp_clamped: false }, want: 9_000 },
    { name: 'clamped: nothing to undo', e: { occurred_at: 11_000, sent_at: 10_500, received_at: 11_000, timestamp_clamped: true }, want: 11_000 },
  ])('$name', ({ e, want }) => {
    expect(clientTimestamp(e)).toBe(want);
  });

  it('is identical for a client retry with new sent_at/received_at', () => {
    const clientTs = 1_000_000;
    const first = { sent_at: 1_000_400, received_at: 1_002_000 };
    const retry = { sent_at: 1_030_400, received_at: 1_031_900 };
    const corrected = (d: typeof first): number => d.received_at - (d.sent_at - clientTs);
    const a = clientTimestamp({ ...first, occurred_at: corrected(first), timestamp_clamped: false });
    const b = clientTimestamp({ ...retry, occurred_at: corrected(retry), timestamp_clamped: false });
    expect(corrected(first)).not.toBe(corrected(retry));
    expect(a).toBe(clientTs);
    expect(b).toBe(clientTs);
  });
});

describe('toUserPatch', () => {
  const cases: { name: string; event: CleanEvent; want: Partial<UserPatch> | null }[] = [
    { name: 'track → none', event: cleanEvent({ user_id: 'u1' }), want: null },
    { name: 'identify without user id → none', event: cleanEvent({ type: 'identify', user_id: null, traits: { email: '"a@b.c"' } }), want: null },
    {
      name: 'camelCase reserved traits',
      event: identifyEvent({ user_id: 'u1', traits: { email: '"ada@acme.com"', firstName: '"Ada"', lastName: '"Lovelace"', plan: '"pro"' } }),
      want: { user_id: 'u1', columns: { email: 'ada@acme.com', first_name: 'Ada', last_name: 'Lovelace' }, traits: { plan: '"pro"' } },
    },
    {
      name: 'snake_case reserved traits',
      event: identifyEvent({ user_id: 'u1', traits: { first_name: '"Ada"', last_name: '"L"' } }),
      want: { columns: { first_name: 'Ada', last_name: 'L' }, traits: {} },
    },
    {
      name: 'only email: other columns absent (not null)',
      event: identifyEvent({ user_id: 'u1', traits: { email: '"new@acme.com"' } }),
      want: { columns: { email: 'new@acme.com' } },
    },
    {
      name: 'explicit null clears; company object → name',
      event: identifyEvent({ user_id: 'u1', traits: { firstName: 'null', company: '{"name":"Acme","id":"7"}', phone: '4411' } }),
      want: { columns: { first_name: null, company: 'Acme', phone: '4411' } },
    },
    {
      name: 'account: inferred wins over explicit',
      event: identifyEvent({
        user_id: 'u1',
        account_id: 'acc-explicit',
        inferred_account: { account_id: 'acc-inferred', domain: null, source: 'explicit', confidence: 1 },
      }),
      want: { account_id: 'acc-inferred' },
    },
    { name: 'account: explicit when no inference', event: identifyEvent({ user_id: 'u1', account_id: 'acc-1' }), want: { account_id: 'acc-1' } },
    {
      name: 'version = received_at, anonymized flag',
      event: identifyEvent({ user_id: 'v1:x', received_at: 1234, identity_anonymized: true }),
      want: { version: 1234, identity_anonymized: true, columns: {} },
    },
  ];
  it.each(cases)('$name', ({ event, want }) => {
    const got = toUserPatch(event);
    if (want === null) expect(got).toBeNull();
    else {
      expect(got).toMatchObject(want);
      if (want.columns) expect(got?.columns).toEqual(want.columns);
    }
  });
});

describe('toAccountPatch', () => {
  it.each([
    { name: 'no account → none', event: cleanEvent(), want: null },
    {
      name: 'group: traits and account_traits, name to column',
      event: cleanEvent({ type: 'group', account_id: 'acc-1', traits: { name: '"Acme"', plan: '"pro"' }, account_traits: { employees: '50' } }),
      want: { account_id: 'acc-1', source: 'explicit', name: 'Acme', traits: { plan: '"pro"', employees: '50' }, domain: null },
    },
    {
      name: 'email-domain inference',
      event: identifyEvent({ user_id: 'u', inferred_account: { account_id: 'acme.com', domain: 'acme.com', source: 'email_domain', confidence: 0.8 } }),
      want: { account_id: 'acme.com', source: 'email_domain', domain: 'acme.com', traits: {} },
    },
    {
      name: 'explicit account on a track',
      event: cleanEvent({ account_id: 'acc-2' }),
      want: { account_id: 'acc-2', source: 'explicit', domain: null },
    },
  ])('$name', ({ event, want }) => {
    const got = toAccountPatch(event);
    if (want === null) expect(got).toBeNull();
    else expect(got).toMatchObject(want);
  });

  it('leaves name undefined when not carried', () => {
    expect(toAccountPatch(cleanEvent({ account_id: 'a' }))).not.toHaveProperty('name');
  });
});

describe('toUserPatch: the account link and its source', () => {
  const acme = { account_id: 'acme.com', domain: 'acme.com', source: 'email_domain' as const, confidence: 0.8 };
  it.each([
    {
      name: 'group call: the explicit account alone (its traits are the account’s)',
      event: cleanEvent({ type: 'group', user_id: 'u1', account_id: 'acct-42', traits: { name: '"Acme"' } }),
      want: { account_id: 'acct-42', account_source: 'explicit', columns: {}, traits: {} },
    },
    { name: 'group call without a user → none', event: cleanEvent({ type: 'group', account_id: 'acct-42' }), want: null },
    { name: 'group call without an account → none', event: cleanEvent({ type: 'group', user_id: 'u1' }), want: null },
    {
      name: 'identify with an account and an email, as the enricher attributes it: explicit',
      event: identifyEvent({
        user_id: 'u1',
        account_id: 'acct-42',
        traits: { email: '"bob@acme.com"' },
        inferred_account: inferAccount({ explicitAccountId: 'acct-42', email: 'bob@acme.com' }),
      }),
      want: { account_id: 'acct-42', account_source: 'explicit' },
    },
    {
      name: 'identify with an email only: email_domain',
      event: identifyEvent({ user_id: 'u1', traits: { email: '"bob@acme.com"' }, inferred_account: acme }),
      want: { account_id: 'acme.com', account_source: 'email_domain' },
    },
    { name: 'identify without an account: no link', event: identifyEvent({ user_id: 'u1' }), want: { account_id: null, account_source: null } },
    { name: 'track with an account → none', event: cleanEvent({ user_id: 'u1', account_id: 'acct-42' }), want: null },
  ])('$name', ({ event, want }) => {
    const got = toUserPatch(event);
    if (want === null) expect(got).toBeNull();
    else {
      expect(got).toMatchObject(want);
      if ('columns' in want) expect(got?.columns).toEqual(want.columns);
    }
  });

  it('events keep their own attribution: the enricher’s account, the explicit one when named', () => {
    const both = identifyEvent({ user_id: 'u1', account_id: 'acct-42', inferred_account: inferAccount({ explicitAccountId: 'acct-42', email: 'bob@acme.com' }) });
    expect(toEventRow(both)).toMatchObject({ account_id: 'acct-42', account_source: 'explicit' });
  });
});
