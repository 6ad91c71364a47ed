// Topic creation against the real broker (one broker in dev/CI): partitions, the replication
// factor and min.insync.replicas as configured, and a clear refusal of a replication factor
// the cluster cannot hold — before anything is created.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kafkaBrokerList, serviceEndpoints } from '../../test/support/services.js';
import { createLogger } from '../core/logger.js';
import { createKafka } from './kafka-client.js';
import { ensureTopics, minInsyncReplicas, topicNames, TopicConfigError } from './topics.js';

const kafka = createKafka({ brokers: kafkaBrokerList(serviceEndpoints()), clientId: 'topics-test', logger: createLogger({ level: 'silent' }) });
const admin = kafka.admin();
const prefix = () => `tt${randomBytes(4).toString('hex')}.`;

beforeAll(() => admin.connect());
afterAll(() => admin.disconnect());

async function describeTopics(names: readonly string[]): Promise<Map<string, { partitions: number; replicas: number; minIsr: string | undefined }>> {
  const { topics } = await admin.fetchTopicMetadata({ topics: [...names] });
  const configs = await admin.describeConfigs({
    includeSynonyms: false,
    resources: names.map((name) => ({ type: 2 /* TOPIC */, name, configNames: ['min.insync.replicas'] })),
  });
  const minIsr = new Map(configs.resources.map((r) => [r.resourceName, r.configEntries.find((e) => e.configName === 'min.insync.replicas')?.configValue]));
  return new Map(topics.map((t) => [t.name, { partitions: t.partitions.length, replicas: t.partitions[0]?.replicas.length ?? 0, minIsr: minIsr.get(t.name) }]));
}

describe('ensureTopics', () => {
  it('creates every topic with the configured partitions (overwrites: one) and replication factor, once', async () => {
    const names = topicNames(prefix());
    const created = await ensureTopics(kafka, names, { partitions: 3, replicationFactor: 1 });
    expect(created.sort()).toEqual(Object.values(names).sort());
    const described = await describeTopics(Object.values(names));
    for (const [topic, d] of described) {
      expect(d, topic).toEqual({ partitions: topic === names.overwrites ? 1 : 3, replicas: 1, minIsr: '1' });
    }
    expect(await ensureTopics(kafka, names, { partitions: 3, replicationFactor: 1 })).toEqual([]);
  });

  it('refuses a replication factor above the broker count, naming the setting, and creates nothing', async () => {
    const { brokers } = await admin.describeCluster();
    const names = topicNames(prefix());
    const attempt = ensureTopics(kafka, names, { partitions: 2, replicationFactor: brokers.length + 1 });
    await expect(attempt).rejects.toBeInstanceOf(TopicConfigError);
    await expect(ensureTopics(kafka, names, { partitions: 2, replicationFactor: brokers.length + 1 })).rejects.toThrow(
      new RegExp(`^KAFKA_REPLICATION_FACTOR is ${brokers.length + 1} but the Kafka cluster has ${brokers.length} broker\\(s\\)`),
    );
    const existing = new Set(await admin.listTopics());
    for (const t of Object.values(names)) expect(existing.has(t), t).toBe(false);
  });

  it('asks two in-sync copies of a write from three copies up', () => {
    expect([1, 2, 3, 5].map(minInsyncReplicas)).toEqual([1, 1, 2, 2]);
  });
});
