// The collector's pipeline in the fleet: raw events are produced to `tracklane.raw.v1` with
// acks=all, a request's events grouped into records of many by the partition their tenant:user key
// lands on (or one record each, keyed, with eventsPerRecord 1), so one user's events stay in order. `ingest` resolves only
// after Kafka acknowledged every event; if it cannot, all of them are reported for a retry
// (the collector answers 503) — never a 2xx for an unacknowledged event. An event of a hot user
// (`overflowed`, libs/collection/hot-keys.ts) gets a random key and the overflow header instead.
import type { Producer } from 'kafkajs';
import type { Logger } from '../core/logger.js';
import { partitionKey, type RawEvent } from '../events/envelope.js';
import type { IngestOutcome, IngestPipeline } from '../pipeline/ingest.js';
import { eventMessages, sendInChunks, type ManyPerRecord } from './outputs.js';

export interface KafkaIngest extends IngestPipeline {
  close(): void;
}

export function createKafkaIngest(opts: {
  producer: Producer;
  topic: string;
  encode: (e: RawEvent) => Buffer | Promise<Buffer>;
  logger: Logger;
  /** whether an event is a hot user's, to be spread over every partition; default never */
  overflowed?: (e: RawEvent) => boolean;
  /** write records of many events (unless eventsPerRecord is 1); default one event per record */
  many?: ManyPerRecord<RawEvent>;
}): KafkaIngest {
  const overflowed = opts.overflowed ?? (() => false);
  let connected = true;
  let open = true;
  opts.producer.on(opts.producer.events.DISCONNECT, () => {
    connected = false;
  });
  opts.producer.on(opts.producer.events.CONNECT, () => {
    connected = true;
  });

  return {
    ready: () => open && connected,
    close() {
      open = false;
    },
    async ingest(events: readonly RawEvent[]): Promise<IngestOutcome> {
      try {
        const messages = await eventMessages(
          events.map((e) => ({ value: e, overflowed: overflowed(e) })),
          { key: partitionKey, encode: opts.encode, many: opts.many },
        );
        await sendInChunks(opts.producer, opts.topic, messages);
        connected = true;
        return { accepted: events.length, dropped: [], deadLettered: [], retry: [] };
      } catch (err) {
        opts.logger.warn({ err: { message: (err as Error).message, name: (err as Error).name }, events: events.length }, 'produce to Kafka failed');
        const reason = 'Kafka did not acknowledge the events';
        return { accepted: 0, dropped: [], deadLettered: [], retry: events.map((e) => ({ eventId: e.event_id, reason })) };
      }
    },
  };
}
