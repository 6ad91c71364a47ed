// An N-stage pipeline of named stages, sync or async, that stops at the first result that is
// not `ok` and says which stage gave it and what that stage was given, so one result handler
// (result-handler.ts) can count and route the outcome for every runner.
import type { Drop, Dlq, Result, Retry } from '../core/result.js';

export interface PipelineStage<In, Out> {
  /** the stage label in metrics, logs and dead letters */
  readonly name: string;
  run(input: In): Result<Out> | Promise<Result<Out>>;
}

export type Stopped = {
  readonly ok: false;
  /** the stage that did not return ok */
  readonly stage: string;
  /** what that stage was given: a dead letter keeps it */
  readonly input: unknown;
  readonly result: Drop | Dlq | Retry;
  /** stages that returned ok before it, in order */
  readonly passed: readonly string[];
};

export type PipelineResult<T> = { readonly ok: true; readonly value: T } | Stopped;

export interface Pipeline<In, Out> {
  /** stage names, in order */
  readonly stages: readonly string[];
  /** the pipeline followed by one more stage */
  then<Next>(stage: PipelineStage<Out, Next>): Pipeline<In, Next>;
  /** synchronous while every stage on the way answers synchronously (the hot path allocates no promise) */
  run(input: In): PipelineResult<Out> | Promise<PipelineResult<Out>>;
}

type AnyStage = PipelineStage<unknown, unknown>;

export function pipeline<In, Out>(first: PipelineStage<In, Out>): Pipeline<In, Out> {
  return build<In, Out>([first as AnyStage]);
}

/** A stage from a synchronous function. */
export function stage<In, Out>(name: string, run: (input: In) => Result<Out> | Promise<Result<Out>>): PipelineStage<In, Out> {
  return { name, run };
}

function build<In, Out>(stages: readonly AnyStage[]): Pipeline<In, Out> {
  const names = stages.map((s) => s.name);

  // Runs stages from index `from` on `value`; goes async only at the first stage that returns a promise.
  function runFrom(from: number, value: unknown): PipelineResult<Out> | Promise<PipelineResult<Out>> {
    let current = value;
    for (let i = from; i < stages.length; i++) {
      const s = stages[i] as AnyStage;
      const r = s.run(current);
      if (r instanceof Promise) return r.then((settled) => continueAfter(i, current, settled));
      if (r.kind !== 'ok') return stopped(i, current, r);
      current = r.value;
    }
    return { ok: true, value: current as Out };
  }

  function continueAfter(i: number, input: unknown, r: Result<unknown>): PipelineResult<Out> | Promise<PipelineResult<Out>> {
    if (r.kind !== 'ok') return stopped(i, input, r);
    return runFrom(i + 1, r.value);
  }

  function stopped(i: number, input: unknown, result: Drop | Dlq | Retry): Stopped {
    return { ok: false, stage: names[i] as string, input, result, passed: names.slice(0, i) };
  }

  return {
    stages: names,
    then: <Next>(next: PipelineStage<Out, Next>) => build<In, Next>([...stages, next as AnyStage]),
    run: (input: In) => runFrom(0, input),
  };
}

/** A stage that hands every input on as it is (a worker whose work is all in its output). */
export function passStage<T>(name: string): PipelineStage<T, T> {
  return { name, run: (input) => ({ kind: 'ok', value: input }) };
}
