import { describe, expect, it } from 'vitest';
import { strArray } from './row-parsers.js';

describe('field parsers', () => {
  it('an array of strings is kept; anything else is refused', () => {
    expect(strArray(['a', 'b'])).toEqual(['a', 'b']);
    expect(() => strArray('a')).toThrow(TypeError);
  });
});
