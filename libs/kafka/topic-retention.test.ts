// The retention settings: defaults, bounds, the segment ≤ retention check, and the horizon a
// receipt's copiesExpireBy is computed from.
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { parseEnv } from '../config/env.js';
import {
  copiesHorizonMs,
  DEFAULT_TOPIC_RETENTION,
  retentionConfigEntries,
  TOPIC_KINDS,
  topicRetentionFrom,
  topicRetentionShape,
  type BrokerRetention,
} from './topic-retention.js';

const schema = z.object(topicRetentionShape);
const HOUR = 3_600_000;

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
      ...(Object.fromEntries(TOPIC_KINDS.map((k) => [k, { ...DEFAULT_TOPIC_RETENTION[k], fileDeleteDelayMs: 60_000 }])) as BrokerRetention['topics']),
      ...over,
    },
    retentionCheckIntervalMs: 300_000,
  });

  it('is the longest retention + segment + file delete delay over the topics, plus the check interval', () => {
    expect(copiesHorizonMs(broker())).toBe(7 * 24 * HOUR + 24 * HOUR + 60_000 + 300_000);
    const longRaw = broker({ raw: { retentionMs: 30 * 24 * HOUR, segmentMs: HOUR, fileDeleteDelayMs: 0 } });
    expect(copiesHorizonMs(longRaw)).toBe(30 * 24 * HOUR + HOUR + 300_000);
  });

  it('is null when a topic keeps records forever', () => {
    expect(copiesHorizonMs(broker({ dlq: { retentionMs: null, segmentMs: HOUR, fileDeleteDelayMs: 60_000 } }))).toBeNull();
  });
});
