import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createGroupCommit, type FlushBatch, type GroupCommitOptions, type PartFailures } from './group-commit.js';

/** A fake flush: records each batch and resolves it when the test says so. */
function fakeFlush() {
  const batches: FlushBatch<string>[] = [];
  const pending: { batch: FlushBatch<string>; resolve(f: PartFailures): void; reject(err: unknown): void }[] = [];
  let running = 0;
  let maxRunning = 0;
  const flush = (batch: FlushBatch<string>): Promise<PartFailures> => {
    batches.push({ id: batch.id, items: [...batch.items], parts: batch.parts.map((p) => ({ ...p })) });
    running++;
    maxRunning = Math.max(maxRunning, running);
    return new Promise<PartFailures>((resolve, reject) => {
      pending.push({ batch, resolve, reject });
    }).finally(() => {
      running--;
    });
  };
  /** resolves the oldest running flush */
  const resolveFlush = (failures: PartFailures = new Map()): void => {
    const p = pending.shift();
    if (!p) throw new Error('no flush running');
    p.resolve(failures);
  };
  const fail = (err: unknown): void => {
    const p = pending.shift();
    if (!p) throw new Error('no flush running');
    p.reject(err);
  };
  return { flush, batches, resolveFlush, fail, running: () => running, maxRunning: () => maxRunning, pending: () => pending.length };
}

function scheduler(f: ReturnType<typeof fakeFlush>, opts: Partial<GroupCommitOptions<string>> = {}) {
  return createGroupCommit<string>({ maxItems: 5, maxAgeMs: 50, maxConcurrent: 1, flush: f.flush, ...opts });
}

/** A promise's state right now (after pending microtasks ran). */
async function state(p: Promise<unknown>): Promise<'pending' | 'fulfilled' | 'rejected'> {
  let s: 'pending' | 'fulfilled' | 'rejected' = 'pending';
  p.then(
    () => (s = 'fulfilled'),
    () => (s = 'rejected'),
  );
  await vi.advanceTimersByTimeAsync(0);
  return s;
}

const items = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('group commit: batching', () => {
  it.each([
    { name: 'adds before the age limit share one batch', adds: [2, 2], want: [[2, 2]] },
    { name: 'a full batch is flushed at once, the rest waits for its age', adds: [5, 1], want: [[5], [1]] },
    { name: 'an add larger than the room left spans batches', adds: [3, 4], want: [[3, 2], [2]] },
    { name: 'an add of many batches is cut at maxItems', adds: [12], want: [[5], [5], [2]] },
  ])('$name', async ({ adds, want }) => {
    const f = fakeFlush();
    const gc = scheduler(f, { maxConcurrent: 4 });
    const writes = adds.map((n, i) => gc.add(items(String.fromCharCode(97 + i), n)));
    await vi.advanceTimersByTimeAsync(50);
    while (f.pending() > 0) f.resolveFlush();
    await Promise.all(writes);
    expect(f.batches.map((b) => b.parts.map((p) => p.to - p.from))).toEqual(want);
    // items keep add() order and the parts cover each batch contiguously
    expect(f.batches.flatMap((b) => b.items)).toEqual(adds.flatMap((n, i) => items(String.fromCharCode(97 + i), n)));
    for (const b of f.batches) {
      expect(b.parts[0]?.from).toBe(0);
      expect(b.parts.at(-1)?.to).toBe(b.items.length);
      for (let i = 1; i < b.parts.length; i++) expect(b.parts[i]?.from).toBe(b.parts[i - 1]?.to);
    }
  });

  it('a batch that is not full is flushed when its age limit passes, not before', async () => {
    const f = fakeFlush();
    const gc = scheduler(f);
    const w = gc.add(['a']);
    await vi.advanceTimersByTimeAsync(49);
    expect(f.batches).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(f.batches).toHaveLength(1);
    expect(await state(w)).toBe('pending');
    f.resolveFlush();
    expect(await state(w)).toBe('fulfilled');
  });

  it('the age counts from the first item: a later add does not postpone the flush', async () => {
    const f = fakeFlush();
    const gc = scheduler(f);
    void gc.add(['a']);
    await vi.advanceTimersByTimeAsync(40);
    void gc.add(['b']);
    await vi.advanceTimersByTimeAsync(10);
    expect(f.batches.map((b) => b.items)).toEqual([['a', 'b']]);
    f.resolveFlush();
  });

  it('an empty add resolves at once and flushes nothing', async () => {
    const f = fakeFlush();
    const gc = scheduler(f);
    await gc.add([]);
    await vi.advanceTimersByTimeAsync(100);
    expect(f.batches).toHaveLength(0);
  });
});

describe('group commit: concurrency and back-pressure', () => {
  it.each([1, 2])('never runs more than maxConcurrent = %i flushes; full batches go first, in order', async (maxConcurrent) => {
    const f = fakeFlush();
    const gc = scheduler(f, { maxConcurrent });
    const writes = [gc.add(items('a', 5)), gc.add(items('b', 5)), gc.add(items('c', 5)), gc.add(['d'])];
    await vi.advanceTimersByTimeAsync(100);
    expect(f.running()).toBe(maxConcurrent);
    while (f.pending() > 0) {
      f.resolveFlush();
      await vi.advanceTimersByTimeAsync(0);
    }
    await Promise.all(writes);
    expect(f.maxRunning()).toBe(maxConcurrent);
    expect(f.batches.map((b) => b.items[0])).toEqual(['a0', 'b0', 'c0', 'd']);
  });

  it('a caller resolves only after the flush holding its items; items added meanwhile wait for the next flush', async () => {
    const f = fakeFlush();
    const gc = scheduler(f);
    const first = gc.add(['a']);
    await vi.advanceTimersByTimeAsync(50);
    const second = gc.add(['b']);
    await vi.advanceTimersByTimeAsync(100);
    // one flush at a time: b's batch is due but waits for a's
    expect(f.batches.map((b) => b.items)).toEqual([['a']]);
    expect([await state(first), await state(second)]).toEqual(['pending', 'pending']);
    f.resolveFlush();
    expect([await state(first), await state(second)]).toEqual(['fulfilled', 'pending']);
    expect(f.batches.map((b) => b.items)).toEqual([['a'], ['b']]);
    f.resolveFlush();
    expect(await state(second)).toBe('fulfilled');
  });

  it('an add spanning batches resolves only once all of them are flushed', async () => {
    const f = fakeFlush();
    const gc = scheduler(f, { maxConcurrent: 2 });
    const w = gc.add(items('a', 8));
    await vi.advanceTimersByTimeAsync(50);
    f.resolveFlush();
    expect(await state(w)).toBe('pending');
    f.resolveFlush();
    expect(await state(w)).toBe('fulfilled');
  });
});

describe('group commit: failure isolation', () => {
  it.each([
    { name: 'only the part the flush names fails', failures: [1], want: ['fulfilled', 'rejected', 'fulfilled'] },
    { name: 'several parts', failures: [0, 2], want: ['rejected', 'fulfilled', 'rejected'] },
    { name: 'none', failures: [], want: ['fulfilled', 'fulfilled', 'fulfilled'] },
  ])('$name', async ({ failures, want }) => {
    const f = fakeFlush();
    const gc = scheduler(f);
    const writes = [gc.add(['a']), gc.add(['b']), gc.add(['c'])];
    await vi.advanceTimersByTimeAsync(50);
    f.resolveFlush(new Map(failures.map((i) => [i, new Error(`part ${i}`)])));
    const results = await Promise.allSettled(writes);
    expect(results.map((r) => r.status)).toEqual(want);
    for (const i of failures) expect((results[i] as PromiseRejectedResult).reason).toEqual(new Error(`part ${i}`));
  });

  it('a flush that throws fails every part of its batch, and nothing of other batches', async () => {
    const f = fakeFlush();
    const gc = scheduler(f);
    const bad = [gc.add(items('a', 3)), gc.add(items('b', 2))];
    const good = gc.add(['c']);
    await vi.advanceTimersByTimeAsync(50);
    f.fail(new Error('down'));
    await vi.advanceTimersByTimeAsync(50);
    f.resolveFlush();
    expect((await Promise.allSettled(bad)).map((r) => r.status)).toEqual(['rejected', 'rejected']);
    await expect(good).resolves.toBeUndefined();
  });

  it('an add spanning batches rejects if any of its parts fails', async () => {
    const f = fakeFlush();
    const gc = scheduler(f, { maxConcurrent: 2 });
    const w = gc.add(items('a', 7));
    await vi.advanceTimersByTimeAsync(50);
    f.resolveFlush();
    f.resolveFlush(new Map([[0, new Error('second batch')]]));
    await expect(w).rejects.toThrow('second batch');
  });

  it('a failure does not stop later flushes', async () => {
    const f = fakeFlush();
    const gc = scheduler(f);
    const first = gc.add(['a']);
    await vi.advanceTimersByTimeAsync(50);
    f.fail(new Error('boom'));
    await expect(first).rejects.toThrow('boom');
    const second = gc.add(['b']);
    await vi.advanceTimersByTimeAsync(50);
    f.resolveFlush();
    await expect(second).resolves.toBeUndefined();
  });
});

describe('group commit: flush and stop', () => {
  it('flush() sends the open batch at once and waits for it; it reports the failure of a batch it flushed', async () => {
    const f = fakeFlush();
    const gc = scheduler(f);
    const w = gc.add(['a']);
    const flushed = gc.flush();
    await vi.advanceTimersByTimeAsync(0);
    expect(f.batches).toHaveLength(1);
    f.resolveFlush(new Map([[0, new Error('refused')]]));
    await expect(flushed).rejects.toThrow('refused');
    await expect(w).rejects.toThrow('refused');
  });

  it('flush() waits for a running flush but leaves its failure to its callers', async () => {
    const f = fakeFlush();
    const gc = scheduler(f);
    const w = gc.add(['a']);
    await vi.advanceTimersByTimeAsync(50);
    const flushed = gc.flush();
    expect(await state(flushed)).toBe('pending');
    f.fail(new Error('boom'));
    await expect(flushed).resolves.toBeUndefined();
    await expect(w).rejects.toThrow('boom');
  });

  it('stop() flushes what is buffered, is idempotent and refuses later adds', async () => {
    const f = fakeFlush();
    const gc = scheduler(f, { maxAgeMs: 60_000 });
    const w = gc.add(['a']);
    const stops = [gc.stop(), gc.stop()];
    await vi.advanceTimersByTimeAsync(0);
    f.resolveFlush();
    await Promise.all([...stops, w]);
    expect(stops[0]).toBe(stops[1]);
    await expect(gc.add(['b'])).rejects.toThrow(/stopped/);
    expect(f.batches).toHaveLength(1);
  });
});
