// Vitest globalSetup: when the run includes a test file that uses the real services (imports
// test/support/services, directly or through local helpers), starts whichever is not running and
// exports their endpoints to the workers; on teardown stops only what it started.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import {
  endpointEnvNames,
  endpointsToEnv,
  ensureServices,
  stopServices,
  type ServiceEndpoints,
  type ServiceName,
} from '../../scripts/services/services.js';

const serviceOfEndpoint: Record<keyof ServiceEndpoints, ServiceName> = {
  kafkaBrokers: 'kafka',
  schemaRegistryUrl: 'registry',
  redisUrl: 'redis',
  clickhouseUrl: 'clickhouse',
};

const servicesModule = fileURLToPath(new URL('./services.ts', import.meta.url));
// NOTE: a test file that reads an endpoint variable itself (not through serviceEndpoints()) counts
// too; only test files are checked for it, since service config modules name the variables.
const readsEndpointEnv = /process\.env(?:\.|\[['"])(?:KAFKA_BROKERS|SCHEMA_REGISTRY_URL|REDIS_URL|CLICKHOUSE_URL)\b/;
const relativeImport = /(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g;

/** Whether file imports test/support/services.ts, directly or through other local modules. */
async function reachesServices(file: string, seen: Set<string>): Promise<boolean> {
  if (file === servicesModule) return true;
  if (seen.has(file)) return false;
  seen.add(file);
  const source = await readFile(file, 'utf8').catch(() => '');
  for (const match of source.matchAll(relativeImport)) {
    const spec = match[1] ?? '';
    // NOTE: NodeNext sources import './x.js' for './x.ts'.
    const target = resolve(dirname(file), spec).replace(/\.js$/, '.ts');
    if (target.endsWith('.ts') && existsSync(target) && (await reachesServices(target, seen))) return true;
  }
  return false;
}

/**
 * True unless every test file of this run is known not to need the services.
 * TRICKY: relies on vitest 4 collecting the run's paths before global setup
 * (`vitest.state.getPaths()`); when that list is empty we cannot tell, so we start them.
 */
async function runNeedsServices(project: TestProject): Promise<boolean> {
  const files = project.vitest.state.getPaths();
  if (files.length === 0) return true;
  const seen = new Set<string>();
  for (const file of files) {
    if (readsEndpointEnv.test(await readFile(file, 'utf8').catch(() => ''))) return true;
    if (await reachesServices(file, seen)) return true;
  }
  return false;
}

export async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  const missing = (Object.keys(endpointEnvNames) as (keyof ServiceEndpoints)[]).filter((key) => !process.env[endpointEnvNames[key]]);
  if (missing.length === 0) return undefined;
  if (!(await runNeedsServices(project))) return undefined;

  const started = Date.now();
  // NOTE: only services whose variable is unset are ensured, so a CI that points e.g.
  // KAFKA_BROKERS at its own broker does not get a second one.
  const result = await ensureServices({ services: missing.map((key) => serviceOfEndpoint[key]) });
  const env = endpointsToEnv(result);
  for (const key of missing) {
    const name = endpointEnvNames[key];
    // NOTE: vitest builds each worker's env from process.env after global setup, so this reaches the tests.
    process.env[name] = env[name];
  }
  process.stderr.write(
    `[services] global setup: ${result.started.length > 0 ? `started ${result.started.join(', ')}` : 'reused running services'} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
  );

  return async () => {
    if (process.env.TRACKLANE_KEEP_SERVICES === '1' || result.started.length === 0) return;
    const stopped = await stopServices({ only: result.started });
    process.stderr.write(`[services] global teardown: stopped ${stopped.join(', ') || 'nothing'}\n`);
  };
}
