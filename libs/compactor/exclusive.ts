// One section at a time in a process: the compactor's overwrite batches and history translations
// share ClickHouse's mutation queue and rewrite the same tables, so the embedded runner runs them
// one after another (the fleet has the compactor's Redis lease for the same purpose).
import type { Compactor } from './compactor.js';

export type Exclusive = <T>(f: () => Promise<T>) => Promise<T>;

export function createExclusive(): Exclusive {
  let chain: Promise<unknown> = Promise.resolve();
  return <T>(f: () => Promise<T>): Promise<T> => {
    const run = chain.then(f);
    chain = run.catch(() => undefined);
    return run;
  };
}

/** `compactor` whose batches run inside `exclusive`. */
export function exclusiveCompactor(compactor: Compactor, exclusive: Exclusive): Compactor {
  return {
    registry: compactor.registry,
    lastTimings: () => compactor.lastTimings(),
    apply: (commands) => exclusive(() => compactor.apply(commands)),
  };
}
