// `tracklane topics` against the real broker: the topics are created with
// the configured retention.ms and segment.ms (read back with the admin API); run again with
// other settings it alters nothing and warns, naming the topic, the setting and both values.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../libs/core/logger.js';
import { createKafka } from '../../libs/kafka/kafka-client.js';
import { topicNames } from '../../libs/kafka/topics.js';
import { kafkaBrokerList, serviceEndpoints } from '../../test/support/services.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const run = promisify(execFile);
const kafka = createKafka({ brokers: kafkaBrokerList(serviceEndpoints()), clientId: 'topics-command-test', logger: createLogger({ level: 'silent' }) });
const admin = kafka.admin();
beforeAll(() => admin.connect());
afterAll(() => admin.disconnect());

const topicsCommand = (env: Record<string, string>) =>
  run(process.execPath, ['--import', 'tsx', 'services/cli/main.ts', 'topics'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', KAFKA_BROKERS: serviceEndpoints().kafkaBrokers, KAFKA_PARTITIONS: '1', LOG_LEVEL: 'warn', ...env },
    timeout: 60_000,
  });

async function settings(names: string[]): Promise<Record<string, string>> {
  const d = await admin.describeConfigs({
    includeSynonyms: false,
    resources: names.map((name) => ({ type: 2, name, configNames: ['retention.ms', 'segment.ms'] })),
  });
  return Object.fromEntries(d.resources.flatMap((r) => r.configEntries.map((e) => [`${r.resourceName} ${e.configName}`, e.configValue])));
}

describe('tracklane topics', () => {
  it('creates the topics with the configured retention and segments, then warns about a difference without altering', async () => {
    const prefix = `tc${randomBytes(4).toString('hex')}.`;
    const names = topicNames(prefix);
    const first = await topicsCommand({ TOPIC_PREFIX: prefix, KAFKA_ENRICHED_RETENTION_MS: '7200000', KAFKA_ENRICHED_SEGMENT_MS: '900000', KAFKA_OVERWRITES_RETENTION_MS: '259200000' });
    expect(first.stdout).toMatch(/^created /m);
    const s = await settings(Object.values(names));
    expect(s).toEqual({
      [`${names.raw} retention.ms`]: '86400000',
      [`${names.raw} segment.ms`]: '3600000',
      [`${names.enriched} retention.ms`]: '7200000',
      [`${names.enriched} segment.ms`]: '900000',
      [`${names.clean} retention.ms`]: '86400000',
      [`${names.clean} segment.ms`]: '3600000',
      [`${names.dlq} retention.ms`]: '604800000',
      [`${names.dlq} segment.ms`]: '86400000',
      [`${names.overwrites} retention.ms`]: '259200000',
      [`${names.overwrites} segment.ms`]: '86400000',
    });

    const again = await topicsCommand({ TOPIC_PREFIX: prefix, KAFKA_ENRICHED_RETENTION_MS: '7200000', KAFKA_ENRICHED_SEGMENT_MS: '900000', KAFKA_OVERWRITES_RETENTION_MS: '259200000', KAFKA_RAW_RETENTION_MS: '43200000' });
    expect(again.stdout).toMatch(/^all topics exist$/m);
    const warnings = again.stdout.split('\n').filter((l) => l.includes('"level":40'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(`topic ${names.raw} has retention.ms=86400000 but KAFKA_RAW_RETENTION_MS is 43200000`);
    expect((await settings([names.raw]))[`${names.raw} retention.ms`]).toBe('86400000');
  }, 120_000);

  it('refuses a segment longer than its retention before touching Kafka, naming both variables', async () => {
    const prefix = `tc${randomBytes(4).toString('hex')}.`;
    const failed = await topicsCommand({ TOPIC_PREFIX: prefix, KAFKA_CLEAN_RETENTION_MS: '3600000', KAFKA_CLEAN_SEGMENT_MS: '7200000' }).then(
      () => null,
      (err: { code?: number; stdout?: string; stderr?: string }) => err,
    );
    expect(failed?.code).not.toBe(0);
    expect(`${failed?.stdout ?? ''}${failed?.stderr ?? ''}`).toMatch(/KAFKA_CLEAN_SEGMENT_MS must not exceed KAFKA_CLEAN_RETENTION_MS/);
    expect((await admin.listTopics()).filter((t) => t.startsWith(prefix))).toEqual([]);
  }, 120_000);
});
