// Drives one `tracklane load`: reads the file's lines, sends the good rows in chunks with a few
// requests in flight, maps the server's rejections back to line numbers, then waits for the
// receipts. --strict validates every line (here and by a server dry run) before applying any.
import type { BadLine, LoadLine, LoadSubject } from './load-row.js';
import { LoadApiError, MAX_CHUNK_BYTES, MAX_CHUNK_ROWS, type LoadClient, type LoadReceipt } from './load-client.js';
import type { LoadSource } from './load-file.js';
import { silentProgress, type LoadProgress } from './load-progress.js';

export interface LoadRunOptions {
  client: LoadClient;
  tenantId: string;
  subject: LoadSubject;
  /** opens the file afresh for each pass */
  open: () => Promise<LoadSource>;
  /** the file's size in bytes (the progress bar's total) */
  totalBytes: number;
  insertMissing: boolean;
  dryRun: boolean;
  strict: boolean;
  /** wait for every request's receipt to be verified or failed */
  wait: boolean;
  timeoutMs: number;
  progress?: LoadProgress;
  chunkRows?: number;
  chunkBytes?: number;
  /** requests in flight at most */
  inFlight?: number;
  pollMs?: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export interface PassResult {
  dryRun: boolean;
  /** data lines read: rows, bad lines and lines that change nothing (not the header, not blank lines) */
  rowsRead: number;
  /** rows sent to the server */
  sent: number;
  accepted: number;
  /** accepted ids with no stored user/account */
  missing: number;
  noop: number;
  /** in file order */
  bad: BadLine[];
  requestIds: string[];
  /** the server's notes on accepted requests, each once */
  warnings: string[];
  elapsedMs: number;
}

export interface ReceiptsResult {
  verified: number;
  failed: { requestId: string; reason: string }[];
  /** neither verified nor failed when the timeout passed */
  pending: string[];
  elapsedMs: number;
}

export interface LoadOutcome {
  /** the last pass run: the validation dry run when --strict stopped, else the one that applied */
  pass: PassResult;
  /** whether rows were submitted for real */
  applied: boolean;
  /** --strict found bad lines: nothing was applied */
  strictFailed: boolean;
  receipts?: ReceiptsResult;
  /** 0 ok, 1 bad lines under --strict, 3 a request failed, 4 timed out waiting */
  exitCode: 0 | 1 | 3 | 4;
}

export async function runLoad(opts: LoadRunOptions): Promise<LoadOutcome> {
  const progress = opts.progress ?? silentProgress;
  await opts.client.checkTenant(opts.tenantId);
  if (opts.strict) {
    const check = await runPass(opts, { dryRun: true, label: opts.dryRun ? 'dry run' : 'checking' });
    if (check.bad.length > 0) return { pass: check, applied: false, strictFailed: true, exitCode: 1 };
    if (opts.dryRun) return { pass: check, applied: false, strictFailed: false, exitCode: 0 };
  }
  const pass = await runPass(opts, { dryRun: opts.dryRun, label: opts.dryRun ? 'dry run' : 'loading' });
  // NOTE: under --strict a line can still be rejected here if the file or the server changed
  // since the check; the other rows are applied by then, so it is reported, not hidden.
  const strictFailed = opts.strict && pass.bad.length > 0;
  if (opts.dryRun || !opts.wait || pass.requestIds.length === 0) {
    return { pass, applied: !opts.dryRun, strictFailed, exitCode: strictFailed ? 1 : 0 };
  }
  const receipts = await waitForReceipts(opts.client, pass.requestIds, { ...opts, progress });
  const exitCode = receipts.failed.length > 0 ? 3 : receipts.pending.length > 0 ? 4 : strictFailed ? 1 : 0;
  return { pass, applied: true, strictFailed, receipts, exitCode };
}

interface Pending {
  line: number;
  id: string;
  set: Record<string, string | null>;
}

/** One pass over the file: every line read, good rows sent (for real or as a dry run). */
export async function runPass(opts: LoadRunOptions, pass: { dryRun: boolean; label: string }): Promise<PassResult> {
  const progress = opts.progress ?? silentProgress;
  const now = opts.now ?? Date.now;
  const maxRows = opts.chunkRows ?? MAX_CHUNK_ROWS;
  const maxBytes = opts.chunkBytes ?? MAX_CHUNK_BYTES;
  const maxInFlight = opts.inFlight ?? 3;
  const started = now();
  const result: PassResult = { dryRun: pass.dryRun, rowsRead: 0, sent: 0, accepted: 0, missing: 0, noop: 0, bad: [], requestIds: [], warnings: [], elapsedMs: 0 };
  // NOTE: one line per id: two lines for one id in one load would race (same request time), so
  // the later one is a bad line. Costs one map entry per row.
  const firstLineOf = new Map<string, number>();
  let chunk: Pending[] = [];
  let chunkBytes = 0;
  const inFlight = new Set<Promise<void>>();
  let failure: unknown;

  const send = async (rows: Pending[]): Promise<void> => {
    const res = await opts.client.load(opts.tenantId, {
      subject: opts.subject,
      rows: rows.map((r) => ({ id: r.id, set: r.set })),
      insertMissing: opts.insertMissing,
      dryRun: pass.dryRun,
    });
    result.sent += rows.length;
    result.accepted += res.accepted;
    result.missing += res.missing;
    for (const r of res.rejected) {
      const row = rows[r.index];
      if (row) result.bad.push({ line: row.line, reason: `rejected by the server: ${r.reason}` });
    }
    if (res.requestId !== null) result.requestIds.push(res.requestId);
    if (res.warning !== undefined && !result.warnings.includes(res.warning)) result.warnings.push(res.warning);
  };

  const flush = async (): Promise<void> => {
    if (chunk.length === 0) return;
    const rows = chunk;
    chunk = [];
    chunkBytes = 0;
    while (inFlight.size >= maxInFlight) await Promise.race(inFlight);
    if (failure !== undefined) return;
    // NOTE: the first failure is kept and rethrown by the reading loop; no rejection goes unhandled.
    const p: Promise<void> = send(rows)
      .catch((err: unknown) => {
        failure ??= err;
      })
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  };

  const source = await opts.open();
  progress.start(pass.label, opts.totalBytes, 'bytes');
  try {
    for await (const line of source.lines) {
      if (failure !== undefined) break;
      result.rowsRead++;
      const row = accept(line, firstLineOf, result);
      if (row) {
        const bytes = Buffer.byteLength(JSON.stringify({ id: row.id, set: row.set })) + 1;
        if (chunk.length > 0 && (chunk.length >= maxRows || chunkBytes + bytes > maxBytes)) await flush();
        chunk.push(row);
        chunkBytes += bytes;
      }
      if (result.rowsRead % 1000 === 0) progress.update(source.bytesRead(), { rows: result.rowsRead, bad: result.bad.length });
    }
    if (failure === undefined) await flush();
    await Promise.all(inFlight);
  } finally {
    progress.update(source.bytesRead(), { rows: result.rowsRead, bad: result.bad.length });
    progress.stop();
  }
  if (failure !== undefined) throw withProgressNote(failure, result, pass.dryRun);
  result.bad.sort((a, b) => a.line - b.line);
  result.elapsedMs = now() - started;
  return result;
}

function accept(line: LoadLine, firstLineOf: Map<string, number>, result: PassResult): Pending | undefined {
  if (line.kind === 'bad') {
    result.bad.push({ line: line.line, reason: line.reason });
    return undefined;
  }
  if (line.kind === 'noop') {
    result.noop++;
    return undefined;
  }
  const first = firstLineOf.get(line.id);
  if (first !== undefined) {
    result.bad.push({ line: line.line, reason: `same id as line ${first}: one line per id` });
    return undefined;
  }
  firstLineOf.set(line.id, line.line);
  return { line: line.line, id: line.id, set: line.set };
}

/** Says how far a real pass got before an API error, so the user knows what was applied. */
function withProgressNote(err: unknown, result: PassResult, dryRun: boolean): unknown {
  if (!(err instanceof LoadApiError) || dryRun || result.requestIds.length === 0) return err;
  return new LoadApiError(
    err.kind,
    `${err.message} (stopped after ${result.accepted} rows were accepted in ${result.requestIds.length} requests; loading the same file again is safe)`,
    err.networkCode,
  );
}

export interface WaitOptions {
  timeoutMs: number;
  pollMs?: number;
  progress?: LoadProgress;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/** Polls each request's receipt until it is verified or failed, or the timeout passes. */
export async function waitForReceipts(client: LoadClient, requestIds: readonly string[], opts: WaitOptions): Promise<ReceiptsResult> {
  const progress = opts.progress ?? silentProgress;
  const now = opts.now ?? Date.now;
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const started = now();
  const deadline = started + opts.timeoutMs;
  const pending = new Set(requestIds);
  const result: ReceiptsResult = { verified: 0, failed: [], pending: [], elapsedMs: 0 };
  progress.start('waiting', requestIds.length, 'requests');
  try {
    for (;;) {
      const ids = [...pending];
      // NOTE: at most 4 receipt lookups at a time, so a big load does not flood the server.
      for (let i = 0; i < ids.length; i += 4) {
        const receipts = await Promise.all(ids.slice(i, i + 4).map(async (id) => [id, await client.receipt(id)] as const));
        for (const [id, receipt] of receipts) settle(id, receipt, pending, result);
      }
      progress.update(requestIds.length - pending.size);
      if (pending.size === 0 || now() >= deadline) break;
      await sleep(Math.min(opts.pollMs ?? 500, Math.max(0, deadline - now())));
    }
  } finally {
    progress.stop();
  }
  result.pending = [...pending];
  result.elapsedMs = now() - started;
  return result;
}

function settle(id: string, receipt: LoadReceipt | undefined, pending: Set<string>, result: ReceiptsResult): void {
  if (receipt?.status === 'verified') {
    result.verified++;
    pending.delete(id);
  } else if (receipt?.status === 'failed') {
    result.failed.push({ requestId: id, reason: receipt.reason ?? 'no reason given' });
    pending.delete(id);
  }
}
