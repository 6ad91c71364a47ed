import { describe, expect, it } from 'vitest';
import type { UserRow } from '../clickhouse/tables/users.js';
import { deadLetterHoldsClearId, hashedColumns, hashedTraitValue, identifyIdsIn, latestRows, mergedUserRow, traitLookups, translateUserRow } from './translation-plan.js';

const pseudonymize = (id: string): string => `v2:${Buffer.from(id).toString('hex').padEnd(64, '0').slice(0, 64)}`;
const P = pseudonymize;

const row = (over: Partial<UserRow> = {}): UserRow => ({
  tenant_id: 't',
  user_id: 'ada@example.com',
  email: 'ada@example.com',
  first_name: 'Ada',
  last_name: null,
  name: null,
  phone: '+44 1',
  title: null,
  company: null,
  account_id: 'acme',
  traits: { plan: '"pro"', backup: '"ada@example.com"' },
  first_seen: 100,
  last_seen: 200,
  identity_anonymized: 0,
  version: 200,
  is_deleted: 0,
  updated_at: 200,
  ...over,
});

describe('hashedTraitValue: the anonymizer\'s form of a stored PII trait value', () => {
  it.each([
    { name: 'a JSON string is hashed decoded', raw: '"+44 1"', want: JSON.stringify(P('+44 1')) },
    { name: 'other JSON is hashed as its text', raw: '42', want: JSON.stringify(P('42')) },
    { name: 'malformed JSON text is hashed as is', raw: '"oops', want: JSON.stringify(P('"oops')) },
    { name: 'JSON null stays (no PII)', raw: 'null', want: null },
    { name: 'a pseudonym is not hashed again (a rerun)', raw: JSON.stringify(P('x')), want: null },
  ])('$name', ({ raw, want }) => {
    expect(hashedTraitValue(raw, pseudonymize)).toBe(want);
  });
});

describe('traitLookups', () => {
  it('PII trait values under their keys only; clear ids under any key', () => {
    const l = traitLookups(['"+44 1"', 'null'], ['ada@example.com'], pseudonymize);
    expect([...l]).toEqual([
      ['"+44 1"', { hashed: JSON.stringify(P('+44 1')), anyKey: false }],
      ['"ada@example.com"', { hashed: JSON.stringify(P('ada@example.com')), anyKey: true }],
    ]);
  });
});

describe('users rows', () => {
  it('hashedColumns: the reserved columns a PII trait name (either spelling) maps to', () => {
    expect(hashedColumns(['phone', 'first_name', 'plan'])).toEqual(['first_name', 'phone']);
    expect(hashedColumns(['firstName'])).toEqual(['first_name']);
    expect(hashedColumns([])).toEqual([]);
  });

  it('translateUserRow: re-keyed, PII traits and columns hashed, a trait or column equal to a clear id hashed, the rest kept', () => {
    const ids = new Set(['ada@example.com']);
    expect(translateUserRow(row(), pseudonymize, ['phone'], ids)).toEqual(
      row({
        user_id: P('ada@example.com'),
        email: P('ada@example.com'),
        phone: P('+44 1'),
        traits: { plan: '"pro"', backup: JSON.stringify(P('ada@example.com')) },
        identity_anonymized: 1,
      }),
    );
  });

  it('a trait named __proto__ stays data', () => {
    const traits: Record<string, string> = {};
    Object.defineProperty(traits, '__proto__', { value: '"x"', enumerable: true });
    const out = translateUserRow(row({ traits }), pseudonymize, ['__proto__'], new Set());
    expect(Object.hasOwn(out.traits, '__proto__')).toBe(true);
    expect(Object.getPrototypeOf(out.traits)).toBe(Object.prototype);
  });

  it('latestRows keeps the highest version per key', () => {
    const got = latestRows([row({ version: 1 }), row({ version: 3 }), row({ version: 2 }), row({ user_id: 'b', version: 1 })]);
    expect([...got].map(([k, r]) => [k, r.version])).toEqual([['ada@example.com', 3], ['b', 1]]);
  });

  it.each([
    { name: 'no pseudonym row: the translated row as is', stored: undefined, want: { version: 200, first_seen: 100, last_seen: 200, plan: '"pro"' } },
    { name: 'a newer pseudonym row wins, first_seen the earliest, version above both', stored: row({ version: 500, first_seen: 400, last_seen: 500, traits: { plan: '"team"' } }), want: { version: 501, first_seen: 100, last_seen: 500, plan: '"team"' } },
    { name: 'an older pseudonym row loses (an overwrite of the clear row after the opt-in)', stored: row({ version: 150, first_seen: 50, last_seen: 150, traits: { plan: '"free"' } }), want: { version: 201, first_seen: 50, last_seen: 200, plan: '"pro"' } },
  ])('mergedUserRow: $name', ({ stored, want }) => {
    const m = mergedUserRow(row(), stored, 999);
    expect({ version: m.version, first_seen: m.first_seen, last_seen: m.last_seen, plan: m.traits['plan'] }).toEqual(want);
  });

  it('mergedUserRow: a clear tombstone never wins over a live pseudonym row', () => {
    const m = mergedUserRow(row({ version: 900, is_deleted: 1 }), row({ version: 500 }), 999);
    expect(m).toMatchObject({ is_deleted: 0, version: 901 });
  });
});

describe('dead letters', () => {
  it('identifyIdsIn: every identify id an input names, either spelling, nested; pseudonyms not', () => {
    expect(identifyIdsIn({ batch: [{ userId: 'a' }, { previousId: 'b', user_id: P('c') }], user_id: 'd', previous_id: '' })).toEqual(['a', 'b', 'd']);
  });

  it.each([
    { name: 'an input naming an identify id', letter: { input: { user_id: 'someone' } }, error: null, want: true },
    { name: 'a string equal to a clear id', letter: { input: { properties: { ref: 'ada@example.com' } } }, error: null, want: true },
    { name: 'a clear id in the error text', letter: { input: { anonymous_id: 'x' } }, error: 'bad id ada@example.com', want: true },
    { name: 'an unreadable record (fail closed)', letter: { unreadable: Buffer.from('??') }, error: null, want: true },
    { name: 'an anonymous event', letter: { input: { anonymous_id: 'device-1', type: 'page' } }, error: 'bad', want: false },
  ])('deadLetterHoldsClearId: $name → $want', ({ letter, error, want }) => {
    expect(deadLetterHoldsClearId(letter, error, new Set(['ada@example.com']))).toBe(want);
  });
});
