// The clients every fleet service needs, opened once in order and closed in reverse:
// Kafka (topics ensured), the schema registry and record codec, the tenant store in Redis,
// one idempotent producer, and the process's metrics registry.
import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import type { Kafka, Producer } from 'kafkajs';
import type { Logger } from '../../libs/core/logger.js';
import { createKafka } from '../../libs/kafka/kafka-client.js';
import { kafkaSecurityFrom } from '../../libs/kafka/kafka-security.js';
import { connectProducer } from '../../libs/kafka/outputs.js';
import { createRecordCodec, type RecordCodec } from '../../libs/kafka/record-codec.js';
import { ensureTopics, topicNames, type TopicNames } from '../../libs/kafka/topics.js';
import { createWorkerMetrics, type WorkerMetrics } from '../../libs/kafka/worker-metrics.js';
import { openRedisTenantStore, type RedisTenantStore } from '../../libs/tenants/redis-tenant-store.js';
import type { FleetConfig } from './fleet-config.js';
import type { StopStep } from './worker-host.js';

export interface FleetContext {
  service: string;
  config: FleetConfig;
  logger: Logger;
  kafka: Kafka;
  topics: TopicNames;
  codec: RecordCodec;
  producer: Producer;
  tenants: RedisTenantStore;
  metrics: WorkerMetrics;
  /** closes what the context opened (run after the service's own stop steps) */
  stopSteps: StopStep[];
}

export async function openFleetContext(service: string, config: FleetConfig, logger: Logger): Promise<FleetContext> {
  const stopSteps: StopStep[] = [];
  const closeAll = async () => {
    for (const s of [...stopSteps].reverse()) await Promise.resolve(s.run()).catch(() => undefined);
  };
  try {
    const kafka = createKafka({ brokers: config.KAFKA_BROKERS, clientId: `tracklane-${service}`, logger, ...kafkaSecurityFrom(config) });
    const topics = topicNames(config.TOPIC_PREFIX);
    await ensureTopics(kafka, topics, { partitions: config.KAFKA_PARTITIONS, replicationFactor: config.KAFKA_REPLICATION_FACTOR });

    const codec = createRecordCodec({ registry: new SchemaRegistry({ host: config.SCHEMA_REGISTRY_URL }), topics, registryUrl: config.SCHEMA_REGISTRY_URL });
    await codec.init();

    const tenants = await openRedisTenantStore({ redis: config.REDIS_URL, keyPrefix: config.TRACKLANE_REDIS_PREFIX, logger });
    stopSteps.push({ name: 'tenants', run: () => tenants.close() });

    const producer = await connectProducer(kafka, logger);
    stopSteps.push({ name: 'producer', run: () => producer.disconnect() });

    return { service, config, logger, kafka, topics, codec, producer, tenants, metrics: createWorkerMetrics(service), stopSteps: stopSteps.reverse() };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
