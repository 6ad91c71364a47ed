// Retention in the fleet: overwrite and erasure records on
// the overwrites topic hold no clear id or value in keys or values, a record that does not open
// (or is unsealed) is dead-lettered, logged and counted while the compactor goes on, receipts
// carry copiesExpireBy from the brokers' own retention settings, and a pending request the overwrites topic outlived fails as
// `expired before applied` — on real Kafka, the schema registry, Redis and ClickHouse.
import { randomBytes, randomUUID } from 'node:crypto';
import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import type { Kafka, KafkaMessage } from 'kafkajs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createOverwriteCipher } from '../../libs/compactor/overwrite-cipher.js';
import { createLogger } from '../../libs/core/logger.js';
import { createKafka } from '../../libs/kafka/kafka-client.js';
import { DLQ_HEADERS } from '../../libs/kafka/outputs.js';
import { createRecordCodec } from '../../libs/kafka/record-codec.js';
import { TOPIC_KINDS, topicRetentionFrom, topicRetentionShape, type TopicRetention } from '../../libs/kafka/topic-retention.js';
import { ensureTopics, topicNames, type TopicNames } from '../../libs/kafka/topics.js';
import { z } from 'zod';
import { eventually } from '../support/poll.js';
import { startFleet, type Fleet } from '../support/fleet.js';
import { kafkaBrokerList, serviceEndpoints } from '../support/services.js';

let kafka: Kafka;
let fleet: Fleet | undefined;

beforeAll(() => {
  kafka = createKafka({ brokers: kafkaBrokerList(serviceEndpoints()), clientId: 'fleet-retention-test', logger: createLogger({ level: 'silent' }) });
});
afterEach(async () => {
  await fleet?.stopAll();
  fleet = undefined;
});

/** As `tracklane topics` does before the services start: the topics with the fleet's settings. */
async function createTopics(f: Fleet, env: Record<string, string>): Promise<{ topics: TopicNames; retention: TopicRetention }> {
  const topics = topicNames(f.prefix);
  const retention = topicRetentionFrom(z.object(topicRetentionShape).parse(env));
  await ensureTopics(kafka, topics, { partitions: 1, retention });
  return { topics, retention };
}

/** Every message of a topic from its start, until `until` holds for what was read. */
async function readTopic(topic: string, until: (messages: KafkaMessage[]) => boolean): Promise<KafkaMessage[]> {
  const consumer = kafka.consumer({ groupId: `read-${randomUUID()}` });
  const messages: KafkaMessage[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message }) => void messages.push(message) });
    await eventually(async () => until(messages), 60_000, `messages of ${topic}`);
    return messages;
  } finally {
    await consumer.disconnect();
  }
}

/** The copiesExpireBy horizon computed here from the admin API alone (not through the library). */
async function horizonFromBroker(topics: TopicNames): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const described = await admin.describeConfigs({
      includeSynonyms: false,
      resources: TOPIC_KINDS.map((k) => ({ type: 2, name: topics[k], configNames: ['retention.ms', 'segment.ms', 'file.delete.delay.ms'] })),
    });
    const per = described.resources.map((r) => r.configEntries.reduce((n, e) => n + Number(e.configValue), 0));
    const { brokers } = await admin.describeCluster();
    const broker = await admin.describeConfigs({
      includeSynonyms: false,
      resources: brokers.map((b) => ({ type: 4, name: String(b.nodeId), configNames: ['log.retention.check.interval.ms'] })),
    });
    const interval = Math.max(...broker.resources.map((r) => Number(r.configEntries[0]?.configValue)));
    expect(per).toHaveLength(5);
    expect(interval).toBeGreaterThan(0);
    return Math.max(...per) + interval;
  } finally {
    await admin.disconnect();
  }
}

const HOUR = 3_600_000;

describe('fleet: bounded retention of clear copies (issue 12, checks 4 and 5)', () => {
  it('overwrite and erasure records hold neither the id nor a new value; a record that does not open or is unsealed is dead-lettered, logged and counted; receipts carry copiesExpireBy', async () => {
    const retentionEnv = {
      KAFKA_RAW_RETENTION_MS: String(12 * HOUR),
      KAFKA_RAW_SEGMENT_MS: String(HOUR / 2),
      KAFKA_DLQ_RETENTION_MS: String(3 * 24 * HOUR),
      KAFKA_DLQ_SEGMENT_MS: String(2 * HOUR),
      KAFKA_OVERWRITES_RETENTION_MS: String(2 * 24 * HOUR),
      KAFKA_OVERWRITES_SEGMENT_MS: String(HOUR),
    };
    fleet = await startFleet({ services: [], partitions: 1, env: { LOG_LEVEL: 'info', ...retentionEnv } });
    const f = fleet;
    const { topics } = await createTopics(f, retentionEnv);
    await f.start('collector');
    await f.start('compactor');

    const tag = f.prefix.slice(1, 9);
    const tenantId = `rt-${tag}`;
    expect((await f.admin('PUT', `/v1/admin/tenants/${tenantId}`)).status).toBe(201);
    const ERASED = `erased.user-${tag}@corp.example`;
    const PATCHED = `patched-${tag}`;
    const NEW_EMAIL = `fresh-${tag}@new.example`;
    const NEW_NAME = `Newname${tag}`;
    const erasure = await f.admin<{ requestId: string }>('POST', `/v1/admin/tenants/${tenantId}/erasures`, { userIds: [ERASED], mode: 'delete' });
    expect(erasure.status).toBe(202);
    // NOTE: the PATCH names its user in the URL (so not in the log check below), its values in the body
    const patch = await f.admin<{ requestId: string }>('PATCH', `/v1/admin/tenants/${tenantId}/users/${PATCHED}`, { set: { email: NEW_EMAIL, firstName: NEW_NAME } });
    expect(patch.status).toBe(202);

    const verified = (requestId: string) =>
      eventually(async () => {
        const r = await f.admin('GET', `/v1/admin/requests/${requestId}`);
        if (r.body['status'] === 'failed') throw new Error(`request failed: ${String(r.body['reason'])}`);
        return r.body['status'] === 'verified' ? r.body : undefined;
      }, 180_000, 'a verified receipt');
    const receipts = [await verified(erasure.body.requestId), await verified(patch.body.requestId)];

    // check 5: request time + the longest retention + segment (+ delete delay) + the check interval
    const horizon = await horizonFromBroker(topics);
    expect(horizon).toBeGreaterThanOrEqual(3 * 24 * HOUR + 2 * HOUR); // the dlq's settings, the longest here
    for (const r of receipts) expect(r['copiesExpireBy']).toBe(Number(r['requestedAt']) + horizon);

    // check 4: the overwrites topic read back raw holds no clear id or value, in keys or values
    const onTopic = await readTopic(topics.overwrites, (m) => m.length >= 2);
    expect(onTopic).toHaveLength(2);
    for (const m of onTopic) {
      expect(m.key?.toString('utf8')).toMatch(/^[0-9a-f]{64}$/);
      for (const needle of [ERASED, PATCHED, NEW_EMAIL, NEW_NAME, 'erased.user', 'fresh-']) {
        expect(m.key?.includes(needle), `key holds ${needle}`).toBe(false);
        expect(m.value?.includes(needle), `value holds ${needle}`).toBe(false);
      }
    }

    // a record sealed under another key (or altered) is dead-lettered with a reason, the compactor goes on
    const codec = createRecordCodec({ registry: new SchemaRegistry({ host: serviceEndpoints().schemaRegistryUrl }), topics });
    await codec.init();
    // … and so is an unsealed one, however valid a command it is (anyone who may produce could forge it)
    const FORGED_ID = `forged-${tag}`;
    const forgedCommand = (requestId: string) => ({
      request_id: requestId,
      tenant_id: tenantId,
      subject: 'user' as const,
      id: FORGED_ID,
      set: {},
      mode: 'delete' as const,
      delete_events: true,
      suppress: false,
      requested_at: Date.now(),
      insert_missing: null,
    });
    const [foreignKeyRequest, unsealedRequest] = [randomUUID(), randomUUID()];
    const forged = createOverwriteCipher(randomBytes(32)).seal(forgedCommand(foreignKeyRequest));
    const unsealed = { ...forgedCommand(unsealedRequest), sealed: null };
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({
      topic: topics.overwrites,
      messages: [
        { key: 'forged', value: codec.encodeOverwrite(forged) },
        { key: 'unsealed', value: codec.encodeOverwrite(unsealed) },
      ],
    });
    await producer.disconnect();
    const letters = await readTopic(topics.dlq, (m) => m.length >= 2);
    expect(letters).toHaveLength(2);
    for (const letter of letters) {
      expect(letter.headers?.[DLQ_HEADERS.topic]?.toString()).toBe(topics.overwrites);
      expect(letter.headers?.[DLQ_HEADERS.reason]?.toString()).toBe('record cannot be decoded');
      expect(letter.headers?.[DLQ_HEADERS.error]?.toString().includes(FORGED_ID)).toBe(false);
    }
    expect(letters.map((l) => l.headers?.[DLQ_HEADERS.error]?.toString())).toEqual([expect.stringMatching(/does not authenticate/), 'overwrite record is not sealed']);
    const compactor = f.processes.get('compactor');
    expect(compactor?.exitStatus()).toBeNull();
    // noticed: one error line each, naming the request id and why; counted by reason
    const rejections = (compactor?.output() ?? '')
      .split('\n')
      .filter((l) => l.includes('overwrite record rejected'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(rejections.map((r) => [r['level'], r['requestId'], r['reason']])).toEqual([
      [50, foreignKeyRequest, 'not_authentic'],
      [50, unsealedRequest, 'not_sealed'],
    ]);
    const metrics = await (await fetch(`http://127.0.0.1:${compactor?.port}/metrics`)).text();
    expect(metrics).toMatch(/tracklane_compactor_rejected_commands_total\{reason="not_authentic"[^}]*\} 1/);
    expect(metrics).toMatch(/tracklane_compactor_rejected_commands_total\{reason="not_sealed"[^}]*\} 1/);
    const after = await f.admin<{ requestId: string }>('POST', `/v1/admin/tenants/${tenantId}/erasures`, { userIds: [`later-${tag}`], mode: 'anonymize' });
    await verified(after.body.requestId);

    // no clear id or value in any service's log either
    for (const [name, p] of f.processes) {
      for (const needle of [ERASED, NEW_EMAIL, NEW_NAME, FORGED_ID]) expect(p.output().includes(needle), `${name} log holds ${needle}`).toBe(false);
    }
  }, 600_000);

  it('a request still pending when the overwrites topic\'s retention has passed fails as expired before applied', async () => {
    // NOTE: the least retention allowed (1 min), and no compactor: the request can only wait
    const retentionEnv = { KAFKA_OVERWRITES_RETENTION_MS: '60000', KAFKA_OVERWRITES_SEGMENT_MS: '60000' };
    fleet = await startFleet({ services: [], partitions: 1, env: retentionEnv });
    const f = fleet;
    const { topics } = await createTopics(f, retentionEnv);
    await f.start('collector');
    const tenantId = `rx-${f.prefix.slice(1, 9)}`;
    expect((await f.admin('PUT', `/v1/admin/tenants/${tenantId}`)).status).toBe(201);
    const erasure = await f.admin<{ requestId: string }>('POST', `/v1/admin/tenants/${tenantId}/erasures`, { userIds: ['waiting-user'], mode: 'delete' });
    expect(erasure.status).toBe(202);
    const first = await f.admin('GET', `/v1/admin/requests/${erasure.body.requestId}`);
    expect(first.body).toMatchObject({ status: 'pending', reason: null });
    expect(first.body['copiesExpireBy']).toBe(Number(first.body['requestedAt']) + (await horizonFromBroker(topics)));

    const failed = await eventually(async () => {
      const r = await f.admin('GET', `/v1/admin/requests/${erasure.body.requestId}`);
      return r.body['status'] === 'failed' ? r.body : undefined;
    }, 150_000, 'the pending request expired');
    expect(failed).toMatchObject({ status: 'failed', reason: 'expired before applied' });
    expect(Date.now() - Number(failed['requestedAt'])).toBeGreaterThanOrEqual(60_000);
  }, 300_000);
});
