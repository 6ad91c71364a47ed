// The `tracklane` command line: start (embedded pipeline or a fleet service), migrate, topics, demo, load, export.
import { Command } from 'commander';
import { ChdbOpenError, createClickHouse } from '../../libs/clickhouse/client.js';
import { clickhouseConfigFrom } from '../../libs/clickhouse/clickhouse-connection.js';
import { migrate } from '../../libs/clickhouse/migrate.js';
import { MasterKeyError } from '../../libs/anonymize/master-key.js';
import { ConfigError, parseEnv } from '../../libs/config/env.js';
import { createLogger } from '../../libs/core/logger.js';
import { embeddedConfigSchema } from '../embedded/config.js';
import { startEmbedded } from '../embedded/embedded-runner.js';
import { runDemo } from '../demo/demo-runner.js';
import { join, resolve } from 'node:path';
import { createKafka } from '../../libs/kafka/kafka-client.js';
import { kafkaSecurityFrom, kafkaSecurityShape } from '../../libs/kafka/kafka-security.js';
import { ensureTopics, topicNames } from '../../libs/kafka/topics.js';
import { topicRetentionFrom, topicRetentionShape } from '../../libs/kafka/topic-retention.js';
import { fleetConfigSchema } from '../fleet/fleet-config.js';
import { registerLoadCommand } from '../loader/load-command.js';
import { registerExportCommand } from './export-command.js';

const topicsConfigSchema = fleetConfigSchema.pick({
  KAFKA_BROKERS: true,
  TOPIC_PREFIX: true,
  KAFKA_PARTITIONS: true,
  KAFKA_REPLICATION_FACTOR: true,
  LOG_LEVEL: true,
  ...(Object.fromEntries(Object.keys(kafkaSecurityShape).map((k) => [k, true])) as { [K in keyof typeof kafkaSecurityShape]: true }),
  ...(Object.fromEntries(Object.keys(topicRetentionShape).map((k) => [k, true])) as { [K in keyof typeof topicRetentionShape]: true }),
});

const program = new Command('tracklane')
  .description('Privacy-aware product-usage analytics pipeline')
  .showHelpAfterError();

const FLEET_SERVICES = ['collector', 'enricher', 'anonymizer', 'sink', 'compactor'] as const;

program
  .command('start')
  .description(
    'run the embedded pipeline (default: collector + stages + ClickHouse in one process), ' +
      `or one fleet service: ${FLEET_SERVICES.join(', ')} (configured by environment variables)`,
  )
  .argument('[service]', 'embedded | collector | enricher | anonymizer | sink | compactor', 'embedded')
  .action(async (service: string) => {
    if (service !== 'embedded') {
      if (!(FLEET_SERVICES as readonly string[]).includes(service)) {
        throw new ConfigError(`unknown service "${service}"; choose embedded, ${FLEET_SERVICES.join(', ')}`);
      }
      // each service's main module parses its environment and handles signals itself
      await import(`../${service}/main.js`);
      return;
    }
    const config = parseEnv(embeddedConfigSchema, process.env);
    const logger = createLogger({ level: config.LOG_LEVEL });
    const server = await startEmbedded(config, logger);
    const shutdown = (signal: string) => {
      logger.info({ signal }, 'stopping');
      server.stop().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    };
    process.once('SIGINT', () => shutdown('SIGINT'));
    process.once('SIGTERM', () => shutdown('SIGTERM'));
  });

program
  .command('topics')
  .description(
    'create the Kafka topics (KAFKA_BROKERS, TOPIC_PREFIX, KAFKA_PARTITIONS, KAFKA_REPLICATION_FACTOR, KAFKA_<TOPIC>_RETENTION_MS / _SEGMENT_MS) ' +
      'if they do not exist; warn about existing ones whose retention differs',
  )
  .action(async () => {
    const config = parseEnv(topicsConfigSchema, process.env);
    const logger = createLogger({ level: config.LOG_LEVEL });
    const kafka = createKafka({ brokers: config.KAFKA_BROKERS, clientId: 'tracklane-topics', logger, ...kafkaSecurityFrom(config) });
    const created = await ensureTopics(kafka, topicNames(config.TOPIC_PREFIX), {
      partitions: config.KAFKA_PARTITIONS,
      replicationFactor: config.KAFKA_REPLICATION_FACTOR,
      retention: topicRetentionFrom(config),
      logger,
    });
    process.stdout.write(created.length > 0 ? `created ${created.join(', ')}\n` : 'all topics exist\n');
  });

program
  .command('migrate')
  .description('apply the ClickHouse migrations in schemas/clickhouse (idempotent)')
  .action(async () => {
    const config = parseEnv(embeddedConfigSchema, process.env);
    const logger = createLogger({ level: config.LOG_LEVEL });
    const client = createClickHouse(clickhouseConfigFrom(config, { chdbDir: join(resolve(config.TRACKLANE_DATA_DIR), 'clickhouse'), logger }));
    try {
      const { applied, skipped } = await migrate(client, { logger, cluster: config.CLICKHOUSE_CLUSTER, database: config.CLICKHOUSE_DATABASE });
      process.stdout.write(`migrations: ${applied.length} applied, ${skipped.length} already applied\n`);
      for (const name of applied) process.stdout.write(`  applied ${name}\n`);
    } finally {
      await client.close();
    }
  });

program
  .command('demo')
  .description('start the embedded pipeline on a temporary data dir, send synthetic traffic, print a summary')
  .option('-n, --events <n>', 'number of events to send', (v) => Number.parseInt(v, 10), 12_000)
  .option('--seed <n>', 'random seed of the synthetic traffic', (v) => Number.parseInt(v, 10), 42)
  .option('--keep', 'keep the temporary data dir and print its path', false)
  .action(async (opts: { events: number; seed: number; keep: boolean }) => {
    const ok = await runDemo({ events: opts.events, seed: opts.seed, keep: opts.keep, out: process.stdout, err: process.stderr });
    process.exitCode = ok ? 0 : 1;
  });

registerLoadCommand(program);
registerExportCommand(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  const known = err instanceof ConfigError || err instanceof MasterKeyError || err instanceof ChdbOpenError;
  process.stderr.write(`tracklane: ${err instanceof Error ? err.message : String(err)}\n`);
  if (!known && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
  process.exit(known ? 2 : 1);
});
