import { describe, expect, it } from 'vitest';
import { jsonStrings } from './json-strings.js';

describe('jsonStrings', () => {
  it.each([
    ['a string', 'x', ['x']],
    ['scalars other than strings', [1, true, null, undefined], []],
    ['keys and values, depth first', { a: 'b', c: { d: ['e', 'f'] } }, ['a', 'b', 'c', 'd', 'e', 'f']],
    ['JSON text inside a value, unescaped', { traits: { email: '"x@y.z"' } }, ['traits', 'email', '"x@y.z"']],
  ])('%s', (_name, value, want) => {
    expect(jsonStrings(value)).toEqual(want);
  });
});
