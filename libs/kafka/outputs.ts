// Outputs a stage worker binds at start-up: the next topic (encoded, produced with acks=all)
// and the dead-letter topic. The DLQ follows Kafka Connect's convention: each record is the
// failed record's own bytes (Confluent wire format, its original schema id), so a consumer that
// decodes through the schema registry reads it with the schema it was written with; what went
// wrong travels in `tl-*` headers. No value schema is registered for the DLQ topic.
import { randomBytes } from 'node:crypto';
import { Partitioners, type Kafka, type Message, type Producer } from 'kafkajs';
import type { DeadLetter } from '../events/dead-letter.js';
import type { ConsumedRecord, DeadLetterOutput, StageOutput } from './stage-worker.js';

/**
 * One acks=all producer per process, deliberately NOT idempotent. KafkaJS 2.2.4's idempotent
 * producer hands a failed request's sequence numbers back even when the broker had written the
 * batch (src/producer/sendMessages.js:105-111). After a send in flight across a broker restart:
 * - the next batch of the same size to that partition reuses them: the broker takes it for a
 *   retry of the written batch, answers success and does not write it (acknowledged, lost);
 * - a batch of another size is refused with OUT_OF_ORDER_SEQUENCE_NUMBER, and the numbers are
 *   handed back again: every later send to that partition fails (a stage stalls for ever).
 * Both measured on a real broker (producer-session.integration.test.ts; the fault harness's
 * scripts/faults/experiments/). Without sequence numbers an acknowledged batch is always
 * written; a retried one may be written twice, which every consumer already collapses by event
 * id (delivery is at least once end to end). maxInFlightRequests 1 keeps a partition's records
 * in order across retries.
 */
export async function connectProducer(kafka: Kafka): Promise<Producer> {
  // NOTE: the Java-compatible murmur2 partitioner, so keys land where other Kafka clients put them.
  const producer = kafka.producer({
    idempotent: false,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  await producer.connect();
  return producer;
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

/**
 * Marks the records of an overflowed (hot) user (libs/collection/hot-keys.ts): the collector sets
 * it on the raw record, and every stage output keeps it and gives the next record a random key
 * instead of tenant:user, so the user's events spread over all partitions on every hop.
 */
export const OVERFLOW_HEADER = 'tracklane-overflow';

/** A partition key that lands anywhere (murmur2 of random bytes): never a user's. */
export function overflowKey(): string {
  return `~${randomBytes(8).toString('hex')}`;
}

/** The key and headers of a record for `userKey`, overflowed or not. */
export function keyed(userKey: string, overflowed: boolean): Pick<Message, 'key' | 'headers'> {
  return overflowed ? { key: overflowKey(), headers: { [OVERFLOW_HEADER]: '1' } } : { key: userKey };
}

/**
 * Events a record of many holds at most, by default (`KAFKA_EVENTS_PER_RECORD`). 1 writes the v1
 * shape, one event per record (for a rollout while consumers that read only that still run).
 */
export const DEFAULT_EVENTS_PER_RECORD = 500;
/** a record of many is split until it fits under the broker's default message.max.bytes (1 MB) */
export const MAX_RECORD_BYTES = 900 * 1024;

/** How a stage or the collector writes records of many events. */
export interface ManyPerRecord<T> {
  /** partitions of the output topic: each event's key picks its partition as the producer would */
  partitions: number;
  /** ≥ 2; see DEFAULT_EVENTS_PER_RECORD */
  eventsPerRecord: number;
  encode: (values: readonly T[]) => Buffer;
}

/** One record of many: the events of one partition (and overflow state) in the order given. */
export interface RecordGroup<T> {
  partition: number;
  overflowed: boolean;
  values: T[];
}

const partitioner = Partitioners.DefaultPartitioner();
const metadataCache = new Map<number, { partitionId: number; leader: number }[]>();
/** key → partition per partition count; murmur2 in JS showed at ~2 % of a stage's CPU (fleet bench profile) */
const partitionCache = new Map<number, Map<string, number>>();
const PARTITION_CACHE_KEYS = 50_000;

/** The partition KafkaJS's (Java-compatible murmur2) partitioner gives `key` on a topic of `partitions`. */
export function partitionOf(key: string, partitions: number): number {
  let cache = partitionCache.get(partitions);
  const hit = cache?.get(key);
  if (hit !== undefined) return hit;
  let metadata = metadataCache.get(partitions);
  if (!metadata) {
    metadata = Array.from({ length: partitions }, (_, i) => ({ partitionId: i, leader: 0 }));
    metadataCache.set(partitions, metadata);
  }
  const partition = partitioner({ topic: '', partitionMetadata: metadata as never, message: { key, value: null } });
  if (!cache || cache.size >= PARTITION_CACHE_KEYS) partitionCache.set(partitions, (cache = new Map()));
  cache.set(key, partition);
  return partition;
}

/**
 * Groups events into records of many: by the partition each event's key lands on (an overflowed
 * event: any partition, in a record of overflowed events only), in order, at most
 * `eventsPerRecord` each. So one user's events stay on one partition, in order, as with one record each.
 */
export function groupByPartition<T>(
  items: readonly { value: T; overflowed: boolean }[],
  a: { partitions: number; eventsPerRecord: number; key: (v: T) => string },
): RecordGroup<T>[] {
  const open = new Map<number, RecordGroup<T>>();
  const out: RecordGroup<T>[] = [];
  for (const { value, overflowed } of items) {
    const partition = overflowed ? Math.floor(Math.random() * a.partitions) : partitionOf(a.key(value), a.partitions);
    const slot = overflowed ? -1 - partition : partition;
    let group = open.get(slot);
    if (!group || group.values.length >= a.eventsPerRecord) {
      group = { partition, overflowed, values: [] };
      open.set(slot, group);
      out.push(group);
    }
    group.values.push(value);
  }
  return out;
}

/** The messages of record groups, each split in halves until it fits MAX_RECORD_BYTES. */
export function messagesOf<T>(groups: readonly RecordGroup<T>[], encode: (values: readonly T[]) => Buffer, maxBytes = MAX_RECORD_BYTES): Message[] {
  const out: Message[] = [];
  const add = (g: RecordGroup<T>, values: readonly T[]) => {
    const value = encode(values);
    if (value.length > maxBytes && values.length > 1) {
      const half = Math.ceil(values.length / 2);
      add(g, values.slice(0, half));
      add(g, values.slice(half));
      return;
    }
    // NOTE: no key: the record holds many users' events; the partition was chosen from each one's key
    out.push({ partition: g.partition, key: null, value, ...(g.overflowed ? { headers: { [OVERFLOW_HEADER]: '1' } } : {}) });
  };
  for (const g of groups) add(g, g.values);
  return out;
}

/**
 * The messages of events to one topic: records of many grouped by partition (`many`, unless its
 * eventsPerRecord is 1), else one record per event keyed by `key` (an overflowed one: a random key).
 */
export async function eventMessages<T>(
  items: readonly { value: T; overflowed: boolean }[],
  a: { key: (value: T) => string; encode: (value: T) => Buffer | Promise<Buffer>; many?: ManyPerRecord<T> | undefined },
): Promise<Message[]> {
  if (a.many && a.many.eventsPerRecord > 1) {
    return messagesOf(groupByPartition(items, { partitions: a.many.partitions, eventsPerRecord: a.many.eventsPerRecord, key: a.key }), a.many.encode);
  }
  return Promise.all(items.map(async ({ value, overflowed }) => ({ ...keyed(a.key(value), overflowed), value: await a.encode(value) })));
}

export function createTopicOutput<Out>(opts: {
  producer: Producer;
  topic: string;
  encode: (value: Out) => Buffer | Promise<Buffer>;
  key: (value: Out) => string;
  /** write records of many events (unless eventsPerRecord is 1); default one event per record */
  many?: ManyPerRecord<Out>;
}): StageOutput<Out> {
  return {
    async write(items) {
      const events = items.map(({ record, value }) => ({ value, overflowed: record.headers[OVERFLOW_HEADER] === '1' }));
      await sendInChunks(opts.producer, opts.topic, await eventMessages(events, opts));
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

export function createDeadLetterOutput(opts: { producer: Producer; topic: string }): DeadLetterOutput {
  return {
    async write(letters) {
      const messages: Message[] = letters.map(({ record, letter: l }) => ({
        key: record.key,
        // NOTE: the original bytes are kept as they were, so a fixed consumer can replay them.
        value: record.value,
        headers: {
          [DLQ_HEADERS.topic]: record.topic,
          [DLQ_HEADERS.partition]: String(record.partition),
          [DLQ_HEADERS.offset]: record.offset,
          [DLQ_HEADERS.stage]: l.stage,
          [DLQ_HEADERS.reason]: l.reason,
          [DLQ_HEADERS.attempts]: String(l.attempts),
          [DLQ_HEADERS.failedAt]: String(l.failedAt),
          ...(l.error ? { [DLQ_HEADERS.error]: l.error.slice(0, 1000) } : {}),
          ...(l.tenantId ? { [DLQ_HEADERS.tenantId]: l.tenantId } : {}),
          ...(l.eventId ? { [DLQ_HEADERS.eventId]: l.eventId } : {}),
        },
      }));
      await sendInChunks(opts.producer, opts.topic, messages);
    },
  };
}

/** A DLQ record's headers as the dead letter they describe (without its input: see the sink). */
export function deadLetterOfRecord(record: ConsumedRecord, now = Date.now): Omit<DeadLetter, 'input' | 'unreadable'> & { originalTopic: string | null } {
  const h = record.headers;
  const attempts = Number(h[DLQ_HEADERS.attempts]);
  return {
    stage: h[DLQ_HEADERS.stage] ?? 'unknown',
    reason: h[DLQ_HEADERS.reason] ?? 'unknown',
    error: h[DLQ_HEADERS.error] ?? null,
    attempts: Number.isInteger(attempts) && attempts > 0 ? attempts : 1,
    tenantId: h[DLQ_HEADERS.tenantId] ?? null,
    eventId: h[DLQ_HEADERS.eventId] ?? null,
    failedAt: Number(h[DLQ_HEADERS.failedAt]) || now(),
    originalTopic: h[DLQ_HEADERS.topic] ?? null,
  };
}
