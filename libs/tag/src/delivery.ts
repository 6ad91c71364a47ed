// Delivery of serialized messages to the collector: a bounded queue, batches on size (count
// and characters) or age, one request in flight at a time, retries with exponential backoff
// and jitter, and a last send by beacon when the page is hidden. Pure logic: transport,
// clock and timers are injected.

export interface DeliveryDeps {
  /** POSTs a body; resolves with the HTTP status, rejects on a network error. */
  post(body: string): Promise<number>;
  /** Queues a body for sending after the page is gone (navigator.sendBeacon); false when refused. */
  beacon(body: string): boolean;
  /** The request body for a batch of serialized messages. */
  wrap(messages: readonly string[]): string;
  now(): number;
  random(): number;
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
  /** a batch is sent as soon as it holds this many messages */
  batchSize: number;
  /** …or when its oldest message waited this long */
  flushIntervalMs: number;
  /** oldest messages are dropped beyond this many */
  maxQueue: number;
  /** characters of messages per request (beacons and keepalive requests are capped at 64 KB) */
  maxBatchChars: number;
  /** a batch is given up after this many failed attempts */
  maxAttempts: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
}

export interface Delivery {
  push(message: string): void;
  /** Sends what is queued now (respecting a running backoff). */
  flush(): void;
  /** The page is being hidden: everything queued goes out by beacon now. */
  flushOnHide(): void;
  /** Forgets everything queued and stops timers (opt-out). Nothing is sent after this. */
  clear(): void;
  /** queued, not yet sent */
  size(): number;
  /** messages dropped (queue full, permanently refused, or out of attempts) */
  dropped(): number;
}

export function createDelivery(deps: DeliveryDeps): Delivery {
  let queue: string[] = [];
  let inFlight = false;
  let attempts = 0;
  let backoffUntil = 0;
  let timer: unknown = null;
  let dropped = 0;
  /** bumped by clear(): answers to requests sent before it are ignored */
  let epoch = 0;

  function schedule(ms: number) {
    if (timer !== null) return;
    timer = deps.setTimer(() => {
      timer = null;
      send();
    }, ms);
  }

  /** Takes the next batch off the queue: at least one message, then up to the limits. */
  function take(): string[] {
    let n = 0;
    let chars = 0;
    while (n < queue.length && n < deps.batchSize) {
      const len = queue[n]!.length + 1;
      if (n > 0 && chars + len > deps.maxBatchChars) break;
      chars += len;
      n++;
    }
    return queue.splice(0, n);
  }

  function trim() {
    const over = queue.length - deps.maxQueue;
    if (over > 0) {
      queue.splice(0, over);
      dropped += over;
    }
  }

  function send() {
    if (inFlight || queue.length === 0) return;
    const wait = backoffUntil - deps.now();
    if (wait > 0) return schedule(wait);
    const batch = take();
    const mine = epoch;
    inFlight = true;
    const done = (status: number | null) => {
      if (mine !== epoch) return;
      inFlight = false;
      // NOTE: 2xx, or a refusal that a retry cannot fix (bad request, unknown write key, too
      // large): the batch is done either way. Network errors, 408, 429 and 5xx are retried.
      const retriable = status === null || status === 408 || status === 429 || status >= 500;
      if (!retriable) {
        if (status !== null && status >= 300) dropped += batch.length;
        attempts = 0;
        backoffUntil = 0;
      } else if (++attempts >= deps.maxAttempts) {
        dropped += batch.length;
        attempts = 0;
        backoffUntil = 0;
      } else {
        // NOTE: back to the front, order kept; the bound still holds (oldest dropped first).
        queue = batch.concat(queue);
        trim();
        const exp = Math.min(deps.backoffMaxMs, deps.backoffBaseMs * 2 ** (attempts - 1));
        backoffUntil = deps.now() + Math.round(exp * (0.5 + deps.random() / 2));
      }
      if (queue.length === 0) return;
      const backoff = backoffUntil - deps.now();
      if (backoff > 0) schedule(backoff);
      else if (queue.length >= deps.batchSize) send();
      else schedule(deps.flushIntervalMs);
    };
    deps.post(deps.wrap(batch)).then(done, () => done(null));
  }

  return {
    push(message) {
      queue.push(message);
      trim();
      if (queue.length >= deps.batchSize) send();
      else schedule(deps.flushIntervalMs);
    },
    flush: send,
    flushOnHide() {
      while (queue.length > 0) {
        const body = deps.wrap(take());
        // NOTE: a refused beacon (quota) falls back to a keepalive POST: same lifetime guarantee.
        if (!deps.beacon(body)) deps.post(body).catch(() => undefined);
      }
    },
    clear() {
      epoch++;
      queue = [];
      inFlight = false;
      attempts = 0;
      backoffUntil = 0;
      if (timer !== null) deps.clearTimer(timer);
      timer = null;
    },
    size: () => queue.length,
    dropped: () => dropped,
  };
}
