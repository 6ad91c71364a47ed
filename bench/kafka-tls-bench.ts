// What SASL_SSL costs: the same records produced (idempotent, acks=all, the fleet's
// producer settings) and consumed back through the test broker's plain listener and through its
// SASL_SSL listener (SCRAM-SHA-512, TLS verified against the test CA), alternating rounds in one
// run; the best round of each counts. Target: SASL_SSL ≥ 0.7× plain, both ways.
// `npx tsx bench/kafka-tls-bench.ts` or `npm run bench -- kafka-tls`.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Kafka } from 'kafkajs';
import { createLogger } from '../libs/core/logger.js';
import { createKafka } from '../libs/kafka/kafka-client.js';
import type { KafkaSecurity } from '../libs/kafka/kafka-security.js';
import { connectProducer, sendInChunks } from '../libs/kafka/outputs.js';
import { ensureTopics } from '../libs/kafka/topics.js';
import { kafkaSecureEndpoint } from '../scripts/services/kafka.js';
import { ensureServices, stopServices } from '../scripts/services/services.js';
import type { BenchReport } from './bench-types.js';

const RATIO_TARGET = 0.7;

export interface KafkaTlsBenchOptions {
  /** records per round (default 200,000) */
  records?: number;
  /** bytes of each record's value (default 400, about an enriched event in Avro) */
  valueBytes?: number;
  /** rounds of each listener, alternating (default 3) */
  rounds?: number;
}

interface Round {
  produceMs: number;
  consumeMs: number;
}

async function oneRound(kafka: Kafka, topic: string, values: Buffer[]): Promise<Round> {
  const logger = createLogger({ level: 'silent' });
  await ensureTopics(kafka, [topic], { partitions: 3 });
  const producer = await connectProducer(kafka);
  const started = performance.now();
  try {
    const messages = values.map((value, i) => ({ key: `k${i % 97}`, value }));
    for (let i = 0; i < messages.length; i += 5_000) await sendInChunks(producer, topic, messages.slice(i, i + 5_000));
  } finally {
    await producer.disconnect();
  }
  const produceMs = performance.now() - started;

  const consumer = kafka.consumer({ groupId: `${topic}-bench`, maxBytesPerPartition: 4 * 1024 * 1024 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let seen = 0;
  const consumeStarted = performance.now();
  await new Promise<void>((resolve, reject) => {
    consumer
      .run({
        eachBatch: async ({ batch }) => {
          seen += batch.messages.length;
          if (seen >= values.length) resolve();
        },
      })
      .catch(reject);
  });
  const consumeMs = performance.now() - consumeStarted;
  await consumer.disconnect();
  return { produceMs, consumeMs };
}

export async function benchKafkaTls(opts: KafkaTlsBenchOptions = {}): Promise<BenchReport> {
  const records = opts.records ?? 200_000;
  const valueBytes = opts.valueBytes ?? 400;
  const rounds = opts.rounds ?? 3;
  const services = await ensureServices({ services: ['kafka'], fresh: false });
  try {
    const secure = await kafkaSecureEndpoint();
    const logger = createLogger({ level: 'silent' });
    const security: KafkaSecurity = {
      ssl: { ca: [readFileSync(secure.caFile, 'utf8')], rejectUnauthorized: true },
      sasl: { mechanism: secure.mechanism, username: secure.username, password: secure.password },
    };
    const plain = createKafka({ brokers: [services.kafkaBrokers], clientId: 'bench-plain', logger });
    const tls = createKafka({ brokers: [secure.brokers], clientId: 'bench-tls', logger, ...security });
    const values = Array.from({ length: records }, () => randomBytes(valueBytes));
    const run = `bench-tls-${randomBytes(4).toString('hex')}`;
    const best = { plain: { produceMs: Infinity, consumeMs: Infinity }, tls: { produceMs: Infinity, consumeMs: Infinity } };
    for (let r = 0; r < rounds; r++) {
      for (const [name, kafka] of [['plain', plain], ['tls', tls]] as const) {
        const round = await oneRound(kafka, `${run}.${name}.${r}`, values);
        best[name].produceMs = Math.min(best[name].produceMs, round.produceMs);
        best[name].consumeMs = Math.min(best[name].consumeMs, round.consumeMs);
      }
    }
    const perSec = (ms: number) => Math.round((records / ms) * 1000);
    const metrics = {
      plainProducePerSec: perSec(best.plain.produceMs),
      tlsProducePerSec: perSec(best.tls.produceMs),
      plainConsumePerSec: perSec(best.plain.consumeMs),
      tlsConsumePerSec: perSec(best.tls.consumeMs),
      produceRatio: Number((best.plain.produceMs / best.tls.produceMs).toFixed(2)),
      consumeRatio: Number((best.plain.consumeMs / best.tls.consumeMs).toFixed(2)),
    };
    return {
      name: 'Kafka through SASL_SSL (SCRAM-SHA-512, TLS) vs the plain listener',
      method: `${records.toLocaleString('en')} records of ${valueBytes} B, 3 partitions, idempotent producer (acks=all, 5,000 per send), then one consumer from the beginning; ${rounds} alternating rounds per listener on the same broker, best of each`,
      metrics,
      target: `SASL_SSL ≥ ${RATIO_TARGET}× plain, producing and consuming`,
      passed: metrics.produceRatio >= RATIO_TARGET && metrics.consumeRatio >= RATIO_TARGET,
    };
  } finally {
    if (services.started.length > 0) await stopServices({ only: services.started });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const report = await benchKafkaTls();
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
}
