// The generic Kafka runner of a pipeline (STYLE.md §2–§5): consume a partition's batch,
// decode, run the pipeline, count and route each result (libs/pipeline/result-handler.ts),
// hand results to the bound outputs (next topic or sink) and the dead-letter output, and commit
// offset max+1 only after all of that resolved — in order per partition. Retriable stage results (e.g. tenant flags unavailable: fail closed) pause the
// partition with bounded backoff instead of skipping; unknown errors are thrown so KafkaJS
// restarts the consumer and the uncommitted records are redelivered. A consumer KafkaJS gives up
// on is rebuilt in process: a worker ends only on stop().
import type { Consumer, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import { safeErrorFields } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { DeadLetter } from '../events/dead-letter.js';
import type { PipelineMetrics } from '../pipeline/metrics.js';
import type { Pipeline } from '../pipeline/pipeline.js';
import { createResultHandler } from '../pipeline/result-handler.js';

export interface ConsumedRecord {
  topic: string;
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, string>;
}

export type DecodeResult<T> = { ok: true; value: T } | { ok: false; error: string };

/**
 * One event of a record that holds many (libs/kafka/record-codec.ts decode*Record): read, or
 * refused on its own. `bytes` is the event as a record of its own, what its dead letter carries.
 */
export type DecodedEvent<T> = { ok: true; value: T; bytes: () => Buffer } | { ok: false; error: string; bytes: () => Buffer };

/** A dead letter and the record it came from (the DLQ topic carries the record's own bytes). */
export interface RecordDeadLetter {
  record: ConsumedRecord;
  letter: DeadLetter;
}

/** Where a stage's results go: the next topic (encode + produce, acked) or a sink. */
export interface StageOutput<Out> {
  write(items: readonly { record: ConsumedRecord; value: Out }[]): Promise<void>;
}

export interface DeadLetterOutput {
  write(letters: readonly RecordDeadLetter[]): Promise<void>;
}

export interface StageWorkerOptions<In, Out> {
  /** worker name, used in logs and the consumer's own metrics (rebuilds, lag, batch time) */
  name: string;
  kafka: Kafka;
  groupId: string;
  inputTopic: string;
  /**
   * A record → its input: a function for records of one input each; `{ record }` for records that
   * may hold many events (each is run, routed and dead-lettered on its own, in order; the record is
   * committed once all of them were handed on). The record is passed too, for inputs whose meaning
   * is in the headers (dead letters).
   */
  decode: ((value: Buffer, record: ConsumedRecord) => Promise<DecodeResult<In>>) | { record: (value: Buffer, record: ConsumedRecord) => Promise<DecodeResult<DecodedEvent<In>[]>> };
  /** the stages each decoded record runs through; results are counted per stage (result-handler.ts) */
  pipeline: Pipeline<In, Out>;
  /** ids for the dead_letters row when a decoded record fails */
  describe: (input: In) => { tenantId: string | null; eventId: string | null };
  output: StageOutput<Out>;
  deadLetters: DeadLetterOutput;
  metrics: PipelineMetrics;
  logger: Logger;
  /** partitions processed at once (each one batch at a time): bounds batches in flight */
  partitionsConsumedConcurrently?: number;
  /** backoff for `retry` results; retried until it succeeds or the worker stops */
  retryInitialMs?: number;
  retryMaxMs?: number;
  /** max bytes fetched per partition per batch: bounds memory */
  maxBytesPerPartition?: number;
  sessionTimeoutMs?: number;
  /**
   * called when the worker cannot go on and a restart of the process would do better: the broker
   * refuses the credentials while the consumer is rebuilt (a rotated Secret is read at start)
   */
  onFatal?: (error: Error) => void;
  /** first wait between attempts to rebuild a consumer KafkaJS gave up on (doubles up to 30 s) */
  rebuildInitialMs?: number;
}

export interface StageWorker {
  start(): Promise<void>;
  /** stop fetching, let the batch in hand finish and commit, disconnect. Idempotent. */
  stop(): Promise<void>;
  /** true once the consumer joined its group and until stop */
  ready(): boolean;
}

export function createStageWorker<In, Out>(opts: StageWorkerOptions<In, Out>): StageWorker {
  const log = opts.logger.child({ worker: opts.name });
  const retryInitialMs = opts.retryInitialMs ?? 100;
  const retryMaxMs = opts.retryMaxMs ?? 2_000;
  let joined = false;
  let stopping: Promise<void> | undefined;
  let rebuilding: Promise<void> | undefined;
  const stopSignal = new AbortController();
  const results = createResultHandler({ stages: opts.pipeline.stages, metrics: opts.metrics });
  const decodeRecord: (value: Buffer, record: ConsumedRecord) => Promise<DecodeResult<DecodedEvent<In>[]>> =
    typeof opts.decode === 'function' ? oneInputPerRecord(opts.decode) : opts.decode.record;

  function newConsumer(): Consumer {
    const c = opts.kafka.consumer({
      groupId: opts.groupId,
      sessionTimeout: opts.sessionTimeoutMs ?? 10_000,
      heartbeatInterval: 1_000,
      maxBytesPerPartition: opts.maxBytesPerPartition ?? 1_048_576,
      maxWaitTimeInMs: 100,
      retry: { retries: 8, initialRetryTime: 200, maxRetryTime: 5_000 },
    });
    c.on(c.events.GROUP_JOIN, () => {
      if (c === consumer) joined = true;
    });
    c.on(c.events.CRASH, (e) => {
      const { error, restart } = e.payload;
      log.error({ ...safeErrorFields(error), restart }, 'consumer crashed');
      // TRICKY: KafkaJS gives up on a consumer after a non-retriable error (seen on broker
      // restarts): it has disconnected it and will not start it again. The worker
      // rebuilds it in process — a new consumer rejoins the group and resumes from the committed
      // offsets, as a restarted process would, without the orchestrator's crash-loop delays.
      if (!restart && !stopping && c === consumer) rebuilding ??= rebuild(error).finally(() => (rebuilding = undefined));
    });
    return c;
  }
  let consumer: Consumer = newConsumer();

  async function run(c: Consumer): Promise<void> {
    await c.connect();
    await c.subscribe({ topic: opts.inputTopic, fromBeginning: true });
    await c.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: opts.partitionsConsumedConcurrently ?? 2,
      eachBatch: handleBatch(c),
    });
  }

  async function rebuild(cause: Error): Promise<void> {
    joined = false;
    let delay = opts.rebuildInitialMs ?? 1_000;
    for (let attempt = 1; !stopping; attempt++) {
      await consumer.disconnect().catch(() => undefined);
      consumer = newConsumer();
      try {
        await run(consumer);
        opts.metrics.consumerRebuilds.inc({ stage: opts.name });
        log.warn({ ...safeErrorFields(cause), attempt }, 'consumer rebuilt after KafkaJS gave up on it; resuming from the committed offsets');
        return;
      } catch (err) {
        // NOTE: refused credentials are not a fault to ride out: the process reads its Secret at start
        if (err instanceof Error && err.name === 'KafkaJSSASLAuthenticationError') {
          opts.onFatal?.(err);
          return;
        }
        log.warn({ ...safeErrorFields(err), attempt }, 'consumer cannot be rebuilt yet; retrying');
        await sleep(delay, stopSignal.signal);
        delay = Math.min(delay * 2, 30_000);
      }
    }
  }

  /** the batch handler of one consumer (its commits go through that consumer) */
  const handleBatch = (consumer: Consumer) => async (payload: EachBatchPayload): Promise<void> => {
    const { batch, heartbeat, isRunning, isStale, resolveOffset } = payload;
    const { topic, partition } = batch;
    const timer = opts.metrics.batchSeconds.startTimer({ stage: opts.name });
    // NOTE: counted per Kafka batch, added to the metrics whenever it hands on (see ResultHandler.batch)
    const routing = results.batch();
    let pending: { record: ConsumedRecord; value: Out }[] = [];
    let letters: RecordDeadLetter[] = [];
    let lastDone: string | undefined;

    // Writes what is pending, then commits up to and including `upTo`.
    const handOnAndCommit = async (upTo: string | undefined) => {
      routing.commit();
      if (upTo === undefined) return;
      const [outs, dls] = [pending, letters];
      pending = [];
      letters = [];
      // NOTE: an output can take long (the compactor's rounds run for seconds to minutes):
      // keep heartbeating so the group does not hand the partition to another member meanwhile.
      const beating = setInterval(() => void heartbeat().catch(() => undefined), 1_000);
      try {
        await Promise.all([outs.length > 0 ? opts.output.write(outs) : undefined, dls.length > 0 ? opts.deadLetters.write(dls) : undefined]);
      } catch (err) {
        // NOTE: thrown on to KafkaJS (which logs it and redelivers from the last commit), but
        // without its message: a ClickHouse error can quote row data.
        const safe = safeErrorFields(err);
        log.error({ ...safe, topic, partition }, 'output failed; the batch will be redelivered');
        throw new Error(`${opts.name} output failed (${safe.type ?? safe.error}${safe.code ? ` code ${safe.code}` : ''})`);
      } finally {
        clearInterval(beating);
      }
      results.handedOn(outs.length, dls.map((d) => d.letter));
      // NOTE: after a revocation the new owner resumes from the last commit; committing here
      // would race it. What was just written is redelivered there (idempotent downstream).
      if (isStale()) return;
      await consumer.commitOffsets([{ topic, partition, offset: (BigInt(upTo) + 1n).toString() }]);
      resolveOffset(upTo);
      lastDone = undefined;
    };

    for (const message of batch.messages) {
      if (!isRunning() || isStale()) break;
      const record = toRecord(topic, partition, message);
      if (record.value === null) {
        letters.push({ record, letter: results.unreadable(null, 'record has no value', null) });
        lastDone = record.offset;
        continue;
      }
      const decoded = await decodeRecord(record.value, record);
      if (!decoded.ok) {
        letters.push({ record, letter: results.unreadable(record.value, 'record cannot be decoded', decoded.error) });
        lastDone = record.offset;
        continue;
      }
      for (const item of decoded.value) {
        if (!item.ok) {
          const bytes = item.bytes();
          letters.push({ record: { ...record, value: bytes }, letter: results.unreadable(bytes, 'event cannot be decoded', item.error) });
          continue;
        }
        const input = item.value;
        const ids = opts.describe(input);
        let retriedAt: string | undefined;
        for (let attempt = 1; ; attempt++) {
          const ran = opts.pipeline.run(input);
          const routed = routing.route(ran instanceof Promise ? await ran : ran, ids, retriedAt === undefined ? undefined : { attempt, retriedAt });
          if (routed.kind === 'ok') {
            pending.push({ record, value: routed.value });
            break;
          }
          if (routed.kind === 'drop') break;
          if (routed.kind === 'dlq') {
            // NOTE: the letter carries this event only (a record of its own), never its neighbours
            letters.push({ record: { ...record, value: item.bytes() }, letter: routed.letter });
            break;
          }
          retriedAt = routed.stage;
          // retry: hand on and commit what is done so far, then wait and try this event again.
          // TRICKY: order per partition is kept by never moving past an event that asked for a
          // retry; a stop while paused leaves its record uncommitted, so the next owner gets it
          // again (the record's events handed on before it are then handed on twice: idempotent
          // downstream, by event id).
          await handOnAndCommit(lastDone);
          if (!isRunning() || isStale()) {
            timer();
            return;
          }
          if (attempt === 1 || attempt % 50 === 0) log.warn({ reason: routed.reason, attempts: attempt, topic, partition }, 'stage asked for a retry; pausing partition');
          await sleep(Math.min(retryMaxMs, retryInitialMs * 2 ** Math.min(attempt - 1, 10)));
          await heartbeat();
        }
      }
      lastDone = record.offset;
    }
    await handOnAndCommit(lastDone);
    opts.metrics.lag.set({ stage: opts.name, topic, partition: String(partition) }, Number(batch.offsetLag()));
    timer();
    await heartbeat();
  };

  return {
    ready: () => joined && !stopping,
    async start() {
      await run(consumer);
      log.info({ topic: opts.inputTopic, groupId: opts.groupId }, 'consuming');
    },
    stop() {
      stopping ??= (async () => {
        // NOTE: a rebuild in progress ends at its next step (it checks `stopping`); its wait is
        // cut short, and a connect in progress is given a moment before the consumer is closed
        stopSignal.abort();
        if (rebuilding) await Promise.race([rebuilding.catch(() => undefined), sleep(2_000)]);
        // consumer.disconnect() stops fetching and waits for the batch in hand (which
        // commits what it finished) before leaving the group.
        await consumer.disconnect();
        joined = false;
        log.info('consumer stopped');
      })();
      return stopping;
    },
  };
}

function oneInputPerRecord<In>(decode: (value: Buffer, record: ConsumedRecord) => Promise<DecodeResult<In>>) {
  return async (value: Buffer, record: ConsumedRecord): Promise<DecodeResult<DecodedEvent<In>[]>> => {
    const d = await decode(value, record);
    return d.ok ? { ok: true, value: [{ ok: true, value: d.value, bytes: () => value }] } : d;
  };
}

function toRecord(topic: string, partition: number, m: KafkaMessage): ConsumedRecord {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(m.headers ?? {})) {
    if (v === undefined) continue;
    headers[k] = Array.isArray(v) ? v.map(String).join(',') : v.toString();
  }
  return { topic, partition, offset: m.offset, key: m.key, value: m.value, headers };
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });
