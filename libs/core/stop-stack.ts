// How every runner shuts down: named steps run one at a time, a failing step is logged by name
// and never skips the ones after it. A stop stack closes what was opened, newest first.
import { safeErrorFields } from './errors.js';
import type { Logger } from './logger.js';

export interface StopStep {
  name: string;
  run: () => Promise<unknown> | unknown;
}

/** Runs steps in the given order; true when every one finished without an error. */
export async function runStopSteps(steps: readonly StopStep[], logger: Logger): Promise<boolean> {
  let clean = true;
  for (const step of steps) {
    try {
      await step.run();
    } catch (err) {
      clean = false;
      // NOTE: by class and code only: a client's error message may quote what it was sending
      logger.error({ ...safeErrorFields(err), step: step.name }, 'stop step failed');
    }
  }
  return clean;
}

export interface StopStack {
  /** registers the closing of something just opened */
  push(name: string, run: StopStep['run']): void;
  /** the registered steps, newest first (the order `close` runs them in) */
  steps(): StopStep[];
  /** runs every registered step newest first, once; later calls get the first call's result */
  close(logger: Logger): Promise<boolean>;
}

export function createStopStack(): StopStack {
  const pushed: StopStep[] = [];
  let closing: Promise<boolean> | undefined;
  return {
    push(name, run) {
      if (closing) throw new Error(`stop stack already closed: cannot register "${name}"`);
      pushed.push({ name, run });
    },
    steps: () => [...pushed].reverse(),
    close(logger) {
      closing ??= runStopSteps([...pushed].reverse(), logger);
      return closing;
    },
  };
}
