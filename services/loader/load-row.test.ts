import { describe, expect, it } from 'vitest';
import { LIMITS } from '../../libs/events/envelope.js';
import { checkRow, quoteName, type LoadLine } from './load-row.js';

const long = (n: number) => 'x'.repeat(n);

describe('checkRow', () => {
  it.each<[string, string, [string, string | null][], LoadLine]>([
    ['a row', ' u1 ', [['email', 'a@b.c'], ['phone', null]], { kind: 'row', line: 7, id: 'u1', set: { email: 'a@b.c', phone: null } }],
    ['only an id: changes nothing', 'u1', [], { kind: 'noop', line: 7 }],
    ['an empty id', '  ', [['email', 'a']], { kind: 'bad', line: 7, reason: 'id is empty' }],
    ['a long id', long(LIMITS.idChars + 1), [['email', 'a']], { kind: 'bad', line: 7, reason: `id longer than ${LIMITS.idChars} characters` }],
    ['the longest id', long(LIMITS.idChars), [['e', 'a']], { kind: 'row', line: 7, id: long(LIMITS.idChars), set: { e: 'a' } }],
    ['an empty name', 'u1', [['', 'a']], { kind: 'bad', line: 7, reason: 'key name is empty' }],
    ['a long name', 'u1', [[long(LIMITS.mapKeyChars + 1), 'a']], { kind: 'bad', line: 7, reason: `key name longer than ${LIMITS.mapKeyChars} characters` }],
    ['a name twice', 'u1', [['a', '1'], ['a', '2']], { kind: 'bad', line: 7, reason: 'key "a" given twice' }],
    ['a long value', 'u1', [['email', long(LIMITS.mapValueChars + 1)]], { kind: 'bad', line: 7, reason: `key "email": value longer than ${LIMITS.mapValueChars} characters` }],
    ['the longest value', 'u1', [['email', long(LIMITS.mapValueChars)]], { kind: 'row', line: 7, id: 'u1', set: { email: long(LIMITS.mapValueChars) } }],
  ])('%s', (_what, id, entries, expected) => {
    expect(checkRow(7, id, entries)).toEqual(expected);
  });

  it('names a CSV attribute a column', () => {
    expect(checkRow(3, 'u1', [['email', long(LIMITS.mapValueChars + 1)]], 'column')).toEqual({
      kind: 'bad',
      line: 3,
      reason: `column "email": value longer than ${LIMITS.mapValueChars} characters`,
    });
  });

  it('limits the attributes a row sets', () => {
    const entries = Array.from({ length: LIMITS.mapEntries + 1 }, (_, i) => [`a${i}`, 'v'] as [string, string]);
    expect(checkRow(1, 'u1', entries)).toMatchObject({ kind: 'bad', reason: expect.stringContaining(`at most ${LIMITS.mapEntries}`) });
    expect(checkRow(1, 'u1', entries.slice(1))).toMatchObject({ kind: 'row' });
  });

  it('keeps "__proto__" an ordinary key', () => {
    const r = checkRow(1, 'u1', [['__proto__', 'x']]);
    expect(r.kind === 'row' && Object.getPrototypeOf(r.set)).toBe(Object.prototype);
    expect(r.kind === 'row' && JSON.stringify(r.set)).toBe('{"__proto__":"x"}');
  });

  it('never puts a value or an id in a reason', () => {
    const secret = `secret-${long(LIMITS.mapValueChars)}`;
    const r = checkRow(1, secret, [['email', secret]]);
    expect(JSON.stringify(r)).not.toContain('secret');
  });
});

describe('quoteName', () => {
  it.each([
    ['email', '"email"'],
    [long(80), `"${long(57)}…"`],
  ])('%s', (name, quoted) => expect(quoteName(name)).toBe(quoted));
});
