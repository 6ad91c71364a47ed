// Sends generated demo batches to a collector's Segment-compatible `POST /v1/batch`: bounded
// concurrency, retries with backoff on 5xx / network errors, fail fast on 4xx, optional barriers.
import cliProgress from 'cli-progress';
import type { SegmentMessage } from './segment-types.js';

export interface SendBatch {
  tenant: string;
  messages: readonly SegmentMessage[];
}

export interface RetryOptions {
  /** attempts per batch, the first one included */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export interface SendOptions {
  baseUrl: string;
  /** tenant → write key */
  writeKeys: Record<string, string>;
  batches: readonly SendBatch[];
  /** batches in flight at once; default 8 */
  concurrency?: number;
  onProgress?: (sentEvents: number, total: number) => void;
  /**
   * Awaited before batch `index` is sent, for every index, in index order. At an index listed in
   * `barriers` it is called only once every earlier batch has completed with a 2xx, and no later
   * batch starts before it resolves — so "before" and "after" that point are well defined.
   */
  beforeBatch?: (index: number) => Promise<void>;
  barriers?: readonly number[];
  retry?: Partial<RetryOptions>;
  /** per attempt; default 30 s */
  timeoutMs?: number;
}

export interface SendStats {
  /** events in batches the collector accepted with a 2xx (rejected ones included) */
  events: number;
  batches: number;
  /** attempts beyond the first, over all batches */
  retries: number;
  elapsedMs: number;
  /** per-event errors the collector reported in its 2xx responses */
  rejected: number;
  /** up to 10 of those errors, as the collector worded them */
  rejectedSamples: string[];
}

export const DEFAULT_CONCURRENCY = 8;
export const DEFAULT_RETRY: RetryOptions = { attempts: 5, baseDelayMs: 250, maxDelayMs: 5_000 };
const DEFAULT_TIMEOUT_MS = 30_000;
const MAX_SERVER_MESSAGE_CHARS = 300;
const MAX_REJECTED_SAMPLES = 10;

/** A batch the collector refused for good (4xx), or one that kept failing after every retry. */
export class SendError extends Error {
  constructor(
    message: string,
    readonly batchIndex: number,
    readonly tenant: string,
    readonly status: number | null,
  ) {
    super(message);
    this.name = 'SendError';
  }
}

export function basicAuth(writeKey: string): string {
  return `Basic ${Buffer.from(`${writeKey}:`).toString('base64')}`;
}

/** The server's own words from an error body: `message` / `error` of a JSON body, else the text. */
function serverMessage(body: string): string {
  let text = body.trim();
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed !== null && typeof parsed === 'object') {
      const rec = parsed as Record<string, unknown>;
      const parts = [rec['error'], rec['message']].filter((v): v is string => typeof v === 'string');
      if (parts.length > 0) text = [...new Set(parts)].join(': ');
    }
  } catch {
    // not JSON: keep the text
  }
  if (text.length === 0) return '(empty body)';
  return text.length > MAX_SERVER_MESSAGE_CHARS ? `${text.slice(0, MAX_SERVER_MESSAGE_CHARS)}…` : text;
}

/** Per-event errors in a 2xx body: `rejected` / `errors` as a list or a count. */
function rejectedOf(body: string): { count: number; samples: string[] } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return { count: 0, samples: [] };
  }
  if (parsed === null || typeof parsed !== 'object') return { count: 0, samples: [] };
  const rec = parsed as Record<string, unknown>;
  const field = rec['rejected'] ?? rec['errors'];
  if (typeof field === 'number' && Number.isFinite(field)) return { count: field, samples: [] };
  if (!Array.isArray(field)) return { count: 0, samples: [] };
  const samples = field.slice(0, MAX_REJECTED_SAMPLES).map((e: unknown) => (typeof e === 'string' ? e : JSON.stringify(e)));
  return { count: field.length, samples };
}

function isRetriableStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

function backoffMs(attempt: number, retry: RetryOptions, retryAfter: string | null): number {
  const exp = Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** (attempt - 1));
  // Full jitter keeps concurrent retries from hitting a recovering collector in lockstep.
  const jittered = Math.round(exp / 2 + Math.random() * (exp / 2));
  const seconds = retryAfter === null ? NaN : Number(retryAfter);
  return Number.isFinite(seconds) && seconds > 0 ? Math.max(jittered, Math.min(seconds * 1000, retry.maxDelayMs)) : jittered;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

export async function sendTraffic(opts: SendOptions): Promise<SendStats> {
  const started = performance.now();
  const concurrency = Math.max(1, Math.floor(opts.concurrency ?? DEFAULT_CONCURRENCY));
  const retry: RetryOptions = { ...DEFAULT_RETRY, ...opts.retry };
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const url = `${opts.baseUrl.replace(/\/+$/, '')}/v1/batch`;
  const barriers = new Set(opts.barriers ?? []);
  const total = opts.batches.reduce((s, b) => s + b.messages.length, 0);

  const missing = [...new Set(opts.batches.map((b) => b.tenant))].filter((t) => !opts.writeKeys[t]);
  if (missing.length > 0) throw new Error(`no write key for tenant(s): ${missing.join(', ')}`);

  const stop = new AbortController();
  const stats: SendStats = { events: 0, batches: 0, retries: 0, elapsedMs: 0, rejected: 0, rejectedSamples: [] };
  let failure: SendError | null = null;

  // NOTE: Node's global fetch (undici) keeps connections alive by default, so the pool reuses
  // up to `concurrency` sockets instead of opening one per batch.
  const sendOne = async (index: number, batch: SendBatch): Promise<void> => {
    const writeKey = opts.writeKeys[batch.tenant] ?? '';
    let lastProblem = '';
    for (let attempt = 1; attempt <= retry.attempts; attempt++) {
      if (stop.signal.aborted) return;
      let retryAfter: string | null = null;
      try {
        const res = await fetch(url, {
          method: 'POST',
          headers: {
            authorization: basicAuth(writeKey),
            'content-type': 'application/json',
            'user-agent': 'tracklane-demo/0.1',
          },
          body: JSON.stringify({ batch: batch.messages, sentAt: new Date().toISOString() }),
          signal: AbortSignal.any([stop.signal, AbortSignal.timeout(timeoutMs)]),
        });
        const body = await res.text();
        if (res.ok) {
          const rejected = rejectedOf(body);
          stats.events += batch.messages.length;
          stats.batches++;
          stats.rejected += rejected.count;
          for (const s of rejected.samples) {
            if (stats.rejectedSamples.length < MAX_REJECTED_SAMPLES) stats.rejectedSamples.push(s);
          }
          opts.onProgress?.(stats.events, total);
          return;
        }
        const why = `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}: ${serverMessage(body)}`;
        if (!isRetriableStatus(res.status)) {
          throw new SendError(`collector rejected batch ${index} (tenant ${batch.tenant}): ${why}`, index, batch.tenant, res.status);
        }
        lastProblem = why;
        retryAfter = res.headers.get('retry-after');
      } catch (err) {
        if (err instanceof SendError) throw err;
        if (stop.signal.aborted) return;
        lastProblem = err instanceof Error ? `${err.message}${err.cause instanceof Error ? ` (${err.cause.message})` : ''}` : String(err);
      }
      if (attempt < retry.attempts) {
        stats.retries++;
        await sleep(backoffMs(attempt, retry, retryAfter), stop.signal);
      }
    }
    throw new SendError(
      `batch ${index} (tenant ${batch.tenant}) failed after ${retry.attempts} attempts: ${lastProblem}`,
      index,
      batch.tenant,
      null,
    );
  };

  const inFlight = new Set<Promise<void>>();
  const launch = (index: number, batch: SendBatch): void => {
    const p: Promise<void> = sendOne(index, batch)
      .catch((err: unknown) => {
        // NOTE: the first failure wins; aborting the rest makes the pool drain quickly.
        failure ??= err instanceof SendError ? err : new SendError(String(err), index, batch.tenant, null);
        stop.abort();
      })
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  };

  for (let index = 0; index < opts.batches.length && !failure; index++) {
    const batch = opts.batches[index];
    if (!batch) continue;
    if (barriers.has(index)) await Promise.all(inFlight);
    while (inFlight.size >= concurrency && !failure) await Promise.race(inFlight);
    if (failure) break;
    if (opts.beforeBatch) await opts.beforeBatch(index);
    launch(index, batch);
  }
  await Promise.all(inFlight);
  if (failure) throw failure;
  stats.elapsedMs = Math.round(performance.now() - started);
  return stats;
}

export interface ProgressReporter {
  update(sentEvents: number): void;
  stop(): void;
}

interface ProgressStream extends NodeJS.WritableStream {
  isTTY?: boolean;
}

/**
 * A progress bar on stderr; when stderr is not a terminal (CI, pipes) it prints one plain line
 * per 10% instead, so logs stay readable.
 */
export function createProgressBar(total: number, stream: ProgressStream = process.stderr): ProgressReporter {
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        stream,
        format: 'sending  [{bar}] {percentage}% | {value}/{total} events | {eta_formatted} left',
        hideCursor: true,
        clearOnComplete: false,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0);
    let stopped = false;
    return {
      update: (sent) => bar.update(sent),
      stop: () => {
        if (stopped) return;
        stopped = true;
        bar.stop();
      },
    };
  }
  let lastDecile = 0;
  return {
    update: (sent) => {
      const decile = total > 0 ? Math.floor((Math.min(sent, total) / total) * 10) : 10;
      if (decile <= lastDecile) return;
      lastDecile = decile;
      stream.write(`sent ${sent}/${total} events (${decile * 10}%)\n`);
    },
    stop: () => undefined,
  };
}
