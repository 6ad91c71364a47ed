// Composes named stages into one function that stops at the first non-ok result and says
// which stage produced it, so a runner can count and route outcomes per stage.
import type { Drop, Dlq, Result, Retry, Stage } from '../core/result.js';

export interface NamedStage<In, Out> {
  readonly name: string;
  readonly run: Stage<In, Out>;
}

export type ChainResult<T> = { ok: true; value: T } | { ok: false; stage: string; result: Drop | Dlq | Retry };

export function chainStages<A, B, C>(first: NamedStage<A, B>, second: NamedStage<B, C>): (input: A) => ChainResult<C> {
  return function runChain(input: A): ChainResult<C> {
    const r1: Result<B> = first.run(input);
    if (r1.kind !== 'ok') return { ok: false, stage: first.name, result: r1 };
    const r2: Result<C> = second.run(r1.value);
    if (r2.kind !== 'ok') return { ok: false, stage: second.name, result: r2 };
    return { ok: true, value: r2.value };
  };
}
