// How long each Tracklane topic keeps its records: the raw and enriched
// topics carry clear user ids, traits and full IPs, so every topic gets an explicit
// `retention.ms` and a `segment.ms` small enough for it to mean something (Kafka deletes whole
// segments: a 24 h topic with the default 7-day segment keeps records ~8 days). The settings
// are parsed with the fleet config; what the broker actually holds is read back at start.
import type { Kafka } from 'kafkajs';
import { z } from 'zod';
import { ConfigError } from '../config/env.js';
import type { TopicNames } from './topics.js';

export type TopicKind = keyof TopicNames;
export const TOPIC_KINDS = ['raw', 'enriched', 'clean', 'dlq', 'overwrites'] as const satisfies readonly TopicKind[];

export interface TopicRetentionSetting {
  retentionMs: number;
  segmentMs: number;
}
export type TopicRetention = Readonly<Record<TopicKind, TopicRetentionSetting>>;

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/**
 * The defaults. raw, enriched and clean: 24 h (a day to notice and fix a stuck stage) in 1 h
 * segments. dlq: 7 days in 1 d segments — poison records wait for an operator over a weekend,
 * and the overwrites topic keeps its copies as long anyway. overwrites: 7 days (a compactor
 * down for longer fails its pending requests: receipts.ts), 1 d segments.
 */
export const DEFAULT_TOPIC_RETENTION: TopicRetention = {
  raw: { retentionMs: DAY, segmentMs: HOUR },
  enriched: { retentionMs: DAY, segmentMs: HOUR },
  clean: { retentionMs: DAY, segmentMs: HOUR },
  dlq: { retentionMs: 7 * DAY, segmentMs: DAY },
  overwrites: { retentionMs: 7 * DAY, segmentMs: DAY },
};

/** The environment variables of one topic's two settings. */
export const retentionVariables = (kind: TopicKind): { retention: keyof typeof topicRetentionShape; segment: keyof typeof topicRetentionShape } => {
  const k = kind.toUpperCase();
  return { retention: `KAFKA_${k}_RETENTION_MS` as keyof typeof topicRetentionShape, segment: `KAFKA_${k}_SEGMENT_MS` as keyof typeof topicRetentionShape };
};

// NOTE: bounded on purpose: -1 (keep forever) would defeat the point, and a receipt's
// copiesExpireBy needs a finite horizon; a minute is the least that leaves a stage time to read.
const MIN_MS = 60_000;
const MAX_RETENTION_MS = 365 * DAY;
// NOTE: messages name no variable: parseEnv prefixes each with the variable's name
const ms = (def: number) =>
  z.coerce
    .number({ message: 'must be a number of milliseconds' })
    .int('must be whole milliseconds')
    .min(MIN_MS, `must be at least ${MIN_MS} ms (1 minute)`)
    .max(MAX_RETENTION_MS, `must be at most ${MAX_RETENTION_MS} ms (365 days)`)
    .default(def);

/** The environment shape; merged into the fleet config schema (values in ms). */
export const topicRetentionShape = {
  KAFKA_RAW_RETENTION_MS: ms(DEFAULT_TOPIC_RETENTION.raw.retentionMs),
  KAFKA_RAW_SEGMENT_MS: ms(DEFAULT_TOPIC_RETENTION.raw.segmentMs),
  KAFKA_ENRICHED_RETENTION_MS: ms(DEFAULT_TOPIC_RETENTION.enriched.retentionMs),
  KAFKA_ENRICHED_SEGMENT_MS: ms(DEFAULT_TOPIC_RETENTION.enriched.segmentMs),
  KAFKA_CLEAN_RETENTION_MS: ms(DEFAULT_TOPIC_RETENTION.clean.retentionMs),
  KAFKA_CLEAN_SEGMENT_MS: ms(DEFAULT_TOPIC_RETENTION.clean.segmentMs),
  KAFKA_DLQ_RETENTION_MS: ms(DEFAULT_TOPIC_RETENTION.dlq.retentionMs),
  KAFKA_DLQ_SEGMENT_MS: ms(DEFAULT_TOPIC_RETENTION.dlq.segmentMs),
  KAFKA_OVERWRITES_RETENTION_MS: ms(DEFAULT_TOPIC_RETENTION.overwrites.retentionMs),
  KAFKA_OVERWRITES_SEGMENT_MS: ms(DEFAULT_TOPIC_RETENTION.overwrites.segmentMs),
};

export type TopicRetentionEnv = z.infer<z.ZodObject<typeof topicRetentionShape>>;

/** The settings per topic; a ConfigError (naming both variables) when a segment outlasts its retention. */
export function topicRetentionFrom(env: TopicRetentionEnv): TopicRetention {
  const problems: string[] = [];
  const out = {} as Record<TopicKind, TopicRetentionSetting>;
  for (const kind of TOPIC_KINDS) {
    const v = retentionVariables(kind);
    const setting = { retentionMs: env[v.retention], segmentMs: env[v.segment] };
    // NOTE: a segment longer than the retention keeps records up to the segment's age instead
    if (setting.segmentMs > setting.retentionMs) problems.push(`${v.segment} must not exceed ${v.retention} (Kafka deletes whole segments)`);
    out[kind] = setting;
  }
  if (problems.length > 0) throw new ConfigError(`invalid topic retention settings:\n${problems.map((p) => `  ${p}`).join('\n')}`);
  return out;
}

/** The Kafka topic config entries of one topic's settings. */
export const retentionConfigEntries = (s: TopicRetentionSetting): { name: string; value: string }[] => [
  { name: 'retention.ms', value: String(s.retentionMs) },
  { name: 'segment.ms', value: String(s.segmentMs) },
];

/** What the broker holds for one topic (effective values: the topic's own or the broker default). */
export interface BrokerTopicRetention {
  /** null: unbounded (-1) */
  retentionMs: number | null;
  segmentMs: number;
  /** a deleted segment stays on disk this long (`file.delete.delay.ms`, default 60 s) */
  fileDeleteDelayMs: number;
  /** false: some of the three are the configured value or Kafka's default, not what the broker holds */
  read: boolean;
}

export interface BrokerRetention {
  topics: Record<TopicKind, BrokerTopicRetention>;
  /** how often the broker looks for segments to delete (`log.retention.check.interval.ms`) */
  retentionCheckIntervalMs: number;
  /** false: Kafka's default assumed (not every broker told us its own) */
  retentionCheckIntervalRead: boolean;
}

/** Kafka's defaults, used for whatever the broker does not let us read. */
export const KAFKA_DEFAULT_RETENTION_CHECK_INTERVAL_MS = 300_000;
export const KAFKA_DEFAULT_FILE_DELETE_DELAY_MS = 60_000;

const TOPIC_RESOURCE = 2;
const BROKER_RESOURCE = 4;

/**
 * Reads the effective retention settings of the topics and the brokers' retention check
 * interval. Whatever the broker does not tell us (no DescribeConfigs permission on the cluster,
 * say) falls back to the configured value or Kafka's default, with a warning, and is marked
 * not `read`: copiesHorizonMs() then promises nothing.
 */
export async function readBrokerRetention(
  kafka: Kafka,
  topics: TopicNames,
  configured: TopicRetention,
  logger?: { warn(obj: object, msg: string): void },
): Promise<BrokerRetention> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const fromConfig = (kind: TopicKind): BrokerTopicRetention => ({ ...configured[kind], fileDeleteDelayMs: KAFKA_DEFAULT_FILE_DELETE_DELAY_MS, read: false });
    const out: BrokerRetention = {
      topics: Object.fromEntries(TOPIC_KINDS.map((k) => [k, fromConfig(k)])) as Record<TopicKind, BrokerTopicRetention>,
      retentionCheckIntervalMs: KAFKA_DEFAULT_RETENTION_CHECK_INTERVAL_MS,
      retentionCheckIntervalRead: false,
    };
    const unreadTopics: string[] = [];
    try {
      const described = await admin.describeConfigs({
        includeSynonyms: false,
        resources: TOPIC_KINDS.map((k) => ({ type: TOPIC_RESOURCE, name: topics[k], configNames: ['retention.ms', 'segment.ms', 'file.delete.delay.ms'] })),
      });
      for (const kind of TOPIC_KINDS) {
        const entries = described.resources.find((r) => r.resourceName === topics[kind])?.configEntries ?? [];
        const value = (name: string): number | undefined => numberOf(entries.find((e) => e.configName === name)?.configValue);
        const retention = value('retention.ms');
        const segment = value('segment.ms');
        const deleteDelay = value('file.delete.delay.ms');
        const read = retention !== undefined && segment !== undefined && deleteDelay !== undefined;
        if (!read) unreadTopics.push(topics[kind]);
        out.topics[kind] = {
          retentionMs: retention === undefined ? configured[kind].retentionMs : retention < 0 ? null : retention,
          segmentMs: segment ?? configured[kind].segmentMs,
          fileDeleteDelayMs: deleteDelay ?? KAFKA_DEFAULT_FILE_DELETE_DELAY_MS,
          read,
        };
      }
      if (unreadTopics.length > 0) {
        logger?.warn({ topics: unreadTopics }, 'the brokers did not tell every topic\'s retention.ms, segment.ms and file.delete.delay.ms: assuming the configured ones; receipts carry no copiesExpireBy');
      }
    } catch (err) {
      logger?.warn({ err: errorName(err) }, 'cannot read the topics\' retention settings (DescribeConfigs): assuming the configured ones; receipts carry no copiesExpireBy');
    }
    try {
      const { brokers } = await admin.describeCluster();
      const described = await admin.describeConfigs({
        includeSynonyms: false,
        resources: brokers.map((b) => ({ type: BROKER_RESOURCE, name: String(b.nodeId), configNames: ['log.retention.check.interval.ms'] })),
      });
      const known = brokers
        .map((b) => numberOf(described.resources.find((r) => r.resourceName === String(b.nodeId))?.configEntries.find((e) => e.configName === 'log.retention.check.interval.ms')?.configValue))
        .filter((n): n is number => n !== undefined && n > 0);
      // NOTE: the slowest broker decides: a topic's replicas may sit on any of them — so one
      // broker that does not tell leaves the interval unknown
      if (known.length > 0) out.retentionCheckIntervalMs = Math.max(...known);
      out.retentionCheckIntervalRead = brokers.length > 0 && known.length === brokers.length;
      if (!out.retentionCheckIntervalRead) {
        logger?.warn(
          { brokers: brokers.length, told: known.length },
          'not every broker told its log.retention.check.interval.ms: receipts carry no copiesExpireBy',
        );
      }
    } catch (err) {
      logger?.warn(
        { err: errorName(err), assumedMs: KAFKA_DEFAULT_RETENTION_CHECK_INTERVAL_MS },
        'cannot read the brokers\' log.retention.check.interval.ms (DescribeConfigs on the cluster): receipts carry no copiesExpireBy',
      );
    }
    return out;
  } finally {
    await admin.disconnect();
  }
}

/**
 * How long after a record is written to any of the topics it is certainly gone from the
 * brokers' disks: its segment rolls within `segment.ms` of it, is deletable `retention.ms`
 * after its newest record, found by the next retention check and removed from disk
 * `file.delete.delay.ms` later. The longest over the topics; null when one keeps records forever,
 * or when any of these settings was not read from the brokers (an assumed value promises nothing).
 * NOTE: `file.delete.delay.ms` is on top of the issue's definition (retention + segment + check
 * interval): until then the segment file is only renamed, its bytes still on the disk.
 */
export function copiesHorizonMs(b: BrokerRetention, kinds: readonly TopicKind[] = TOPIC_KINDS): number | null {
  if (!b.retentionCheckIntervalRead) return null;
  let longest = 0;
  for (const kind of kinds) {
    const t = b.topics[kind];
    if (t.retentionMs === null || !t.read) return null;
    longest = Math.max(longest, t.retentionMs + t.segmentMs + t.fileDeleteDelayMs);
  }
  return longest + b.retentionCheckIntervalMs;
}

/** a config value as a number; undefined when the broker left it out (or it is no number) */
function numberOf(v: string | null | undefined): number | undefined {
  if (v === undefined || v === null || v.trim() === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
}

function errorName(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}
