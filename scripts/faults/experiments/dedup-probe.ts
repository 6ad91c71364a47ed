// Probe: after a batch is written but its send fails across a kill -9 (KafkaJS 2.2.4 gives its
// sequence numbers back, src/producer/sendMessages.js:105-111), the NEXT batch with the same
// record count per partition gets those same sequence numbers: the broker takes it for a retry of
// the written batch, answers success, and does not write it. The send resolves; the records are
// gone, without an error. connectProducer's producer (not idempotent) writes it. Deterministic,
// on a private broker:
//
//   npx tsx scripts/faults/experiments/dedup-probe.ts
//
// Ports 19492 (broker), 19493 (controller), 19592 (proxy); data in /tmp/ps-kafka-probe.
import { Partitioners, type Producer } from 'kafkajs';
import { createLogger } from '../../../libs/core/logger.js';
import { createKafka } from '../../../libs/kafka/kafka-client.js';
import { connectProducer } from '../../../libs/kafka/outputs.js';
import { startBlackholeProxy } from './blackhole-proxy.js';
import { PrivateKafka } from './private-kafka.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const say = (s: string) => process.stdout.write(`${s}\n`);

const broker = new PrivateKafka({
  home: '/tmp/ps-kafka-probe',
  port: 19492,
  controllerPort: 19493,
  advertisedPort: 19592,
  extraConfig: ['broker.session.timeout.ms=3000', 'broker.heartbeat.interval.ms=500'],
});

async function main(): Promise<void> {
  const proxy = await startBlackholeProxy({ port: 19592, target: 19492 });
  try {
    await broker.prepare();
    await broker.start();
    const kafka = createKafka({ brokers: [broker.brokers], clientId: 'probe', logger: createLogger({ level: 'silent' }) });
    const topics = { raw: 'probe.raw', connect: 'probe.connect' };
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ waitForLeaders: true, topics: Object.values(topics).map((topic) => ({ topic, numPartitions: 1 })) });
    await admin.disconnect();
    const raw: Producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner });
    await raw.connect();
    const connect = await connectProducer(kafka);
    const msgs = (tag: string, n: number) => Array.from({ length: n }, (_, i) => ({ key: 'k', value: `${tag}-${i}` }));
    const outcome = (p: Promise<unknown>) => p.then(() => 'acknowledged', (e: { name?: string; type?: string }) => `failed: ${e.name}${e.type ? ` ${e.type}` : ''}`);

    for (const [name, p, topic] of [['raw', raw, topics.raw], ['connectProducer', connect, topics.connect]] as const) {
      await p.send({ topic, acks: -1, messages: msgs('before', 2) });
    }
    await proxy.blackhole(true);
    const inFlight = [outcome(raw.send({ topic: topics.raw, acks: -1, messages: msgs('A', 3) })), outcome(connect.send({ topic: topics.connect, acks: -1, messages: msgs('A', 3) }))];
    await sleep(500);
    await broker.kill9();
    await proxy.blackhole(false);
    say(`batch A (3 records) in flight across kill -9: raw ${await inFlight[0]}, connectProducer ${await inFlight[1]}`);
    await broker.start({ topics: Object.values(topics) });
    for (const [name, p, topic] of [['raw', raw, topics.raw], ['connectProducer', connect, topics.connect]] as const) {
      say(`${name}: batch B (3 other records) → ${await outcome(p.send({ topic, acks: -1, messages: msgs('B', 3) }))}`);
      say(`${name}: batch C (1 record)        → ${await outcome(p.send({ topic, acks: -1, messages: msgs('C', 1) }))}`);
      say(`${name}: topic holds ${JSON.stringify(await broker.readValues(topic))}`);
    }
    await raw.disconnect();
    await connect.disconnect();
  } finally {
    await broker.stop();
    await proxy.close();
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
