// Endpoints of the real services (Kafka, schema registry, Redis, ClickHouse gateway) for
// integration tests, read from the environment that services:up prints and the global setup sets.
import { clickhousePassword, clickhouseUser } from '../../scripts/services/clickhouse-gateway.js';
import type { ServiceEndpoints } from '../../scripts/services/services.js';

export type { ServiceEndpoints } from '../../scripts/services/services.js';

const variables = {
  kafkaBrokers: 'KAFKA_BROKERS',
  schemaRegistryUrl: 'SCHEMA_REGISTRY_URL',
  redisUrl: 'REDIS_URL',
  clickhouseUrl: 'CLICKHOUSE_URL',
} as const satisfies Record<keyof ServiceEndpoints, string>;

/**
 * The four endpoints, or an error naming every missing variable and how to get them.
 * NOTE: vitest's global setup (test/support/global-setup.ts) sets them when a test file in the
 * run imports this module; a run that skipped it (watch-mode rerun, other config) lands here.
 */
export function serviceEndpoints(env: NodeJS.ProcessEnv = process.env): ServiceEndpoints {
  const missing = Object.values(variables).filter((name) => !env[name]);
  if (missing.length > 0) {
    throw new Error(
      `Integration services not configured: ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} not set. ` +
        'Start them with `npm run services:up` (needs java 17+, mvn and redis-server; prints the NAME=value lines to export, ' +
        'e.g. `set -a; eval "$(npm run -s services:up)"; set +a`), or run the tests through vitest, whose global setup ' +
        '(test/support/global-setup.ts) starts them.',
    );
  }
  return {
    kafkaBrokers: env[variables.kafkaBrokers] ?? '',
    schemaRegistryUrl: env[variables.schemaRegistryUrl] ?? '',
    redisUrl: env[variables.redisUrl] ?? '',
    clickhouseUrl: env[variables.clickhouseUrl] ?? '',
  };
}

/**
 * The ClickHouse user of the test run: CLICKHOUSE_USER / CLICKHOUSE_PASSWORD when set (a CI's own
 * server), else the shared gateway's, which refuses any other (scripts/services/clickhouse-gateway.ts).
 */
export function clickhouseLogin(env: NodeJS.ProcessEnv = process.env): { username: string; password: string } {
  return env.CLICKHOUSE_USER ? { username: env.CLICKHOUSE_USER, password: env.CLICKHOUSE_PASSWORD ?? '' } : { username: clickhouseUser, password: clickhousePassword };
}

/** @clickhouse/client options reaching the test run's ClickHouse as its user. */
export function clickhouseClientOptions(env: NodeJS.ProcessEnv = process.env): { url: string; username: string; password: string } {
  return { url: serviceEndpoints(env).clickhouseUrl, ...clickhouseLogin(env) };
}

/** `KAFKA_BROKERS` split into the broker list KafkaJS expects. */
export function kafkaBrokerList(endpoints: ServiceEndpoints): string[] {
  return endpoints.kafkaBrokers.split(',').map((b) => b.trim()).filter(Boolean);
}
