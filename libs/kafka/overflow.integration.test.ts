// Hot-key overflow on the real broker: the collector's intake gives an overflowed event a random
// key and the `tracklane-overflow` header, and a stage worker's topic output keeps the header
// and gives the next hop's record a random key again — while a normal user's records keep their
// tenant:user key (one partition, in order) on both hops.
import { randomBytes } from 'node:crypto';
import type { KafkaMessage } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kafkaBrokerList, serviceEndpoints } from '../../test/support/services.js';
import { eventually } from '../../test/support/poll.js';
import { rawMinimal } from '../../test/support/record-fixtures.js';
import { createLogger } from '../core/logger.js';
import { partitionKey, type RawEvent } from '../events/envelope.js';
import { passStage, pipeline } from '../pipeline/pipeline.js';
import { createPipelineMetrics } from '../pipeline/metrics.js';
import { createKafka } from './kafka-client.js';
import { createKafkaIngest } from './kafka-ingest.js';
import { connectProducer, createDeadLetterOutput, createTopicOutput, OVERFLOW_HEADER } from './outputs.js';
import { createStageWorker } from './stage-worker.js';
import { ensureTopics } from './topics.js';

const logger = createLogger({ level: 'silent' });
const kafka = createKafka({ brokers: kafkaBrokerList(serviceEndpoints()), clientId: 'overflow-test', logger });
const admin = kafka.admin();
beforeAll(() => admin.connect());
afterAll(() => admin.disconnect());

interface Seen {
  partition: number;
  key: string;
  overflow: string | undefined;
  event: RawEvent;
}

/**
 * Reads `topic` from the beginning until `count` distinct events are seen; every copy is kept.
 * NOTE: delivery is at least once: a rebalance of the stage's group (or of this reader's) hands a
 * record on again, so an event may be seen more than once — its copies are checked like the rest.
 */
async function readAll(topic: string, count: number): Promise<Seen[]> {
  const seen: Seen[] = [];
  const consumer = kafka.consumer({ groupId: `${topic}-reader`, maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ partition, message }: { partition: number; message: KafkaMessage }) => {
      seen.push({
        partition,
        key: message.key?.toString() ?? '',
        overflow: message.headers?.[OVERFLOW_HEADER]?.toString(),
        event: JSON.parse(message.value?.toString() ?? '{}') as RawEvent,
      });
    },
  });
  try {
    await eventually(async () => new Set(seen.map((s) => s.event.event_id)).size >= count, 60_000, `${count} events on ${topic}`);
  } finally {
    await consumer.disconnect();
  }
  return seen;
}

describe('hot-key overflow across hops', () => {
  it('an overflowed record keeps its header and gets a non-user key on every hop; a normal one keeps tenant:user', async () => {
    const run = `ov${randomBytes(4).toString('hex')}`;
    const [raw, enriched] = [`${run}.raw`, `${run}.enriched`];
    await ensureTopics(kafka, [raw, enriched], { partitions: 6 });
    const producer = await connectProducer(kafka);
    const metrics = createPipelineMetrics('overflow-test');
    const worker = createStageWorker<RawEvent, RawEvent>({
      name: 'overflow-test',
      kafka,
      groupId: `${run}-stage`,
      inputTopic: raw,
      decode: async (value) => ({ ok: true, value: JSON.parse(value.toString()) as RawEvent }),
      pipeline: pipeline(passStage<RawEvent>('pass')),
      describe: (e) => ({ tenantId: e.tenant_id, eventId: e.event_id }),
      output: createTopicOutput<RawEvent>({ producer, topic: enriched, encode: (e) => Buffer.from(JSON.stringify(e)), key: partitionKey }),
      deadLetters: createDeadLetterOutput({ producer, topic: `${run}.dlq` }),
      metrics,
      logger,
    });
    try {
      const ingest = createKafkaIngest({ producer, topic: raw, encode: (e) => Buffer.from(JSON.stringify(e)), logger, overflowed: (e) => e.user_id === 'hot' });
      const events: RawEvent[] = [
        ...Array.from({ length: 60 }, (_, i) => ({ ...rawMinimal, tenant_id: run, event_id: `h${i}`, user_id: 'hot' })),
        ...Array.from({ length: 20 }, (_, i) => ({ ...rawMinimal, tenant_id: run, event_id: `c${i}`, user_id: 'calm' })),
      ];
      expect(await ingest.ingest(events)).toMatchObject({ accepted: 80, retry: [] });
      await worker.start();

      for (const topic of [raw, enriched]) {
        const seen = await readAll(topic, 80);
        const hot = seen.filter((s) => s.event.user_id === 'hot');
        const calm = seen.filter((s) => s.event.user_id === 'calm');
        const ids = (xs: Seen[]) => new Set(xs.map((s) => s.event.event_id)).size;
        expect(ids(hot)).toBe(60);
        expect(ids(calm)).toBe(20);
        for (const s of hot) {
          expect(s.overflow, topic).toBe('1');
          expect(s.key).not.toBe(`${run}:hot`);
          expect(s.key).not.toContain('hot');
        }
        // 60 random keys over 6 partitions: all on one would be a 6 × (1/6)^60 chance
        expect(new Set(hot.map((s) => s.partition)).size).toBeGreaterThan(1);
        // a random key per record: at least one per event (a copy handed on again gets a new one)
        expect(new Set(hot.map((s) => s.key)).size).toBeGreaterThanOrEqual(60);
        for (const s of calm) {
          expect(s.overflow).toBeUndefined();
          expect(s.key).toBe(`${run}:calm`);
        }
        expect(new Set(calm.map((s) => s.partition)).size).toBe(1);
        // one partition keeps the normal user's order (a redelivery repeats a run of it: first copies in order)
        expect([...new Set(calm.map((s) => s.event.event_id))]).toEqual(Array.from({ length: 20 }, (_, i) => `c${i}`));
      }
    } finally {
      await worker.stop();
      await producer.disconnect();
    }
  }, 120_000);
});
