// The one place a pipeline's results are counted and routed, for both runners: `ok` goes on to
// the output, `drop` is discarded and counted, `dlq` becomes a dead letter, `retry` tells the
// runner to pause (the fleet pauses the partition and runs the record again; embedded mode
// answers the request with a retry). Outputs and dead letters are counted once the runner has
// handed them on (`handedOn`), so a write that fails and is redone is not counted twice.
import { errorText, type DeadLetter } from '../events/dead-letter.js';
import type { PipelineMetrics } from './metrics.js';
import type { PipelineResult } from './pipeline.js';

export type Routed<T> =
  | { kind: 'ok'; value: T }
  | { kind: 'drop'; stage: string; reason: string }
  | { kind: 'dlq'; letter: DeadLetter }
  | { kind: 'retry'; stage: string; reason: string };

/** What the dead letter names of the input (read from it by the runner). */
export interface InputIds {
  tenantId: string | null;
  eventId: string | null;
}

export interface ResultHandler {
  /**
   * Counts one result and says where the input goes. A repeat (`attempt` > 1, after `retriedAt`
   * asked for a retry) runs the input from the first stage again: stages up to `retriedAt` are
   * not counted as taking it again, nor those before it as handing it on again.
   */
  route<T>(result: PipelineResult<T>, ids: InputIds, repeat?: { attempt: number; retriedAt: string }): Routed<T>;
  /** A record that could not be read: taken by the first stage, and dead-lettered as `decode`. */
  unreadable(bytes: Buffer | null, reason: string, error: string | null, ids?: InputIds): DeadLetter;
  /** The runner handed `outputs` results of the last stage on and stored these dead letters. */
  handedOn(outputs: number, letters: readonly DeadLetter[]): void;
  /**
   * route() for the inputs of one batch, counted into a tally that commit() adds to the metrics
   * (one increment per stage and counter, not per input: prom-client hashes the labels of every
   * increment, which cost more per event than a pipeline stage in the embedded runner).
   */
  batch(): BatchRouter;
}

export interface BatchRouter {
  route: ResultHandler['route'];
  /** Adds what was routed so far to the metrics (and starts counting from zero again). */
  commit(): void;
}

export function createResultHandler(opts: { stages: readonly string[]; metrics: PipelineMetrics; now?: () => number }): ResultHandler {
  const { metrics } = opts;
  const now = opts.now ?? Date.now;
  const first = opts.stages[0] ?? 'pipeline';
  const last = opts.stages[opts.stages.length - 1] ?? first;
  // NOTE: a dead letter is counted under the stage that took the input: `decode` is the first's
  const counted = (stage: string) => (opts.stages.includes(stage) ? stage : first);

  /** Counts not yet added to the metrics: taken and handed on per stage index, drops and retries per stage. */
  interface Tally {
    in: number[];
    out: number[];
    drops: Map<string, number>;
    retries: Map<string, number>;
  }
  const newTally = (): Tally => ({ in: opts.stages.map(() => 0), out: opts.stages.map(() => 0), drops: new Map(), retries: new Map() });
  function commit(t: Tally): void {
    for (let i = 0; i < opts.stages.length; i++) {
      const stage = opts.stages[i] as string;
      if ((t.in[i] ?? 0) > 0) metrics.eventsIn.inc({ stage }, t.in[i]);
      if ((t.out[i] ?? 0) > 0) metrics.eventsOut.inc({ stage }, t.out[i]);
      t.in[i] = 0;
      t.out[i] = 0;
    }
    for (const [stage, n] of t.drops) metrics.drops.inc({ stage }, n);
    for (const [stage, n] of t.retries) metrics.retries.inc({ stage }, n);
    t.drops.clear();
    t.retries.clear();
  }

  function routeInto<T>(t: Tally, result: PipelineResult<T>, ids: InputIds, repeat?: { attempt: number; retriedAt: string }): Routed<T> {
    const attempt = repeat?.attempt ?? 1;
    // stages before index `from` were counted as taking the input (and those before it as
    // handing it on) on an earlier attempt
    const from = repeat ? opts.stages.indexOf(repeat.retriedAt) + 1 : 0;
    const reached = result.ok ? opts.stages.length : result.passed.length + 1;
    for (let i = from; i < reached; i++) t.in[i] = (t.in[i] ?? 0) + 1;
    for (let i = Math.max(0, from - 1); i < reached - 1; i++) t.out[i] = (t.out[i] ?? 0) + 1;
    if (result.ok) return { kind: 'ok', value: result.value };
    const { stage, result: r } = result;
    switch (r.kind) {
      case 'drop':
        t.drops.set(stage, (t.drops.get(stage) ?? 0) + 1);
        return { kind: 'drop', stage, reason: r.reason };
      case 'retry':
        t.retries.set(stage, (t.retries.get(stage) ?? 0) + 1);
        return { kind: 'retry', stage, reason: r.reason };
      case 'dlq':
        return {
          kind: 'dlq',
          letter: { stage, reason: r.reason, error: errorText(r.error), attempts: attempt, ...ids, failedAt: now(), input: result.input },
        };
    }
  }

  const single = newTally();
  return {
    route<T>(result: PipelineResult<T>, ids: InputIds, repeat?: { attempt: number; retriedAt: string }): Routed<T> {
      const routed = routeInto(single, result, ids, repeat);
      commit(single);
      return routed;
    },
    batch() {
      const t = newTally();
      return {
        route: (result, ids, repeat) => routeInto(t, result, ids, repeat),
        commit: () => commit(t),
      };
    },
    unreadable(bytes, reason, error, ids = { tenantId: null, eventId: null }) {
      metrics.eventsIn.inc({ stage: first });
      return { stage: 'decode', reason, error, attempts: 1, ...ids, failedAt: now(), unreadable: bytes ?? Buffer.alloc(0) };
    },
    handedOn(outputs, letters) {
      if (outputs > 0) metrics.eventsOut.inc({ stage: last }, outputs);
      for (const l of letters) metrics.deadLetters.inc({ stage: counted(l.stage) });
    },
  };
}
