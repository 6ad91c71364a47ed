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
}

export function createResultHandler(opts: { stages: readonly string[]; metrics: PipelineMetrics; now?: () => number }): ResultHandler {
  const { metrics } = opts;
  const now = opts.now ?? Date.now;
  const first = opts.stages[0] ?? 'pipeline';
  const last = opts.stages[opts.stages.length - 1] ?? first;
  // NOTE: a dead letter is counted under the stage that took the input: `decode` is the first's
  const counted = (stage: string) => (opts.stages.includes(stage) ? stage : first);

  return {
    route<T>(result: PipelineResult<T>, ids: InputIds, repeat?: { attempt: number; retriedAt: string }): Routed<T> {
      const attempt = repeat?.attempt ?? 1;
      // stages before index `from` were counted as taking the input (and those before it as
      // handing it on) on an earlier attempt
      const from = repeat ? opts.stages.indexOf(repeat.retriedAt) + 1 : 0;
      const reached = result.ok ? opts.stages.length : result.passed.length + 1;
      for (let i = from; i < reached; i++) metrics.eventsIn.inc({ stage: opts.stages[i] as string });
      for (let i = Math.max(0, from - 1); i < reached - 1; i++) metrics.eventsOut.inc({ stage: opts.stages[i] as string });
      if (result.ok) return { kind: 'ok', value: result.value };
      const { stage, result: r } = result;
      switch (r.kind) {
        case 'drop':
          metrics.drops.inc({ stage });
          return { kind: 'drop', stage, reason: r.reason };
        case 'retry':
          metrics.retries.inc({ stage });
          return { kind: 'retry', stage, reason: r.reason };
        case 'dlq':
          return {
            kind: 'dlq',
            letter: { stage, reason: r.reason, error: errorText(r.error), attempts: attempt, ...ids, failedAt: now(), input: result.input },
          };
      }
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
