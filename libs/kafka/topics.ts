// Topic names and creation. Names are fixed by the design (DESIGN.md §1); a prefix lets
// tests isolate runs on one broker. Every topic is created with its retention settings
// (topic-retention.ts); existing topics are compared with them, never altered.
import type { Admin, Kafka } from 'kafkajs';
import { ConfigError } from '../config/env.js';
import { DEFAULT_TOPIC_RETENTION, retentionConfigEntries, retentionVariables, TOPIC_KINDS, type TopicKind, type TopicRetention } from './topic-retention.js';

export interface TopicNames {
  raw: string;
  enriched: string;
  clean: string;
  overwrites: string;
  dlq: string;
}

export function topicNames(prefix = ''): TopicNames {
  return {
    raw: `${prefix}tracklane.raw.v1`,
    enriched: `${prefix}tracklane.enriched.v1`,
    clean: `${prefix}tracklane.clean.v1`,
    overwrites: `${prefix}tracklane.overwrites.v1`,
    dlq: `${prefix}tracklane.dlq.v1`,
  };
}

/** The topics cannot be created as configured (a setting the cluster cannot honour). */
export class TopicConfigError extends ConfigError {
  constructor(message: string) {
    super(message);
    this.name = 'TopicConfigError';
  }
}

/**
 * `min.insync.replicas` for a replication factor: with 3 or more copies a write (acks=all,
 * which our producers use) must reach 2, so one broker can be lost without losing an
 * acknowledged event; with fewer copies every in-sync replica suffices.
 */
export const minInsyncReplicas = (replicationFactor: number): number => (replicationFactor >= 3 ? 2 : 1);

export interface EnsureTopicsOptions {
  partitions: number;
  replicationFactor?: number;
  attempts?: number;
  /** retention.ms / segment.ms per topic (TopicNames only); default DEFAULT_TOPIC_RETENTION */
  retention?: TopicRetention;
  /** where a topic whose settings differ from `retention` is reported (one warning per topic and setting) */
  logger?: { warn(obj: object, msg: string): void };
}

/**
 * Creates the topics that do not exist yet, with their retention settings; waits for leaders.
 * Existing topics of a TopicNames are compared with the settings (a warning for each that
 * differs). Returns the topics created.
 */
export async function ensureTopics(kafka: Kafka, topics: TopicNames | readonly string[], opts: EnsureTopicsOptions): Promise<string[]> {
  const replicationFactor = opts.replicationFactor ?? 1;
  const wanted = Array.isArray(topics) ? [...topics] : Object.values(topics);
  const names = Array.isArray(topics) ? null : (topics as TopicNames);
  const retention = opts.retention ?? DEFAULT_TOPIC_RETENTION;
  // NOTE: overwrite commands get one partition: one compactor is active at a time (its
  // lookup tables hold one batch) and requests apply in the order they were made.
  const partitionsOf = (topic: string) => (topic === names?.overwrites ? 1 : opts.partitions);
  const kindOf = (topic: string): TopicKind | undefined => (names ? TOPIC_KINDS.find((k) => names[k] === topic) : undefined);
  const attempts = opts.attempts ?? 6;
  /** topics already compared (an attempt after a creation race must not warn twice) */
  const compared = new Set<string>();
  const admin = kafka.admin();
  await admin.connect();
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        const existing = new Set(await admin.listTopics());
        const missing = wanted.filter((t) => !existing.has(t));
        if (names) await compareRetention(admin, wanted.filter((t) => existing.has(t) && !compared.has(t)), kindOf, retention, opts.logger, compared);
        if (missing.length === 0) return [];
        const { brokers } = await admin.describeCluster();
        if (replicationFactor > brokers.length) {
          // NOTE: Kafka's own answer (INVALID_REPLICATION_FACTOR) names neither the setting nor the fix
          throw new TopicConfigError(
            `KAFKA_REPLICATION_FACTOR is ${replicationFactor} but the Kafka cluster has ${brokers.length} broker(s): ` +
              `lower it, or add brokers (topics not created: ${missing.join(', ')})`,
          );
        }
        await admin.createTopics({
          waitForLeaders: true,
          topics: missing.map((topic) => ({
            topic,
            numPartitions: partitionsOf(topic),
            replicationFactor,
            configEntries: [
              { name: 'min.insync.replicas', value: String(minInsyncReplicas(replicationFactor)) },
              ...(kindOf(topic) ? retentionConfigEntries(retention[kindOf(topic) as TopicKind]) : []),
            ],
          })),
        });
        return missing;
      } catch (err) {
        // TRICKY: right after a broker starts (or while another replica creates the same
        // topics) metadata can lag: UNKNOWN_TOPIC_OR_PARTITION / TOPIC_ALREADY_EXISTS are
        // retriable here, and the next listTopics() settles it.
        const retriable = (err as { retriable?: boolean }).retriable === true || /already exists/i.test((err as Error).message);
        const refused = refusedConfig(err);
        if (refused) {
          // NOTE: e.g. a managed cluster's floor on segment.ms; Kafka's answer alone names no variable
          throw new TopicConfigError(
            `the Kafka cluster refused the topics' settings (KAFKA_<TOPIC>_RETENTION_MS / _SEGMENT_MS, KAFKA_REPLICATION_FACTOR): ${refused}`,
          );
        }
        if (!retriable || attempt >= attempts) throw err;
        await new Promise((r) => setTimeout(r, 250 * attempt));
      }
    }
  } finally {
    await admin.disconnect();
  }
}

/** The partition count of each topic (which must exist), from the cluster's metadata. */
export async function topicPartitions(kafka: Kafka, topics: readonly string[]): Promise<Record<string, number>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const { topics: found } = await admin.fetchTopicMetadata({ topics: [...topics] });
    return Object.fromEntries(found.map((t) => [t.name, t.partitions.length]));
  } finally {
    await admin.disconnect();
  }
}

/** Kafka's reason when createTopics failed on a topic config (INVALID_CONFIG, POLICY_VIOLATION). */
function refusedConfig(err: unknown): string | undefined {
  const parts = [err, ...((err as { errors?: unknown[] }).errors ?? [])] as { type?: string; message?: string }[];
  const hit = parts.find((e) => e?.type === 'INVALID_CONFIG' || e?.type === 'POLICY_VIOLATION');
  return hit ? `${hit.type}: ${hit.message ?? ''}` : undefined;
}

/**
 * Warns once per existing topic and setting whose value differs from the configured one.
 * NOTE: never altered here: a topic is the operator's once it exists (other tools, other
 * settings on purpose); `kafka-configs --alter` changes it.
 */
async function compareRetention(
  admin: Admin,
  existing: readonly string[],
  kindOf: (topic: string) => TopicKind | undefined,
  retention: TopicRetention,
  logger: EnsureTopicsOptions['logger'],
  compared: Set<string>,
): Promise<void> {
  if (existing.length === 0 || !logger) return;
  for (const t of existing) compared.add(t);
  let described;
  try {
    described = await admin.describeConfigs({
      includeSynonyms: false,
      resources: existing.map((name) => ({ type: 2 /* TOPIC */, name, configNames: ['retention.ms', 'segment.ms'] })),
    });
  } catch (err) {
    logger.warn({ err: (err as Error).message }, 'cannot read the existing topics\' retention settings (DescribeConfigs): not compared');
    return;
  }
  for (const r of described.resources) {
    const kind = kindOf(r.resourceName);
    if (!kind) continue;
    const vars = retentionVariables(kind);
    for (const [setting, configured, variable] of [
      ['retention.ms', retention[kind].retentionMs, vars.retention],
      ['segment.ms', retention[kind].segmentMs, vars.segment],
    ] as const) {
      const actual = r.configEntries.find((e) => e.configName === setting)?.configValue;
      if (actual !== String(configured)) {
        logger.warn(
          { topic: r.resourceName, setting, configured: String(configured), actual: actual ?? null, variable },
          `topic ${r.resourceName} has ${setting}=${actual ?? 'unknown'} but ${variable} is ${configured}: existing topics are not altered (kafka-configs --alter)`,
        );
      }
    }
  }
}
