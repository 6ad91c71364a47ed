// The real services the fleet runs on: Kafka (idempotent produce, consume), the Confluent-compatible
// registry (register, encode, decode, evolve), Redis, and services:up being idempotent.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import { Redis } from 'ioredis';
import { Kafka, logLevel, Partitioners, type KafkaMessage } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultEndpoints, ensureServices } from '../../scripts/services/services.js';
import { clickhousePassword, clickhouseUser } from '../../scripts/services/clickhouse-gateway.js';
import { eventually } from '../support/poll.js';
import { kafkaBrokerList, serviceEndpoints, type ServiceEndpoints } from '../support/services.js';

const run = promisify(execFile);

const probeV1 = {
  type: 'record',
  name: 'ServicesProbe',
  namespace: 'dev.tracklane.test',
  fields: [
    { name: 'id', type: 'string' },
    { name: 'count', type: 'long' },
  ],
};
// Evolution rule of the project: new fields are optional (a union with null, default null).
const probeV2 = { ...probeV1, fields: [...probeV1.fields, { name: 'note', type: ['null', 'string'], default: null }] };

describe('real services', () => {
  let endpoints: ServiceEndpoints;
  beforeAll(() => {
    endpoints = serviceEndpoints();
  });

  describe('Kafka', () => {
    const suffix = randomUUID();
    const topic = `tracklane.test.services.${suffix}`;
    let kafka: Kafka;
    beforeAll(() => {
      kafka = new Kafka({ clientId: `services-test-${suffix}`, brokers: kafkaBrokerList(endpoints), logLevel: logLevel.WARN });
    });

    it('delivers a message produced idempotently with acks=all to a new consumer group', async () => {
      const admin = kafka.admin();
      await admin.connect();
      try {
        await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true });
      } finally {
        await admin.disconnect();
      }

      const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
      await producer.connect();
      const [ack] = await producer.send({
        topic,
        acks: -1,
        messages: [{ key: 'tenant-a:user-1', value: 'hello', headers: { 'x-probe': suffix } }],
      });
      await producer.disconnect();
      expect(ack?.errorCode).toBe(0);

      const received: KafkaMessage[] = [];
      const consumer = kafka.consumer({ groupId: `services-test-${suffix}` });
      await consumer.connect();
      try {
        await consumer.subscribe({ topic, fromBeginning: true });
        await consumer.run({ eachMessage: async ({ message }) => void received.push(message) });
        const message = await eventually(() => received[0], 20_000, 'the produced message', 50);
        expect(message.key?.toString()).toBe('tenant-a:user-1');
        expect(message.value?.toString()).toBe('hello');
        expect(message.headers?.['x-probe']?.toString()).toBe(suffix);
      } finally {
        await consumer.disconnect();
      }
    });

    afterAll(async () => {
      const admin = kafka.admin();
      await admin.connect();
      await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
      await admin.disconnect();
    });
  });

  describe('schema registry', () => {
    it('gives the same id to the same schema and round-trips the Confluent wire format', async () => {
      const schemaRegistry = new SchemaRegistry({ host: endpoints.schemaRegistryUrl });
      const avroSubject = `tracklane.test.services.${randomUUID()}-value`;
      const schema = { type: SchemaType.AVRO, schema: JSON.stringify(probeV1) } as const;
      const first = await schemaRegistry.register(schema, { subject: avroSubject });
      const second = await schemaRegistry.register(schema, { subject: avroSubject });
      expect(second.id).toBe(first.id);

      const encoded = await schemaRegistry.encode(first.id, { id: 'e1', count: 3 });
      expect(encoded[0]).toBe(0); // magic byte
      expect(encoded.readInt32BE(1)).toBe(first.id);
      // NOTE: a fresh client has no cache, so decode fetches the writer schema by id from the registry.
      const decoded: unknown = await new SchemaRegistry({ host: endpoints.schemaRegistryUrl }).decode(encoded);
      expect(decoded).toMatchObject({ id: 'e1', count: 3 });
    });

    it('accepts a new optional field and rejects an incompatible change', async () => {
      const schemaRegistry = new SchemaRegistry({ host: endpoints.schemaRegistryUrl });
      const avroSubject = `tracklane.test.services.${randomUUID()}-value`;
      const v1 = await schemaRegistry.register({ type: SchemaType.AVRO, schema: JSON.stringify(probeV1) }, { subject: avroSubject });
      const oldRecord = await schemaRegistry.encode(v1.id, { id: 'old', count: 1 });

      const v2 = await schemaRegistry.register({ type: SchemaType.AVRO, schema: JSON.stringify(probeV2) }, { subject: avroSubject });
      expect(v2.id).not.toBe(v1.id);
      expect(await schemaRegistry.getLatestSchemaId(avroSubject)).toBe(v2.id);
      const newRecord = await schemaRegistry.encode(v2.id, { id: 'new', count: 2, note: 'hi' });
      expect(await schemaRegistry.decode(newRecord)).toMatchObject({ id: 'new', count: 2, note: 'hi' });
      expect(await schemaRegistry.decode(oldRecord)).toMatchObject({ id: 'old', count: 1 });

      const incompatible = { ...probeV1, fields: [{ name: 'id', type: 'int' }] };
      await expect(
        schemaRegistry.register({ type: SchemaType.AVRO, schema: JSON.stringify(incompatible) }, { subject: avroSubject }),
      ).rejects.toThrow(/ncompatib/);
    });
  });

  describe('Redis', () => {
    it('answers PING and stores a value', async () => {
      const redis = new Redis(endpoints.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
      await redis.connect();
      try {
        expect(await redis.ping()).toBe('PONG');
        const key = `tracklane:test:services:${randomUUID()}`;
        await redis.set(key, 'v', 'EX', 30);
        expect(await redis.get(key)).toBe('v');
        await redis.del(key);
      } finally {
        redis.disconnect();
      }
    });
  });

  describe('services:up', () => {
    it('starts nothing when everything runs and returns the same endpoints', async (ctx) => {
      // NOTE: against services someone else runs (variables pointing elsewhere) ensuring local ones would start new processes.
      if (JSON.stringify(endpoints) !== JSON.stringify(defaultEndpoints)) ctx.skip();
      const first = await ensureServices();
      const second = await ensureServices();
      expect(first.started).toEqual([]);
      expect(second.started).toEqual([]);
      expect({ ...second, started: undefined }).toEqual({ ...endpoints, started: undefined });
    });

    it('prints exactly one NAME=value line per endpoint, and the gateway login, on stdout', async (ctx) => {
      if (JSON.stringify(endpoints) !== JSON.stringify(defaultEndpoints)) ctx.skip();
      const { stdout } = await run(process.execPath, ['--import', 'tsx', 'scripts/services/services-up.ts'], { timeout: 60_000 });
      expect(stdout.trim().split('\n').sort()).toEqual(
        [
          `CLICKHOUSE_URL=${endpoints.clickhouseUrl}`,
          `CLICKHOUSE_USER=${clickhouseUser}`,
          `CLICKHOUSE_PASSWORD=${clickhousePassword}`,
          `KAFKA_BROKERS=${endpoints.kafkaBrokers}`,
          `REDIS_URL=${endpoints.redisUrl}`,
          `SCHEMA_REGISTRY_URL=${endpoints.schemaRegistryUrl}`,
        ].sort(),
      );
    });
  });
});
