// Topic names and creation. Names are fixed by the design (DESIGN.md §1); a prefix lets
// tests isolate runs on one broker.
import type { Kafka } from 'kafkajs';

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

/** Creates the topics that do not exist yet; waits for leaders. Returns the ones created. */
export async function ensureTopics(
  kafka: Kafka,
  topics: TopicNames,
  opts: { partitions: number; replicationFactor?: number },
): Promise<string[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = Object.values(topics).filter((t) => !existing.has(t));
    if (missing.length === 0) return [];
    await admin.createTopics({
      waitForLeaders: true,
      topics: missing.map((topic) => ({
        topic,
        numPartitions: opts.partitions,
        replicationFactor: opts.replicationFactor ?? 1,
      })),
    });
    return missing;
  } finally {
    await admin.disconnect();
  }
}
