import { describe, expect, it } from 'vitest';
import { parseAccountRow } from './accounts.js';
import { parseDeadLetterRow } from './dead-letters.js';
import { EVENT_COLUMNS, EVENT_SELECT, parseEventRow } from './events.js';
import { parseOverwriteRequestRow, parseReceipt } from './overwrite-requests.js';
import { parseOverwriteValueGroup } from './overwrite-values.js';
import { flag, ms, numberMap, selectList } from './row-values.js';
import { parseEarliestSuppression, parseSuppressionRow } from './suppressions.js';
import { USER_SELECT, parseUserRow } from './users.js';

describe('column values', () => {
  it.each([
    { name: 'ms as a number (chDB)', x: 1_780_000_000_123, want: 1_780_000_000_123 },
    { name: 'ms as a string (HTTP server, 64-bit)', x: '1780000000123', want: 1_780_000_000_123 },
    { name: 'DateTime64 text, UTC', x: '2026-03-03 10:00:00.123', want: Date.UTC(2026, 2, 3, 10, 0, 0, 123) },
    { name: 'DateTime64 text without fraction', x: '2026-03-03 10:00:00', want: Date.UTC(2026, 2, 3, 10, 0, 0) },
  ])('$name', ({ x, want }) => {
    expect(ms(x)).toBe(want);
  });

  it('a Map(String, UInt64) reads as numbers, 64-bit strings too', () => {
    expect(numberMap({ events: 3, users: '1' })).toEqual({ events: 3, users: 1 });
    expect(numberMap(null)).toEqual({});
  });

  it('refuses a time that is neither', () => {
    expect(() => ms('soon')).toThrow(TypeError);
  });

  it.each([
    [0, 0],
    [1, 1],
    ['0', 0],
    ['1', 1],
    [true, 1],
    [false, 0],
  ] as const)('flag(%j) = %i', (x, want) => {
    expect(flag(x)).toBe(want);
  });

  it('selects DateTime64 columns as ms under their own names', () => {
    expect(selectList(['a', 'at'], new Set(['at']))).toBe('a, toUnixTimestamp64Milli(at) AS at');
    expect(USER_SELECT).toContain('toUnixTimestamp64Milli(first_seen) AS first_seen');
    expect(EVENT_SELECT.split(', ')).toHaveLength(EVENT_COLUMNS.length);
  });
});

describe('parse', () => {
  const userJson = {
    tenant_id: 't',
    user_id: 'u',
    email: 'a@acme.com',
    first_name: null,
    last_name: 'L',
    name: null,
    phone: null,
    title: null,
    company: null,
    account_id: 'acme.com',
    traits: { plan: '"pro"' },
    first_seen: 100,
    last_seen: 200,
    identity_anonymized: 1,
    version: 200,
    is_deleted: 0,
    updated_at: 300,
  };

  it('a users row reads the same from chDB (numbers) and the HTTP server (64-bit as strings)', () => {
    const fromChdb = parseUserRow(userJson);
    const fromHttp = parseUserRow({ ...userJson, first_seen: '100', last_seen: '200', version: '200', updated_at: '300' });
    expect(fromHttp).toEqual(fromChdb);
    expect(fromChdb).toEqual({ ...userJson, identity_anonymized: 1, is_deleted: 0 });
  });

  it('an accounts row: any source but explicit is the weaker email_domain', () => {
    const base = { tenant_id: 't', account_id: 'a', domain: null, name: 'A', traits: {}, version: '5', is_deleted: 0, updated_at: 5 };
    expect(parseAccountRow({ ...base, source: 'explicit' })).toMatchObject({ source: 'explicit', version: 5 });
    expect(parseAccountRow({ ...base, source: 'group' })).toMatchObject({ source: 'email_domain' });
  });

  it('an events row refuses an unknown type or account source', () => {
    const row = Object.fromEntries(EVENT_COLUMNS.map((c) => [c, null]));
    const valid = { ...row, tenant_id: 't', event_id: 'e', type: 'track', timestamp: 1, client_ts: 1, received_at: 1, timestamp_clamped: 0, identity_anonymized: 0, key_version: 0 };
    expect(parseEventRow(valid)).toMatchObject({ type: 'track', account_source: null, element_classes: [], properties: {} });
    expect(() => parseEventRow({ ...valid, type: 'purchase' })).toThrow(/events.type/);
    expect(() => parseEventRow({ ...valid, account_source: 'guess' })).toThrow(/events.account_source/);
  });

  it('a dead_letters row', () => {
    expect(parseDeadLetterRow({ tenant_id: 't', received_at: '2026-03-03 10:00:00.000', stage: 'sink', reason: 'r', event_id: null, payload: '{}', error: null })).toEqual({
      tenant_id: 't',
      received_at: Date.UTC(2026, 2, 3, 10),
      stage: 'sink',
      reason: 'r',
      event_id: null,
      payload: '{}',
      error: null,
    });
  });

  it('an overwrite_requests row (a receipt and its version); unknown subject, mode or status refused', () => {
    const json = {
      request_id: 'r1',
      tenant_id: 't',
      subject: 'user',
      subject_id_hash: 'h',
      mode: 'delete',
      status: 'applied',
      rows_rewritten: { events: '12', users: 1 },
      reason: null,
      attempts: 2,
      requested_at: '2026-03-03 10:00:00.500',
      applied_at: 1_780_000_000_000,
      verified_at: null,
      version: '1780000000001',
    };
    const receipt = parseReceipt(json);
    expect(receipt).toEqual({ ...json, rows_rewritten: { events: 12, users: 1 }, requested_at: Date.UTC(2026, 2, 3, 10, 0, 0, 500), version: undefined });
    expect(parseOverwriteRequestRow(json)).toEqual({ ...receipt, version: 1_780_000_000_001 });
    expect(() => parseReceipt({ ...json, subject: 'group' })).toThrow(/overwrite_requests.subject/);
    expect(() => parseReceipt({ ...json, mode: 'erase' })).toThrow(/overwrite_requests.mode/);
    expect(() => parseReceipt({ ...json, status: 'done' })).toThrow(/overwrite_requests.status/);
  });

  it('overwrite_values per request: attribute → new value, null cleared; an unknown subject refused', () => {
    const json = { request_id: 'r1', tenant_id: 't', subject: 'account', id_hash: 'h', delete_events: 0, requested_ms: '1780000000123', attrs: [['plan', '"pro"'], ['email', null]] };
    expect(parseOverwriteValueGroup(json)).toEqual({
      request_id: 'r1',
      tenant_id: 't',
      subject: 'account',
      id_hash: 'h',
      delete_events: 0,
      requested_at: 1_780_000_000_123,
      attrs: [
        ['plan', '"pro"'],
        ['email', null],
      ],
    });
    expect(() => parseOverwriteValueGroup({ ...json, subject: 'group' })).toThrow(/overwrite_values.subject/);
    expect(() => parseOverwriteValueGroup({ ...json, attrs: ['plan'] })).toThrow(/overwrite_values.attrs/);
  });

  it('a suppressions row, and a user’s earliest one (its time as requested_ms)', () => {
    const row = { tenant_id: 't', subject_id_hash: 'h', request_id: 'r1', requested_at: Date.UTC(2026, 2, 3, 10) };
    expect(parseSuppressionRow({ ...row, requested_at: '2026-03-03 10:00:00.000' })).toEqual(row);
    expect(parseEarliestSuppression({ tenant_id: 't', subject_id_hash: 'h', request_id: 'r1', requested_ms: String(row.requested_at) })).toEqual(row);
  });
});
