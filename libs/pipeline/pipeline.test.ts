import { describe, expect, it } from 'vitest';
import { dlq, drop, ok, retry, type Result } from '../core/result.js';
import { pipeline, stage } from './pipeline.js';

const double = stage('double', (n: number): Result<number> => ok(n * 2));
const judge = stage('judge', (n: number): Result<string> => (n === 2 ? drop('two') : n === 4 ? dlq('four') : n === 6 ? retry('six') : ok(`n=${n}`)));
const later = stage('later', async (s: string): Promise<Result<string>> => (s === 'n=10' ? dlq('ten') : ok(`${s}!`)));

describe('pipeline', () => {
  it.each([
    [0, { ok: true, value: 'n=0' }],
    [1, { ok: false, stage: 'judge', input: 2, passed: ['double'], result: { kind: 'drop', reason: 'two' } }],
    [2, { ok: false, stage: 'judge', input: 4, passed: ['double'], result: { kind: 'dlq', reason: 'four', error: undefined } }],
    [3, { ok: false, stage: 'judge', input: 6, passed: ['double'], result: { kind: 'retry', reason: 'six', error: undefined } }],
  ])('two sync stages: input %i → %j', (input, expected) => {
    expect(pipeline(double).then(judge).run(input)).toEqual(expected);
  });

  it('answers synchronously while every stage does, and through a promise after an async one', async () => {
    const sync = pipeline(double).then(judge);
    expect(sync.run(0)).not.toBeInstanceOf(Promise);
    const mixed = sync.then(later);
    const r = mixed.run(0);
    expect(r).toBeInstanceOf(Promise);
    expect(await r).toEqual({ ok: true, value: 'n=0!' });
    expect(await mixed.run(5)).toEqual({ ok: false, stage: 'later', input: 'n=10', passed: ['double', 'judge'], result: { kind: 'dlq', reason: 'ten', error: undefined } });
    expect(mixed.stages).toEqual(['double', 'judge', 'later']);
  });

  it('runs stages after an async one, and stops at the first that does not return ok', async () => {
    const calls: string[] = [];
    const first = stage('first', async (n: number): Promise<Result<number>> => (calls.push('first'), ok(n + 1)));
    const second = stage('second', (n: number): Result<number> => (calls.push('second'), n > 5 ? drop('big') : ok(n)));
    const third = stage('third', (n: number): Result<number> => (calls.push('third'), ok(n * 10)));
    const p = pipeline(first).then(second).then(third);
    expect(await p.run(1)).toEqual({ ok: true, value: 20 });
    calls.length = 0;
    expect(await p.run(9)).toMatchObject({ ok: false, stage: 'second', passed: ['first'] });
    expect(calls).toEqual(['first', 'second']);
  });

  it('does not change the stages of the pipeline it extends', () => {
    const base = pipeline(double);
    base.then(judge);
    expect(base.stages).toEqual(['double']);
    expect(base.run(3)).toEqual({ ok: true, value: 6 });
  });
});
