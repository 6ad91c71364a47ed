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
   * Counts one result and says where the input goes. `attempt` > 1 is the same input run again
   * after a retry: it is not counted as taken again.
   */
  route<T>(result: PipelineResult<T>, ids: InputIds, attempt?: number): Routed<T>;
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
    route<T>(result: PipelineResult<T>, ids: InputIds, attempt = 1): Routed<T> {
      const repeat = attempt > 1;
      if (result.ok) {
        if (!repeat) for (const s of opts.stages) metrics.eventsIn.inc({ stage: s });
        for (const s of opts.stages) if (s !== last) metrics.eventsOut.inc({ stage: s });
        return { kind: 'ok', value: result.value };
      }
      const { stage, passed, result: r } = result;
      if (!repeat) for (const s of [...passed, stage]) metrics.eventsIn.inc({ stage: s });
      for (const s of passed) metrics.eventsOut.inc({ stage: s });
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
