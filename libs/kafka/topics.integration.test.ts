// Topic creation against the real broker (one broker in dev/CI): partitions, the replication
// factor, min.insync.replicas and retention.ms / segment.ms as configured (read back with the
// admin API), a warning for an existing topic that differs, and a clear refusal of a
// replication factor the cluster cannot hold — before anything is created.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kafkaBrokerList, serviceEndpoints } from '../../test/support/services.js';
import { createLogger } from '../core/logger.js';
import { createKafka } from './kafka-client.js';
import { copiesHorizonMs, DEFAULT_TOPIC_RETENTION, readBrokerRetention, TOPIC_KINDS, topicRetentionFrom, topicRetentionShape, type TopicRetention } from './topic-retention.js';
import { ensureTopics, minInsyncReplicas, topicNames, TopicConfigError } from './topics.js';
import { z } from 'zod';

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

async function retentionOf(names: readonly string[]): Promise<Map<string, { retention: string | undefined; segment: string | undefined }>> {
  const configs = await admin.describeConfigs({
    includeSynonyms: false,
    resources: names.map((name) => ({ type: 2 /* TOPIC */, name, configNames: ['retention.ms', 'segment.ms'] })),
  });
  return new Map(
    configs.resources.map((r) => [
      r.resourceName,
      {
        retention: r.configEntries.find((e) => e.configName === 'retention.ms')?.configValue,
        segment: r.configEntries.find((e) => e.configName === 'segment.ms')?.configValue,
      },
    ]),
  );
}

/** A logger that keeps its warnings. */
function warnings() {
  const seen: { obj: Record<string, unknown>; msg: string }[] = [];
  return { seen, logger: { warn: (obj: object, msg: string) => seen.push({ obj: obj as Record<string, unknown>, msg }) } };
}

describe('ensureTopics', () => {
  it('creates every topic with retention.ms and segment.ms from the environment (defaults where unset)', async () => {
    const names = topicNames(prefix());
    const env = z.object(topicRetentionShape).parse({ KAFKA_RAW_RETENTION_MS: '7200000', KAFKA_RAW_SEGMENT_MS: '600000', KAFKA_OVERWRITES_SEGMENT_MS: '3600000' });
    const retention = topicRetentionFrom(env);
    await ensureTopics(kafka, names, { partitions: 1, retention });
    const read = await retentionOf(Object.values(names));
    const expected: Record<string, { retention: string; segment: string }> = {
      [names.raw]: { retention: '7200000', segment: '600000' },
      [names.enriched]: { retention: String(24 * 3_600_000), segment: String(3_600_000) },
      [names.clean]: { retention: String(24 * 3_600_000), segment: String(3_600_000) },
      [names.dlq]: { retention: String(7 * 24 * 3_600_000), segment: String(24 * 3_600_000) },
      [names.overwrites]: { retention: String(7 * 24 * 3_600_000), segment: '3600000' },
    };
    expect(Object.fromEntries(read)).toEqual(expected);

    // what a receipt's horizon is computed from: the broker's own values
    const broker = await readBrokerRetention(kafka, names, DEFAULT_TOPIC_RETENTION);
    for (const kind of TOPIC_KINDS) {
      expect(broker.topics[kind], kind).toMatchObject({ retentionMs: retention[kind].retentionMs, segmentMs: retention[kind].segmentMs });
    }
    expect(broker.retentionCheckIntervalMs).toBeGreaterThan(0);
    // the longest: the dlq's 7 d + 1 d segments (the overwrites topic has 1 h segments here)
    expect(copiesHorizonMs(broker)).toBe(8 * 24 * 3_600_000 + broker.topics.dlq.fileDeleteDelayMs + broker.retentionCheckIntervalMs);
  });

  it('warns once per existing topic and setting that differs, naming both values, and alters nothing', async () => {
    const names = topicNames(prefix());
    await ensureTopics(kafka, names, { partitions: 1 });
    const changed: TopicRetention = { ...DEFAULT_TOPIC_RETENTION, clean: { retentionMs: 2 * 3_600_000, segmentMs: 600_000 }, dlq: { retentionMs: DEFAULT_TOPIC_RETENTION.dlq.retentionMs, segmentMs: 3_600_000 } };
    const w = warnings();
    expect(await ensureTopics(kafka, names, { partitions: 1, retention: changed, logger: w.logger })).toEqual([]);
    const got = w.seen.map((s) => ({ topic: s.obj['topic'], setting: s.obj['setting'], configured: s.obj['configured'], actual: s.obj['actual'], variable: s.obj['variable'] }));
    expect(got.sort((a, b) => `${String(a.topic)}${String(a.setting)}`.localeCompare(`${String(b.topic)}${String(b.setting)}`))).toEqual([
      { topic: names.clean, setting: 'retention.ms', configured: String(2 * 3_600_000), actual: String(24 * 3_600_000), variable: 'KAFKA_CLEAN_RETENTION_MS' },
      { topic: names.clean, setting: 'segment.ms', configured: '600000', actual: String(3_600_000), variable: 'KAFKA_CLEAN_SEGMENT_MS' },
      { topic: names.dlq, setting: 'segment.ms', configured: '3600000', actual: String(24 * 3_600_000), variable: 'KAFKA_DLQ_SEGMENT_MS' },
    ]);
    for (const s of w.seen) expect(s.msg).toMatch(new RegExp(`${String(s.obj['actual'])}.*${String(s.obj['configured'])}`));
    expect((await retentionOf([names.clean])).get(names.clean)).toEqual({ retention: String(24 * 3_600_000), segment: String(3_600_000) });
    const same = warnings();
    await ensureTopics(kafka, names, { partitions: 1, logger: same.logger });
    expect(same.seen).toEqual([]);
  });

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

  it('a topic setting the cluster refuses is a TopicConfigError naming the variables, not a retry loop', async () => {
    const names = topicNames(prefix());
    // NOTE: below what the environment schema lets through: Kafka's own floor (segment.ms ≥ 1)
    const refused: TopicRetention = { ...DEFAULT_TOPIC_RETENTION, raw: { retentionMs: 3_600_000, segmentMs: 0 } };
    const attempt = ensureTopics(kafka, names, { partitions: 1, retention: refused });
    await expect(attempt).rejects.toBeInstanceOf(TopicConfigError);
    await expect(ensureTopics(kafka, topicNames(prefix()), { partitions: 1, retention: refused })).rejects.toThrow(/KAFKA_<TOPIC>_RETENTION_MS.*INVALID_CONFIG/);
  });

  it('asks two in-sync copies of a write from three copies up', () => {
    expect([1, 2, 3, 5].map(minInsyncReplicas)).toEqual([1, 1, 2, 2]);
  });
});
