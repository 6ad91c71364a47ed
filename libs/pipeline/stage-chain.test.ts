import { describe, expect, it } from 'vitest';
import { dlq, drop, ok, retry, type Result } from '../core/result.js';
import { chainStages } from './stage-chain.js';

const double = { name: 'double', run: (n: number): Result<number> => ok(n * 2) };
const judge = {
  name: 'judge',
  run: (n: number): Result<string> => (n === 2 ? drop('two') : n === 4 ? dlq('four') : n === 6 ? retry('six') : ok(`n=${n}`)),
};

describe('chainStages', () => {
  it.each([
    [0, { ok: true, value: 'n=0' }],
    [1, { ok: false, stage: 'judge', result: { kind: 'drop', reason: 'two' } }],
    [2, { ok: false, stage: 'judge', result: { kind: 'dlq', reason: 'four', error: undefined } }],
    [3, { ok: false, stage: 'judge', result: { kind: 'retry', reason: 'six', error: undefined } }],
  ])('input %i → %j', (input, expected) => {
    expect(chainStages(double, judge)(input)).toEqual(expected);
  });

  it('stops at the first stage that does not return ok', () => {
    let called = false;
    const failing = { name: 'first', run: (): Result<number> => dlq('bad') };
    const spy = { name: 'second', run: (n: number): Result<number> => ((called = true), ok(n)) };
    expect(chainStages(failing, spy)(1)).toMatchObject({ ok: false, stage: 'first' });
    expect(called).toBe(false);
  });
});
