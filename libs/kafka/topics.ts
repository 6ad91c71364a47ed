// Topic names and creation. Names are fixed by the design (DESIGN.md §1); a prefix lets
// tests isolate runs on one broker.
import type { Kafka } from 'kafkajs';
import { ConfigError } from '../config/env.js';

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

/** Creates the topics that do not exist yet; waits for leaders. Returns the ones created. */
export async function ensureTopics(
  kafka: Kafka,
  topics: TopicNames | readonly string[],
  opts: { partitions: number; replicationFactor?: number; attempts?: number },
): Promise<string[]> {
  const replicationFactor = opts.replicationFactor ?? 1;
  const wanted = Array.isArray(topics) ? [...topics] : Object.values(topics);
  // NOTE: overwrite commands get one partition: one compactor is active at a time (its
  // lookup tables hold one batch) and requests apply in the order they were made.
  const single = Array.isArray(topics) ? null : (topics as TopicNames).overwrites;
  const partitionsOf = (topic: string) => (topic === single ? 1 : opts.partitions);
  const attempts = opts.attempts ?? 6;
  const admin = kafka.admin();
  await admin.connect();
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        const existing = new Set(await admin.listTopics());
        const missing = wanted.filter((t) => !existing.has(t));
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
            configEntries: [{ name: 'min.insync.replicas', value: String(minInsyncReplicas(replicationFactor)) }],
          })),
        });
        return missing;
      } catch (err) {
        // TRICKY: right after a broker starts (or while another replica creates the same
        // topics) metadata can lag: UNKNOWN_TOPIC_OR_PARTITION / TOPIC_ALREADY_EXISTS are
        // retriable here, and the next listTopics() settles it.
        const retriable = (err as { retriable?: boolean }).retriable === true || /already exists/i.test((err as Error).message);
        if (!retriable || attempt >= attempts) throw err;
        await new Promise((r) => setTimeout(r, 250 * attempt));
      }
    }
  } finally {
    await admin.disconnect();
  }
}
