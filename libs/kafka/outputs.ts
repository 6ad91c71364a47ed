// Outputs a stage worker binds at start-up: the next topic (encoded, produced with acks=all
// by an idempotent producer) and the dead-letter topic (original bytes plus reason headers).
import { Partitioners, type Kafka, type Message, type Producer } from 'kafkajs';
import type { Logger } from '../core/logger.js';
import type { DeadLetter, DeadLetterOutput, StageOutput } from './stage-worker.js';

/**
 * Broker answers after which an idempotent producer's session (producer id and sequence
 * numbers) is no longer usable: every later send fails the same way (KafkaJS does not reset
 * it; tulios/kafkajs#598). Seen after a broker restart with a send in flight.
 */
const LOST_PRODUCER_SESSION = new Set(['OUT_OF_ORDER_SEQUENCE_NUMBER', 'UNKNOWN_PRODUCER_ID', 'INVALID_PRODUCER_EPOCH', 'INVALID_PRODUCER_ID_MAPPING']);

/** Whether `err` (or an error it wraps) says the producer session is lost. */
export function lostProducerSession(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e !== null && typeof e === 'object' && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    if (LOST_PRODUCER_SESSION.has(String((e as { type?: unknown }).type))) return true;
  }
  return false;
}

/**
 * One idempotent, acks=all producer per process (KafkaJS needs maxInFlightRequests 1 for it).
 * A send failing because the broker lost the producer's session replaces the producer with a
 * new one (new producer id) and still fails, so the caller redelivers or answers 503: the
 * records go out again under the new session (at least once; downstream collapses duplicates
 * by event id) instead of every later send failing for ever.
 */
export async function connectProducer(kafka: Kafka, logger?: Logger): Promise<Producer> {
  // NOTE: the Java-compatible murmur2 partitioner, so keys land where other Kafka clients put them.
  const make = () =>
    kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
  let current = make();
  await current.connect();
  let replacing: Promise<void> | null = null;
  // event listeners (the collector follows CONNECT/DISCONNECT) move to the replacement, and the
  // old producer's DISCONNECT never reaches them
  const listeners: { event: string; fn: (...args: unknown[]) => void; remove: () => void }[] = [];
  const on = (event: string, fn: (...args: unknown[]) => void): (() => void) => {
    const entry = { event, fn, remove: current.on(event as never, fn as never) as () => void };
    listeners.push(entry);
    return () => {
      entry.remove();
      listeners.splice(listeners.indexOf(entry), 1);
    };
  };

  const replace = (failed: Producer): Promise<void> => {
    // concurrent sends of the old session fail together: one replacement
    if (failed !== current) return replacing ?? Promise.resolve();
    replacing ??= (async () => {
      logger?.warn('the broker lost this producer\'s session (idempotent sequence); replacing the producer');
      const next = make();
      try {
        await next.connect();
      } catch (err) {
        // broker still away: the old producer stays; the next send that loses its session tries again
        await next.disconnect().catch(() => undefined);
        throw err;
      }
      // NOTE: listeners move only to a connected producer, and leave the old one before it disconnects
      for (const l of listeners) {
        l.remove();
        l.remove = next.on(l.event as never, l.fn as never) as () => void;
      }
      current = next;
      await failed.disconnect().catch(() => undefined);
    })().finally(() => {
      replacing = null;
    });
    return replacing;
  };

  const send: Producer['send'] = async (record) => {
    const used = current;
    try {
      return await used.send(record);
    } catch (err) {
      if (lostProducerSession(err)) await replace(used).catch(() => undefined);
      throw err;
    }
  };
  return new Proxy(current, {
    get(_target, prop) {
      if (prop === 'send') return send;
      if (prop === 'on') return on;
      const value = Reflect.get(current, prop, current) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(current) : value;
    },
  });
}

/**
 * Produces messages with acks=all in sends of at most `maxBytes` each.
 * TRICKY: KafkaJS puts one send's messages for a partition into one record batch, and the
 * broker refuses a batch over `message.max.bytes` (1 MB by default) — a large consumed batch
 * re-produced in one send would fail for ever and stall its partition.
 */
export async function sendInChunks(producer: Producer, topic: string, messages: readonly Message[], maxBytes = 512 * 1024): Promise<void> {
  let chunk: Message[] = [];
  let bytes = 0;
  const sends: Promise<unknown>[] = [];
  for (const m of messages) {
    const size = sizeOf(m.value) + sizeOf(m.key) + 64;
    if (chunk.length > 0 && bytes + size > maxBytes) {
      sends.push(producer.send({ topic, acks: -1, messages: chunk }));
      chunk = [];
      bytes = 0;
    }
    chunk.push(m);
    bytes += size;
  }
  if (chunk.length > 0) sends.push(producer.send({ topic, acks: -1, messages: chunk }));
  await Promise.all(sends);
}

function sizeOf(v: Message['value'] | Message['key']): number {
  if (v === null || v === undefined) return 0;
  return typeof v === 'string' ? Buffer.byteLength(v) : v.length;
}

export function createTopicOutput<Out>(opts: {
  producer: Producer;
  topic: string;
  encode: (value: Out) => Buffer | Promise<Buffer>;
  key: (value: Out) => string;
}): StageOutput<Out> {
  return {
    async write(items) {
      const messages: Message[] = await Promise.all(
        items.map(async ({ value }) => ({ key: opts.key(value), value: await opts.encode(value) })),
      );
      await sendInChunks(opts.producer, opts.topic, messages);
    },
  };
}

/** Header names on dead-letter records (`tl-` prefix). */
export const DLQ_HEADERS = {
  topic: 'tl-original-topic',
  partition: 'tl-original-partition',
  offset: 'tl-original-offset',
  stage: 'tl-stage',
  reason: 'tl-reason',
  error: 'tl-error',
  attempts: 'tl-attempts',
  tenantId: 'tl-tenant-id',
  eventId: 'tl-event-id',
  failedAt: 'tl-failed-at',
} as const;

export function createDeadLetterOutput(opts: { producer: Producer; topic: string; now?: () => number }): DeadLetterOutput {
  const now = opts.now ?? Date.now;
  return {
    async write(letters: readonly DeadLetter[]) {
      const messages: Message[] = letters.map((l) => ({
        key: l.record.key,
        // NOTE: the original bytes are kept as they were, so a fixed consumer can replay them.
        value: l.record.value,
        headers: {
          [DLQ_HEADERS.topic]: l.record.topic,
          [DLQ_HEADERS.partition]: String(l.record.partition),
          [DLQ_HEADERS.offset]: l.record.offset,
          [DLQ_HEADERS.stage]: l.stage,
          [DLQ_HEADERS.reason]: l.reason,
          [DLQ_HEADERS.attempts]: String(l.attempts),
          [DLQ_HEADERS.failedAt]: String(now()),
          ...(l.error ? { [DLQ_HEADERS.error]: l.error.slice(0, 1000) } : {}),
          ...(l.tenantId ? { [DLQ_HEADERS.tenantId]: l.tenantId } : {}),
          ...(l.eventId ? { [DLQ_HEADERS.eventId]: l.eventId } : {}),
        },
      }));
      await sendInChunks(opts.producer, opts.topic, messages);
    },
  };
}
