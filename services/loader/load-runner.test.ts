import { describe, expect, it } from 'vitest';
import { LoadApiError, type LoadChunk, type LoadClient, type LoadReceipt, type LoadResponse } from './load-client.js';
import type { LoadSource } from './load-file.js';
import type { LoadProgress } from './load-progress.js';
import type { LoadLine } from './load-row.js';
import { runLoad, waitForReceipts, type LoadRunOptions } from './load-runner.js';

/**
 * An in-memory admin API with the server's contract: rows whose set names "forbidden" are
 * rejected; ids in `stored` exist; a real call returns a request id whose receipt the test scripts.
 */
class FakeApi implements LoadClient {
  calls: { tenantId: string; chunk: LoadChunk }[] = [];
  applied = new Map<string, Record<string, string | null>>();
  inFlight = 0;
  maxInFlight = 0;
  receiptsAsked = 0;
  /** what the server says of every accepted request */
  warning: string | undefined;
  constructor(
    readonly stored: Set<string> = new Set(),
    readonly receiptOf: (requestId: string, asked: number) => LoadReceipt | undefined = (requestId) => ({ requestId, status: 'verified' }),
    readonly failAtCall?: number,
  ) {}

  async checkTenant(tenantId: string): Promise<void> {
    if (tenantId !== 'acme') throw new LoadApiError('tenant_not_found', `tenant "${tenantId}" does not exist`);
  }

  async load(tenantId: string, chunk: LoadChunk): Promise<LoadResponse> {
    const n = this.calls.push({ tenantId, chunk });
    if (this.failAtCall === n) throw new LoadApiError('server', 'the load request failed with HTTP 500');
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    await new Promise((r) => setTimeout(r, 2));
    this.inFlight--;
    const rejected: LoadResponse['rejected'] = [];
    let accepted = 0;
    let missing = 0;
    chunk.rows.forEach((row, index) => {
      if ('forbidden' in row.set) return rejected.push({ index, reason: 'set.forbidden: not allowed' });
      accepted++;
      if (!this.stored.has(row.id)) missing++;
      if (!chunk.dryRun && (this.stored.has(row.id) || chunk.insertMissing)) this.applied.set(row.id, row.set);
    });
    const requestId = chunk.dryRun || accepted === 0 ? null : `req-${n}`;
    return { requestId, accepted, rejected, missing, ...(requestId !== null && this.warning ? { warning: this.warning } : {}) };
  }

  async receipt(requestId: string): Promise<LoadReceipt | undefined> {
    return this.receiptOf(requestId, ++this.receiptsAsked);
  }
}

const row = (line: number, id: string, set: Record<string, string | null> = { email: `${id}@x.io` }): LoadLine => ({ kind: 'row', line, id, set });

function source(lines: LoadLine[]): () => Promise<LoadSource> {
  return async () => {
    let read = 0;
    return {
      lines: (async function* () {
        for (const l of lines) {
          read += 10;
          yield l;
        }
      })(),
      bytesRead: () => read,
    };
  };
}

function options(api: FakeApi, lines: LoadLine[], over: Partial<LoadRunOptions> = {}): LoadRunOptions {
  return {
    client: api,
    tenantId: 'acme',
    subject: 'user',
    open: source(lines),
    totalBytes: lines.length * 10,
    insertMissing: false,
    dryRun: false,
    strict: false,
    wait: true,
    timeoutMs: 5_000,
    pollMs: 1,
    ...over,
  };
}

const ids = (n: number, from = 0) => Array.from({ length: n }, (_, i) => `u${from + i}`);

describe('runLoad', () => {
  it('sends the good rows in chunks, reports the bad lines by line, waits for the receipts', async () => {
    const api = new FakeApi(new Set(ids(10)));
    const lines: LoadLine[] = [
      ...ids(5).map((id, i) => row(i + 2, id)),
      { kind: 'bad', line: 7, reason: 'id is empty' },
      row(8, 'u5', { forbidden: 'x' }),
      { kind: 'noop', line: 9 },
      row(10, 'u1'), // the same id again
      ...ids(4, 6).map((id, i) => row(i + 11, id)),
    ];
    const outcome = await runLoad(options(api, lines, { chunkRows: 3 }));
    expect(outcome.exitCode).toBe(0);
    expect(outcome.applied).toBe(true);
    expect(outcome.pass).toMatchObject({ rowsRead: 13, sent: 10, accepted: 9, missing: 0, noop: 1, dryRun: false });
    expect(outcome.pass.bad).toEqual([
      { line: 7, reason: 'id is empty' },
      { line: 8, reason: 'rejected by the server: set.forbidden: not allowed' },
      { line: 10, reason: 'same id as line 3: one line per id' },
    ]);
    expect(api.calls.map((c) => c.chunk.rows.length)).toEqual([3, 3, 3, 1]);
    expect(outcome.pass.requestIds.sort()).toEqual(['req-1', 'req-2', 'req-3', 'req-4']);
    expect(outcome.receipts).toMatchObject({ verified: 4, failed: [], pending: [] });
    expect([...api.applied.keys()].sort()).toEqual([...ids(5), ...ids(4, 6)].sort());
  });

  it('keeps at most `inFlight` requests open', async () => {
    const api = new FakeApi();
    await runLoad(options(api, ids(40).map((id, i) => row(i + 1, id)), { chunkRows: 2, inFlight: 3, wait: false }));
    expect(api.calls).toHaveLength(20);
    expect(api.maxInFlight).toBe(3);
  });

  it('splits chunks by bytes too', async () => {
    const api = new FakeApi();
    const big = 'x'.repeat(1_000);
    await runLoad(options(api, ids(10).map((id, i) => row(i + 1, id, { bio: big })), { chunkBytes: 3_500, wait: false }));
    expect(api.calls.map((c) => c.chunk.rows.length)).toEqual([3, 3, 3, 1]);
  });

  it('counts ids with no stored row, and passes --insert-missing on', async () => {
    const api = new FakeApi(new Set(['u0']));
    const outcome = await runLoad(options(api, ids(3).map((id, i) => row(i + 1, id)), { insertMissing: true }));
    expect(outcome.pass).toMatchObject({ accepted: 3, missing: 2 });
    expect(api.calls[0]?.chunk.insertMissing).toBe(true);
    expect(api.applied.size).toBe(3);
  });

  it('--dry-run sends only dry runs and waits for nothing', async () => {
    const api = new FakeApi(new Set(['u0']));
    const outcome = await runLoad(options(api, [row(1, 'u0'), row(2, 'u1'), { kind: 'bad', line: 3, reason: 'x' }], { dryRun: true }));
    expect(outcome).toMatchObject({ exitCode: 0, applied: false });
    expect(outcome.receipts).toBeUndefined();
    expect(outcome.pass).toMatchObject({ dryRun: true, accepted: 2, missing: 1, requestIds: [] });
    expect(api.calls.every((c) => c.chunk.dryRun)).toBe(true);
    expect(api.applied.size).toBe(0);
  });

  it.each([
    ['a bad line here', [row(1, 'u0'), { kind: 'bad', line: 2, reason: 'id is empty' } as LoadLine]],
    ['a line the server rejects', [row(1, 'u0'), row(2, 'u1', { forbidden: 'x' })]],
  ])('--strict applies nothing when there is %s', async (_what, lines) => {
    const api = new FakeApi(new Set(['u0', 'u1']));
    const outcome = await runLoad(options(api, lines, { strict: true }));
    expect(outcome).toMatchObject({ exitCode: 1, applied: false, strictFailed: true });
    expect(outcome.pass.bad).toHaveLength(1);
    expect(api.calls.every((c) => c.chunk.dryRun)).toBe(true);
    expect(api.applied.size).toBe(0);
  });

  it('--strict checks everything first, then applies', async () => {
    const api = new FakeApi(new Set(ids(4)));
    const outcome = await runLoad(options(api, ids(4).map((id, i) => row(i + 1, id)), { strict: true, chunkRows: 2 }));
    expect(outcome).toMatchObject({ exitCode: 0, applied: true, strictFailed: false });
    expect(api.calls.map((c) => c.chunk.dryRun)).toEqual([true, true, false, false]);
    expect(api.applied.size).toBe(4);
  });

  it('--strict --dry-run stops after the check', async () => {
    const api = new FakeApi();
    const outcome = await runLoad(options(api, [row(1, 'u0')], { strict: true, dryRun: true }));
    expect(outcome).toMatchObject({ exitCode: 0, applied: false });
    expect(api.calls).toHaveLength(1);
  });

  it('exits 3 when a request failed', async () => {
    const api = new FakeApi(new Set(['u0']), (requestId) => ({ requestId, status: 'failed', reason: 'compactor: boom' }));
    const outcome = await runLoad(options(api, [row(1, 'u0')]));
    expect(outcome.exitCode).toBe(3);
    expect(outcome.receipts?.failed).toEqual([{ requestId: 'req-1', reason: 'compactor: boom' }]);
  });

  it('keeps the server\'s warning on accepted requests, once', async () => {
    const api = new FakeApi(new Set(ids(10)));
    api.warning = 'no compactor has been seen in the last 30 s';
    const outcome = await runLoad(options(api, ids(10).map((id, i) => row(i + 2, id)), { chunkRows: 3, wait: false }));
    expect(outcome.pass.requestIds.length).toBeGreaterThan(1);
    expect(outcome.pass.warnings).toEqual([api.warning]);
  });

  it('does not wait with wait: false', async () => {
    const api = new FakeApi(new Set(['u0']), () => {
      throw new Error('asked');
    });
    const outcome = await runLoad(options(api, [row(1, 'u0')], { wait: false }));
    expect(outcome.exitCode).toBe(0);
    expect(outcome.receipts).toBeUndefined();
  });

  it('refuses an unknown tenant before reading anything', async () => {
    const api = new FakeApi();
    await expect(runLoad(options(api, [row(1, 'u0')], { tenantId: 'nobody' }))).rejects.toThrow('tenant "nobody" does not exist');
    expect(api.calls).toHaveLength(0);
  });

  it('stops at a failed request and says how far it got', async () => {
    const api = new FakeApi(new Set(ids(10)), undefined, 3);
    const err = await runLoad(options(api, ids(10).map((id, i) => row(i + 1, id)), { chunkRows: 2, inFlight: 1 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LoadApiError);
    expect((err as Error).message).toBe('the load request failed with HTTP 500 (stopped after 4 rows were accepted in 2 requests; loading the same file again is safe)');
    expect(api.calls).toHaveLength(3);
  });

  it('reports progress per phase', async () => {
    const events: string[] = [];
    const progress: LoadProgress = {
      start: (phase, total, unit) => events.push(`start ${phase} ${total} ${unit}`),
      update: () => undefined,
      stop: () => events.push('stop'),
    };
    await runLoad(options(new FakeApi(new Set(['u0'])), [row(1, 'u0')], { strict: true, progress }));
    expect(events).toEqual(['start checking 10 bytes', 'stop', 'start loading 10 bytes', 'stop', 'start waiting 1 requests', 'stop']);
  });
});

describe('waitForReceipts', () => {
  it('polls until every request is verified', async () => {
    const api = new FakeApi(new Set(), (requestId, asked) => ({ requestId, status: asked > 4 ? 'verified' : asked > 2 ? 'applied' : 'pending' }));
    const r = await waitForReceipts(api, ['a', 'b'], { timeoutMs: 5_000, pollMs: 1 });
    expect(r).toMatchObject({ verified: 2, failed: [], pending: [] });
  });

  it('treats a request the server does not know yet as pending', async () => {
    const api = new FakeApi(new Set(), (requestId, asked) => (asked > 1 ? { requestId, status: 'verified' } : undefined));
    expect(await waitForReceipts(api, ['a'], { timeoutMs: 5_000, pollMs: 1 })).toMatchObject({ verified: 1 });
  });

  it('gives up at the timeout and lists what is pending', async () => {
    let clock = 0;
    const api = new FakeApi(new Set(), (requestId) => ({ requestId, status: requestId === 'a' ? 'verified' : 'pending' }));
    const r = await waitForReceipts(api, ['a', 'b'], {
      timeoutMs: 2_000,
      pollMs: 500,
      now: () => clock,
      sleep: async (ms) => {
        clock += ms;
      },
    });
    expect(r).toMatchObject({ verified: 1, pending: ['b'], elapsedMs: 2_000 });
  });

  it('exits 4 from runLoad when the receipts time out', async () => {
    const api = new FakeApi(new Set(['u0']), (requestId) => ({ requestId, status: 'applied' }));
    const outcome = await runLoad(options(api, [row(1, 'u0')], { timeoutMs: 20, pollMs: 5 }));
    expect(outcome.exitCode).toBe(4);
    expect(outcome.receipts?.pending).toEqual(['req-1']);
  });
});
