// The stage runner against the real broker: a consumer that KafkaJS gives up on
// (a non-retriable error: it disconnects the consumer and will not start it again) is rebuilt in
// process — it rejoins the group and resumes from the committed offsets — instead of ending the
// worker; nothing is lost or skipped, and onFatal is never called for it. And records of many
// events: each event is run, routed and dead-lettered on its own, in order, and a record is
// committed only once all of its events were handed on.
import { randomBytes } from 'node:crypto';
import * as kafkajs from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kafkaBrokerList, serviceEndpoints } from '../../test/support/services.js';
import { createLogger } from '../core/logger.js';
import { eventually } from '../../test/support/poll.js';
import { createKafka } from './kafka-client.js';
import { createStageWorker, type ConsumedRecord, type DecodedEvent, type RecordDeadLetter } from './stage-worker.js';
import { passStage, pipeline, stage } from '../pipeline/pipeline.js';
import { dlq, ok, retry } from '../core/result.js';
import { ensureTopics } from './topics.js';
import { createPipelineMetrics } from '../pipeline/metrics.js';

// NOTE: the real class KafkaJS bails on; its typings lag the runtime constructor
const { KafkaJSNonRetriableError } = kafkajs as unknown as { KafkaJSNonRetriableError: new (message: string) => Error };

const kafka = createKafka({ brokers: kafkaBrokerList(serviceEndpoints()), clientId: 'stage-worker-test', logger: createLogger({ level: 'silent' }) });
const admin = kafka.admin();
beforeAll(() => admin.connect());
afterAll(() => admin.disconnect());

describe('stage worker: a consumer KafkaJS gives up on', () => {
  it('is rebuilt in process and resumes from the committed offsets: every record written, none skipped, no fatal exit', async () => {
    const topic = `sw${randomBytes(4).toString('hex')}.in`;
    const groupId = `${topic}-group`;
    await ensureTopics(kafka, [topic], { partitions: 2 });
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic, messages: Array.from({ length: 40 }, (_, i) => ({ key: `k${i % 5}`, value: `v${i}` })) });
    await producer.disconnect();

    const written: string[] = [];
    const fatal: Error[] = [];
    let thrown = 0;
    const metrics = createPipelineMetrics('stage-worker-test');
    const worker = createStageWorker<string, string>({
      name: 'test',
      kafka,
      groupId,
      inputTopic: topic,
      decode: async (value) => {
        // the 13th record the first time: an error KafkaJS does not retry nor restart from
        if (value.toString() === 'v12' && thrown === 0) {
          thrown += 1;
          throw new KafkaJSNonRetriableError('injected non-retriable failure');
        }
        return { ok: true, value: value.toString() };
      },
      pipeline: pipeline(passStage<string>('test')),
      describe: () => ({ tenantId: null, eventId: null }),
      output: { write: async (items: readonly { record: ConsumedRecord; value: string }[]) => void written.push(...items.map((i) => i.value)) },
      deadLetters: { write: async () => undefined },
      metrics,
      logger: createLogger({ level: 'silent' }),
      onFatal: (e) => void fatal.push(e),
      rebuildInitialMs: 200,
    });
    await worker.start();
    try {
      await eventually(async () => new Set(written).size === 40, 60_000, 'all 40 records written');
      expect(thrown).toBe(1);
      expect(fatal).toEqual([]);
      expect((await metrics.registry.getSingleMetric('tracklane_consumer_rebuilds_total')?.get())?.values[0]?.value).toBe(1);
      await eventually(async () => worker.ready(), 30_000, 'the rebuilt consumer joined its group');
      // resumed from the commits: what was committed before the failure is not written again
      // (a record is written twice only if its batch had not been committed yet)
      const counts = new Map<string, number>();
      for (const v of written) counts.set(v, (counts.get(v) ?? 0) + 1);
      expect([...counts.values()].every((n) => n <= 2)).toBe(true);
      const committed = await admin.fetchOffsets({ groupId, topics: [topic] });
      await eventually(
        async () => (await admin.fetchOffsets({ groupId, topics: [topic] })).flatMap((t) => t.partitions).reduce((n, p) => n + Number(p.offset), 0) === 40,
        30_000,
        `offsets committed up to the end (were ${JSON.stringify(committed)})`,
      );
    } finally {
      await worker.stop();
    }
  }, 120_000);
});

describe('stage worker: records of many events', () => {
  it('runs every event on its own: a bad event and a dead-lettered one go to the DLQ alone, a retried one waits in place, the rest in order', async () => {
    const topic = `swm${randomBytes(4).toString('hex')}.in`;
    const groupId = `${topic}-group`;
    await ensureTopics(kafka, [topic], { partitions: 1 });
    const producer = kafka.producer();
    await producer.connect();
    // a "record of many" here is a JSON array; "!…" cannot be decoded, "poison" is dead-lettered by
    // the stage, "slow" asks for a retry twice
    const records = [['a1', 'a2', '!bad', 'a3'], ['b1'], ['c1', 'poison', 'slow', 'c2']];
    await producer.send({ topic, messages: records.map((r) => ({ value: JSON.stringify(r) })) });
    await producer.disconnect();

    const written: string[] = [];
    const letters: RecordDeadLetter[] = [];
    let slowTries = 0;
    const worker = createStageWorker<string, string>({
      name: 'test-many',
      kafka,
      groupId,
      inputTopic: topic,
      decode: {
        record: async (value) => ({
          ok: true,
          value: (JSON.parse(value.toString()) as string[]).map((e): DecodedEvent<string> =>
            e.startsWith('!') ? { ok: false, error: 'cannot read', bytes: () => Buffer.from(e) } : { ok: true, value: e, bytes: () => Buffer.from(e) },
          ),
        }),
      },
      pipeline: pipeline(
        stage<string, string>('test', (e) => {
          if (e === 'poison') return dlq('poisoned');
          if (e === 'slow' && ++slowTries <= 2) return retry('not yet');
          return ok(e.toUpperCase());
        }),
      ),
      describe: (e) => ({ tenantId: 't', eventId: e }),
      output: { write: async (items: readonly { record: ConsumedRecord; value: string }[]) => void written.push(...items.map((i) => i.value)) },
      deadLetters: { write: async (ls) => void letters.push(...ls) },
      metrics: createPipelineMetrics('stage-worker-many-test'),
      logger: createLogger({ level: 'silent' }),
      retryInitialMs: 20,
    });
    await worker.start();
    try {
      await eventually(
        async () => (await admin.fetchOffsets({ groupId, topics: [topic] })).flatMap((t) => t.partitions).reduce((n, p) => n + Number(p.offset), 0) === 3,
        30_000,
        'all three records committed',
      );
      expect(written).toEqual(['A1', 'A2', 'A3', 'B1', 'C1', 'SLOW', 'C2']);
      expect(slowTries).toBe(3);
      expect(letters.map((l) => [l.record.value?.toString(), l.letter.stage, l.letter.reason])).toEqual([
        ['!bad', 'decode', 'event cannot be decoded'],
        ['poison', 'test', 'poisoned'],
      ]);
      expect(letters.map((l) => l.record.offset)).toEqual(['0', '2']);
    } finally {
      await worker.stop();
    }
  }, 60_000);
});
