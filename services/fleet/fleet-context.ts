// The clients every fleet service needs, opened once in order and closed in reverse:
// Kafka (topics ensured), the schema registry and record codec, the tenant store in Redis,
// one acks=all producer (libs/kafka/outputs.ts: why not idempotent), and the process's metrics registry. Opening is retried until
// STARTUP_TIMEOUT_MS (services/fleet/startup.ts): a dependency that is late or refuses us keeps
// the service not ready, with one line naming the setting to check.
import type { Kafka, Producer } from 'kafkajs';
import type { Logger } from '../../libs/core/logger.js';
import { createStopStack, type StopStep } from '../../libs/core/stop-stack.js';
import { redisOptionsFrom } from '../../libs/config/redis-connection.js';
import { createKafka } from '../../libs/kafka/kafka-client.js';
import { kafkaSecurityFrom } from '../../libs/kafka/kafka-security.js';
import { partitionKey } from '../../libs/events/envelope.js';
import { connectProducer, createTopicOutput } from '../../libs/kafka/outputs.js';
import { createRecordCodec, type RecordCodec } from '../../libs/kafka/record-codec.js';
import { createSchemaRegistry, registryClientOptions, registryTransportProblem } from '../../libs/kafka/registry-client.js';
import type { StageOutput } from '../../libs/kafka/stage-worker.js';
import { topicRetentionFrom, type TopicRetention } from '../../libs/kafka/topic-retention.js';
import { ensureTopics, topicNames, topicPartitions, type TopicNames } from '../../libs/kafka/topics.js';
import { createPipelineMetrics, type PipelineMetrics } from '../../libs/pipeline/metrics.js';
import { openRedisTenantStore, type RedisTenantStore } from '../../libs/tenants/redis-tenant-store.js';
import type { FleetConfig } from './fleet-config.js';
import { openWithinStartupTimeout, startupOptions, type StartupStep } from './startup.js';

export interface FleetContext {
  service: string;
  config: FleetConfig;
  logger: Logger;
  kafka: Kafka;
  topics: TopicNames;
  codec: RecordCodec;
  /** partitions of the event topics, read at start (records of many are grouped by partition) */
  partitions: Record<'raw' | 'enriched' | 'clean', number>;
  producer: Producer;
  tenants: RedisTenantStore;
  metrics: PipelineMetrics;
  /** closes what the context opened (run after the service's own stop steps) */
  stopSteps: StopStep[];
}

/**
 * A stage's output to the next event topic: records of many events grouped by partition
 * (KAFKA_EVENTS_PER_RECORD; 1: one event per record, keyed), produced with the context's producer.
 */
export function eventTopicOutput<T extends { tenant_id: string; user_id: string | null; anonymous_id: string | null }>(
  ctx: FleetContext,
  kind: 'enriched' | 'clean',
  encode: { one: (e: T) => Buffer; many: (es: readonly T[]) => Buffer },
): StageOutput<T> {
  return createTopicOutput<T>({
    producer: ctx.producer,
    topic: ctx.topics[kind],
    encode: encode.one,
    key: partitionKey,
    many: { partitions: ctx.partitions[kind], eventsPerRecord: ctx.config.KAFKA_EVENTS_PER_RECORD, encode: encode.many },
  });
}

export function openFleetContext(service: string, config: FleetConfig, logger: Logger): Promise<FleetContext> {
  // NOTE: settings are checked (files read) once, before any attempt: a bad one is not retried
  const kafkaSecurity = kafkaSecurityFrom(config);
  const registryOptions = registryClientOptions(config);
  redisOptionsFrom(config); // only to check: the tenant store builds its client from the same settings
  const retention = topicRetentionFrom(config);
  return openWithinStartupTimeout({
    ...startupOptions(config, logger, service),
    open: (step) => openOnce(service, config, logger, step, { kafkaSecurity, registryOptions, retention }),
  });
}

async function openOnce(
  service: string,
  config: FleetConfig,
  logger: Logger,
  step: StartupStep,
  settings: { kafkaSecurity: ReturnType<typeof kafkaSecurityFrom>; registryOptions: ReturnType<typeof registryClientOptions>; retention: TopicRetention },
): Promise<FleetContext> {
  const opened = createStopStack();
  try {
    // NOTE: quiet until the context is open: a refused attempt is told once, by startup.ts
    let starting = true;
    const kafka = createKafka({ brokers: config.KAFKA_BROKERS, clientId: `tracklane-${service}`, logger, ...settings.kafkaSecurity, quiet: () => starting });
    const topics = topicNames(config.TOPIC_PREFIX);
    await step('kafka', () =>
      ensureTopics(kafka, topics, { partitions: config.KAFKA_PARTITIONS, replicationFactor: config.KAFKA_REPLICATION_FACTOR, retention: settings.retention, logger }),
    );
    const counts = await step('kafka', () => topicPartitions(kafka, [topics.raw, topics.enriched, topics.clean]));
    const partitions = { raw: counts[topics.raw] ?? config.KAFKA_PARTITIONS, enriched: counts[topics.enriched] ?? config.KAFKA_PARTITIONS, clean: counts[topics.clean] ?? config.KAFKA_PARTITIONS };

    const codec = createRecordCodec({ registry: createSchemaRegistry(settings.registryOptions), topics, registryUrl: config.SCHEMA_REGISTRY_URL });
    // NOTE: the registry client hides why a request failed (TLS errors become "status 400"): ask directly
    await step('registry', () => codec.init().catch(async (err: unknown) => Promise.reject((await registryTransportProblem(settings.registryOptions)) ?? err)));

    // NOTE: an attempt gives up well inside STARTUP_TIMEOUT_MS, so its reason (e.g. NOAUTH) is
    // told before the deadline cuts it off as "did not answer"
    const openTimeoutMs = Math.max(1_000, Math.min(10_000, Math.floor(config.STARTUP_TIMEOUT_MS / 3)));
    const tenants = await step('redis', () => openRedisTenantStore({ redis: config, keyPrefix: config.TRACKLANE_REDIS_PREFIX, logger, openTimeoutMs }));
    opened.push('tenants', () => tenants.close());

    const producer = await step('kafka', () => connectProducer(kafka));
    opened.push('producer', () => producer.disconnect());

    starting = false;
    return { service, config, logger, kafka, topics, codec, partitions, producer, tenants, metrics: createPipelineMetrics(service), stopSteps: opened.steps() };
  } catch (err) {
    await opened.close(logger);
    throw err;
  }
}
