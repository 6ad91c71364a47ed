// The retention settings: defaults, bounds, the segment ≤ retention check, and the horizon a
// receipt's copiesExpireBy is computed from — none when a setting was not read from the brokers.
import type { Kafka } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { parseEnv } from '../config/env.js';
import { topicNames } from './topics.js';
import {
  copiesHorizonMs,
  DEFAULT_TOPIC_RETENTION,
  KAFKA_DEFAULT_RETENTION_CHECK_INTERVAL_MS,
  readBrokerRetention,
  retentionConfigEntries,
  TOPIC_KINDS,
  topicRetentionFrom,
  topicRetentionShape,
  type BrokerRetention,
} from './topic-retention.js';

const schema = z.object(topicRetentionShape);
const HOUR = 3_600_000;
const DAY_MS = 24 * HOUR;

describe('topic retention settings', () => {
  it('defaults: raw, enriched, clean 24 h in 1 h segments; dlq and overwrites 7 d in 1 d segments', () => {
    const r = topicRetentionFrom(parseEnv(schema, {}));
    expect(r).toEqual({
      raw: { retentionMs: 24 * HOUR, segmentMs: HOUR },
      enriched: { retentionMs: 24 * HOUR, segmentMs: HOUR },
      clean: { retentionMs: 24 * HOUR, segmentMs: HOUR },
      dlq: { retentionMs: 7 * 24 * HOUR, segmentMs: 24 * HOUR },
      overwrites: { retentionMs: 7 * 24 * HOUR, segmentMs: 24 * HOUR },
    });
    expect(r).toEqual(DEFAULT_TOPIC_RETENTION);
  });

  it('each topic is set on its own', () => {
    const r = topicRetentionFrom(parseEnv(schema, { KAFKA_ENRICHED_RETENTION_MS: '3600000', KAFKA_ENRICHED_SEGMENT_MS: '600000', KAFKA_DLQ_RETENTION_MS: '86400000' }));
    expect(r.enriched).toEqual({ retentionMs: HOUR, segmentMs: 600_000 });
    expect(r.dlq).toEqual({ retentionMs: 24 * HOUR, segmentMs: 24 * HOUR });
    expect(r.raw).toEqual(DEFAULT_TOPIC_RETENTION.raw);
    expect(retentionConfigEntries(r.enriched)).toEqual([
      { name: 'retention.ms', value: '3600000' },
      { name: 'segment.ms', value: '600000' },
    ]);
  });

  it.each([
    ['KAFKA_RAW_RETENTION_MS', '-1', /KAFKA_RAW_RETENTION_MS: must be at least 60000 ms/],
    ['KAFKA_CLEAN_SEGMENT_MS', '1000', /KAFKA_CLEAN_SEGMENT_MS: must be at least 60000 ms/],
    ['KAFKA_OVERWRITES_RETENTION_MS', String(400 * 24 * HOUR), /KAFKA_OVERWRITES_RETENTION_MS: must be at most/],
    ['KAFKA_DLQ_RETENTION_MS', '7d', /KAFKA_DLQ_RETENTION_MS: must be a number of milliseconds/],
    ['KAFKA_RAW_SEGMENT_MS', '90000.5', /KAFKA_RAW_SEGMENT_MS: must be whole milliseconds/],
  ])('%s=%s is refused, naming the variable', (variable, value, message) => {
    expect(() => parseEnv(schema, { [variable]: value })).toThrow(message);
  });

  it('a segment longer than its retention is refused, naming both variables', () => {
    const env = parseEnv(schema, { KAFKA_RAW_RETENTION_MS: String(2 * HOUR), KAFKA_RAW_SEGMENT_MS: String(3 * HOUR) });
    expect(() => topicRetentionFrom(env)).toThrow(/KAFKA_RAW_SEGMENT_MS must not exceed KAFKA_RAW_RETENTION_MS/);
  });
});

describe('copiesHorizonMs', () => {
  const broker = (over: Partial<BrokerRetention['topics']> = {}): BrokerRetention => ({
    topics: {
      ...(Object.fromEntries(TOPIC_KINDS.map((k) => [k, { ...DEFAULT_TOPIC_RETENTION[k], fileDeleteDelayMs: 60_000, read: true }])) as BrokerRetention['topics']),
      ...over,
    },
    retentionCheckIntervalMs: 300_000,
    retentionCheckIntervalRead: true,
  });

  it('is the longest retention + segment + file delete delay over the topics, plus the check interval', () => {
    expect(copiesHorizonMs(broker())).toBe(7 * 24 * HOUR + 24 * HOUR + 60_000 + 300_000);
    const longRaw = broker({ raw: { retentionMs: 30 * 24 * HOUR, segmentMs: HOUR, fileDeleteDelayMs: 0, read: true } });
    expect(copiesHorizonMs(longRaw)).toBe(30 * 24 * HOUR + HOUR + 300_000);
  });

  it('is null when a topic keeps records forever', () => {
    expect(copiesHorizonMs(broker({ dlq: { retentionMs: null, segmentMs: HOUR, fileDeleteDelayMs: 60_000, read: true } }))).toBeNull();
  });
});

describe('copiesHorizonMs of settings not read from the brokers', () => {
  const read = (): BrokerRetention => ({
    topics: Object.fromEntries(TOPIC_KINDS.map((k) => [k, { ...DEFAULT_TOPIC_RETENTION[k], fileDeleteDelayMs: 60_000, read: true }])) as BrokerRetention['topics'],
    retentionCheckIntervalMs: 300_000,
    retentionCheckIntervalRead: true,
  });

  it('is null when one topic\'s settings are assumed, or the check interval', () => {
    expect(copiesHorizonMs(read())).not.toBeNull();
    for (const kind of TOPIC_KINDS) {
      const b = read();
      b.topics[kind] = { ...b.topics[kind], read: false };
      expect(copiesHorizonMs(b), kind).toBeNull();
    }
    expect(copiesHorizonMs({ ...read(), retentionCheckIntervalRead: false })).toBeNull();
  });
});

// NOTE: a fake admin client, so each way of not being told can be played (the broker itself:
// topics.integration.test.ts, fleet-retention.integration.test.ts)
type Entries = Record<string, string | undefined>;
function fakeKafka(opts: { topics: (name: string) => Entries | Error; brokers: Record<string, Entries> | Error; nodes?: number[] }): Kafka {
  const nodes = opts.nodes ?? [1];
  const entries = (e: Entries) => Object.entries(e).filter(([, v]) => v !== undefined).map(([configName, configValue]) => ({ configName, configValue }));
  const admin = {
    connect: async () => undefined,
    disconnect: async () => undefined,
    describeCluster: async () => ({ brokers: nodes.map((nodeId) => ({ nodeId, host: 'h', port: 9092 })), controller: 1, clusterId: 'c' }),
    describeConfigs: async ({ resources }: { resources: { type: number; name: string }[] }) => {
      const out = resources.map((r) => {
        const e = r.type === 2 ? opts.topics(r.name) : opts.brokers instanceof Error ? opts.brokers : (opts.brokers[r.name] ?? {});
        if (e instanceof Error) throw e;
        return { resourceName: r.name, resourceType: r.type, errorCode: 0, errorMessage: null, configEntries: entries(e) };
      });
      return { resources: out, throttleTime: 0 };
    },
  };
  return { admin: () => admin } as unknown as Kafka;
}

describe('readBrokerRetention', () => {
  const names = topicNames('t.');
  const full: Entries = { 'retention.ms': String(2 * DAY_MS), 'segment.ms': String(HOUR), 'file.delete.delay.ms': '30000' };
  const warnings: string[] = [];
  const logger = { warn: (_o: object, msg: string) => void warnings.push(msg) };

  it('everything told: read, and the horizon is what the brokers hold', async () => {
    const b = await readBrokerRetention(fakeKafka({ topics: () => full, brokers: { 1: { 'log.retention.check.interval.ms': '120000' } } }), names, DEFAULT_TOPIC_RETENTION);
    expect(b.retentionCheckIntervalRead).toBe(true);
    expect(TOPIC_KINDS.every((k) => b.topics[k].read)).toBe(true);
    expect(copiesHorizonMs(b)).toBe(2 * DAY_MS + HOUR + 30_000 + 120_000);
  });

  const unread: [string, Parameters<typeof fakeKafka>[0]][] = [
    ['no DescribeConfigs on the topics', { topics: () => new Error('TOPIC_AUTHORIZATION_FAILED'), brokers: { 1: { 'log.retention.check.interval.ms': '120000' } } }],
    ['one topic without file.delete.delay.ms', { topics: (n) => (n === names.dlq ? { ...full, 'file.delete.delay.ms': undefined } : full), brokers: { 1: { 'log.retention.check.interval.ms': '120000' } } }],
    ['one topic without segment.ms', { topics: (n) => (n === names.raw ? { ...full, 'segment.ms': undefined } : full), brokers: { 1: { 'log.retention.check.interval.ms': '120000' } } }],
    ['no DescribeConfigs on the cluster', { topics: () => full, brokers: new Error('CLUSTER_AUTHORIZATION_FAILED') }],
    ['a broker that does not tell its check interval', { topics: () => full, brokers: { 1: { 'log.retention.check.interval.ms': '120000' }, 2: {} }, nodes: [1, 2] }],
  ];
  it.each(unread)('%s: the configured values or Kafka\'s default are assumed, with a warning, and no horizon', async (_name, kafka) => {
    warnings.length = 0;
    const b = await readBrokerRetention(fakeKafka(kafka), names, DEFAULT_TOPIC_RETENTION, logger);
    expect(copiesHorizonMs(b)).toBeNull();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/copiesExpireBy/);
    // the pending-receipt expiry still has a TTL: the broker's, else the configured one
    expect(b.topics.overwrites.retentionMs).toBe(kafka.topics(names.overwrites) instanceof Error ? DEFAULT_TOPIC_RETENTION.overwrites.retentionMs : 2 * DAY_MS);
    expect(b.retentionCheckIntervalMs).toBe(kafka.brokers instanceof Error ? KAFKA_DEFAULT_RETENTION_CHECK_INTERVAL_MS : 120_000);
  });
});
