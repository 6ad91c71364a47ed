// A generic group-commit scheduler: callers add items and wait; items are flushed in batches
// of at most maxItems, a batch at the latest maxAgeMs after its first item, with at most
// maxConcurrent flushes running. Each caller resolves once the flushes holding its items
// succeeded for them. It knows nothing of what a flush stores.
//
// Guarantees:
//   * add() buffers synchronously: items of calls made before a flush starts share a batch
//     (up to maxItems), in call order; a call larger than the room left spans batches;
//   * a full batch is sealed and flushed before a younger one; a batch that is not full is
//     flushed once its age limit passed (or flush() asked for it) and a slot is free;
//   * a flush reports per part (the items one add() put into one batch): only the callers of
//     the parts that failed reject, a flush that throws fails every part of its batch;
//   * a caller resolves only after every batch holding its items was flushed; callers that
//     await it get back-pressure: nothing of theirs is acknowledged before it is stored.

/** The items one add() call put into one batch: `items.slice(from, to)`. */
export interface BatchPart {
  readonly from: number;
  readonly to: number;
}

export interface FlushBatch<T> {
  /** 1, 2, … in the order batches were opened */
  readonly id: number;
  readonly items: readonly T[];
  /** in add() order; contiguous and covering `items` */
  readonly parts: readonly BatchPart[];
}

/** Index in `batch.parts` → why that part failed; parts not named were stored. */
export type PartFailures = ReadonlyMap<number, unknown>;

export interface GroupCommitOptions<T> {
  /** items per batch, ≥ 1 */
  maxItems: number;
  /** a batch is flushed at the latest this long after its first item, ≥ 0 */
  maxAgeMs: number;
  /** flushes running at once, ≥ 1 */
  maxConcurrent: number;
  flush(batch: FlushBatch<T>): Promise<PartFailures>;
}

export interface GroupCommit<T> {
  /** Resolves once every item is flushed; rejects with the failure of a part holding some of them. */
  add(items: readonly T[]): Promise<void>;
  /**
   * Flushes every batch not yet flushing and waits for all flushes, then rejects with the
   * first failure of those batches.
   * NOTE: a batch that was already flushing is waited for but its failure is not reported
   * here: its callers, who were waiting on it, have it.
   */
  flush(): Promise<void>;
  /** Refuses later adds (they reject), then flush(). Idempotent. */
  stop(): Promise<void>;
}

/** Deferred promise; its rejection is pre-handled so one nobody awaits never crashes the process. */
interface Deferred {
  readonly done: Promise<void>;
  resolve(): void;
  reject(err: unknown): void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const done = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  done.catch(() => undefined);
  return { done, resolve, reject };
}

interface Part extends Deferred {
  readonly from: number;
  to: number;
}

interface Batch<T> extends Deferred {
  readonly id: number;
  readonly items: T[];
  readonly parts: Part[];
  /** the age limit passed (or flush() asked): flush as soon as a slot is free */
  due: boolean;
  timer: NodeJS.Timeout | undefined;
}

export function createGroupCommit<T>(opts: GroupCommitOptions<T>): GroupCommit<T> {
  const maxItems = Math.max(1, opts.maxItems);
  const maxAgeMs = Math.max(0, opts.maxAgeMs);
  const maxConcurrent = Math.max(1, opts.maxConcurrent);
  let open: Batch<T> | undefined;
  const sealed: Batch<T>[] = [];
  const running = new Set<Promise<void>>();
  let nextId = 1;
  let stopping: Promise<void> | undefined;

  function newBatch(): Batch<T> {
    const batch: Batch<T> = { id: nextId++, items: [], parts: [], due: false, timer: undefined, ...deferred() };
    batch.timer = setTimeout(() => {
      batch.timer = undefined;
      batch.due = true;
      pump();
    }, maxAgeMs);
    return batch;
  }

  function seal(batch: Batch<T>): void {
    if (batch.timer) clearTimeout(batch.timer);
    batch.timer = undefined;
    if (open === batch) open = undefined;
    sealed.push(batch);
  }

  /** Starts flushes while slots are free: sealed (full) batches first, then a due open one. */
  function pump(): void {
    while (running.size < maxConcurrent) {
      let batch = sealed.shift();
      if (!batch && open && open.due) {
        batch = open;
        seal(batch);
        sealed.shift();
      }
      if (!batch) return;
      const p = run(batch).finally(() => {
        running.delete(p);
        pump();
      });
      running.add(p);
    }
  }

  async function run(batch: Batch<T>): Promise<void> {
    let failures: PartFailures;
    try {
      failures = await opts.flush({ id: batch.id, items: batch.items, parts: batch.parts });
    } catch (err) {
      failures = new Map(batch.parts.map((_, i) => [i, err]));
    }
    let first: { err: unknown } | undefined;
    for (const [i, part] of batch.parts.entries()) {
      if (!failures.has(i)) {
        part.resolve();
        continue;
      }
      const err = failures.get(i);
      first ??= { err };
      part.reject(err);
    }
    if (first) batch.reject(first.err);
    else batch.resolve();
  }

  function add(items: readonly T[]): Promise<void> {
    if (stopping) return Promise.reject(new Error('group commit is stopped'));
    if (items.length === 0) return Promise.resolve();
    const waits: Promise<void>[] = [];
    let batch: Batch<T> | undefined;
    let part: Part | undefined;
    for (const item of items) {
      if (!batch || !part || batch.items.length >= maxItems) {
        if (batch && batch === open) seal(batch);
        open ??= newBatch();
        batch = open;
        part = { from: batch.items.length, to: batch.items.length, ...deferred() };
        batch.parts.push(part);
        waits.push(part.done);
      }
      batch.items.push(item);
      part.to = batch.items.length;
    }
    if (batch && batch === open && batch.items.length >= maxItems) seal(batch);
    pump();
    return waits.length === 1 ? (waits[0] ?? Promise.resolve()) : Promise.all(waits).then(() => undefined);
  }

  async function flush(): Promise<void> {
    const waits: Promise<void>[] = [];
    if (open) {
      open.due = true;
      waits.push(open.done);
    }
    for (const b of sealed) waits.push(b.done);
    pump();
    // NOTE: every flush settles before the first failure is reported, so stop() never
    // returns while a flush is still running.
    const settled = await Promise.allSettled([...waits, ...running]);
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  function stop(): Promise<void> {
    stopping ??= flush();
    return stopping;
  }

  return { add, flush, stop };
}
