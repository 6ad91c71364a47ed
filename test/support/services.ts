// Endpoints of the real services (Kafka, schema registry, Redis, ClickHouse gateway) for
// integration tests, read from the environment that services:up prints and the global setup sets.
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

/** `KAFKA_BROKERS` split into the broker list KafkaJS expects. */
export function kafkaBrokerList(endpoints: ServiceEndpoints): string[] {
  return endpoints.kafkaBrokers.split(',').map((b) => b.trim()).filter(Boolean);
}
