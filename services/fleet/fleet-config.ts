// Configuration shared by the fleet services, parsed once from the environment in each
// service's main (STYLE.md §7). Each service extends it with its own variables.
import { z } from 'zod';
import { MasterKeyError } from '../../libs/anonymize/master-key.js';
import { createIdSeal, type IdSeal } from '../../libs/privacy/id-seal.js';
import { parseIdHashKey, subjectHasher, type SubjectHash } from '../../libs/privacy/subject-hash.js';
import { clickhouseConnectionShape } from '../../libs/clickhouse/clickhouse-connection.js';
import { ConfigError, envOptionalString, parseList } from '../../libs/config/env.js';
import { redisConnectionShape } from '../../libs/config/redis-connection.js';
import { kafkaSecurityShape } from '../../libs/kafka/kafka-security.js';
import { topicRetentionShape } from '../../libs/kafka/topic-retention.js';
import { schemaRegistryShape } from '../../libs/kafka/registry-client.js';

export const fleetConfigSchema = z.object({
  KAFKA_BROKERS: z
    .string({ message: 'KAFKA_BROKERS is required (e.g. 127.0.0.1:9092)' })
    .transform(parseList)
    .pipe(z.array(z.string()).min(1, 'KAFKA_BROKERS names no broker')),
  /** SCHEMA_REGISTRY_URL, basic auth and a CA file (libs/kafka/registry-client.ts) */
  ...schemaRegistryShape,
  /** REDIS_URL, the ACL user and password (or password file) and a CA file (libs/config/redis-connection.ts) */
  ...redisConnectionShape,
  /** prepended to every topic name and consumer group, so test runs can share a broker */
  TOPIC_PREFIX: z.string().regex(/^[a-zA-Z0-9._-]*$/, 'only letters, digits, ".", "_" and "-"').default(''),
  KAFKA_PARTITIONS: z.coerce.number().int().min(1).max(256).default(6),
  /**
   * events per record on the raw, enriched and clean topics, grouped by partition (README "Records
   * of many events"); 1 writes one event per record, the v1 shape, for a rollout while workers
   * that read only that still run
   */
  KAFKA_EVENTS_PER_RECORD: z.coerce.number().int().min(1).max(10_000).default(500),
  /** copies of every topic Tracklane creates (3 in production: one broker may fail); never above the broker count */
  KAFKA_REPLICATION_FACTOR: z.coerce.number().int().min(1).max(16).default(1),
  /** TLS and SASL to the brokers (libs/kafka/kafka-security.ts); checked together at start */
  ...kafkaSecurityShape,
  /** retention.ms / segment.ms of every topic Tracklane creates (libs/kafka/topic-retention.ts) */
  ...topicRetentionShape,
  PORT: z.coerce.number().int().min(0).max(65535),
  HOST: z.string().default('0.0.0.0'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** how long a service keeps trying to reach Kafka, the registry and Redis at start before it exits 1 (not ready meanwhile) */
  STARTUP_TIMEOUT_MS: z.coerce.number().int().min(1_000).max(3_600_000).default(60_000),
  /** how long SIGTERM may take before the process exits anyway */
  SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(100).default(8_000),
  TRACKLANE_REDIS_PREFIX: z.string().default('tracklane:'),
  CLICKHOUSE_URL: envOptionalString,
  /** user, password (or password file) and CA file of every ClickHouse connection (libs/clickhouse/clickhouse-connection.ts) */
  ...clickhouseConnectionShape,
  CLICKHOUSE_DATABASE: envOptionalString,
  /** cluster mode: migrations create Replicated `<table>_local` tables ON CLUSTER behind Distributed ones (libs/clickhouse/cluster-ddl.ts) */
  CLICKHOUSE_CLUSTER: envOptionalString,
  /**
   * Secret (≥ 32 bytes) under which subject ids of overwrite requests are kept, as keyed
   * hashes, in receipts, the overwrite registry and suppressions; the same for every collector,
   * sink and compactor (libs/privacy/subject-hash.ts).
   */
  TRACKLANE_ID_HASH_KEY: envOptionalString,
});

export type FleetConfig = z.infer<typeof fleetConfigSchema>;

/**
 * Settings of every ClickHouse connection of a fleet service. On a cluster an insert into a
 * Distributed table is acknowledged only once one replica of its shard has it (not queued on
 * the node that took it), so a committed Kafka offset or a written receipt means the rows are
 * stored; the shard's other replicas get them by replication (k8s/README.md).
 */
export function clickhouseSettings(config: Pick<FleetConfig, 'CLICKHOUSE_CLUSTER'>): { insert_distributed_sync: 1 } | undefined {
  return config.CLICKHOUSE_CLUSTER ? { insert_distributed_sync: 1 } : undefined;
}

/** The subject-id hash of a fleet service; a ConfigError (never quoting the key) when it has none. */
export function fleetSubjectHash(config: Pick<FleetConfig, 'TRACKLANE_ID_HASH_KEY'>, service: string): SubjectHash {
  return fromIdHashKey(config, service, subjectHasher);
}

/** The seal of erasures' new ids (libs/privacy/id-seal.ts), from the same key: compactor and sinks. */
export function fleetIdSeal(config: Pick<FleetConfig, 'TRACKLANE_ID_HASH_KEY'>, service: string): IdSeal {
  return fromIdHashKey(config, service, createIdSeal);
}

function fromIdHashKey<T>(config: Pick<FleetConfig, 'TRACKLANE_ID_HASH_KEY'>, service: string, make: (key: Buffer) => T): T {
  if (!config.TRACKLANE_ID_HASH_KEY) {
    throw new ConfigError(
      `TRACKLANE_ID_HASH_KEY is required by the ${service} (≥ 32 bytes: base64:…, hex:… or raw; the same value for every ` +
        'collector, sink and compactor): subject ids of overwrite requests are kept only as keyed hashes',
    );
  }
  try {
    const key = parseIdHashKey(config.TRACKLANE_ID_HASH_KEY);
    const made = make(key);
    key.fill(0);
    return made;
  } catch (err) {
    throw err instanceof MasterKeyError ? new ConfigError(err.message) : err;
  }
}

/** Consumer group of a service, isolated by the topic prefix. */
export function groupId(config: Pick<FleetConfig, 'TOPIC_PREFIX'>, service: string): string {
  return `${config.TOPIC_PREFIX}tracklane-${service}`;
}
