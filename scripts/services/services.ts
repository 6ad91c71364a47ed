// Start/stop API for the real services that development, tests and CI use (Kafka, Apicurio
// Registry, Redis, the chDB ClickHouse gateway): used by services-up/-down and vitest's global setup.
import { clickhouseUrl, probeClickHouse, startClickHouseGatewayProcess, stopClickHouseGatewayProcess } from './clickhouse-gateway.js';
import { kafkaBrokers, probeKafka, startKafkaProcess, stopKafkaProcess } from './kafka.js';
import { formatMb, isOurProcess, progress, rssBytes, ServiceSetupError, waitUntilReady } from './process-control.js';
import { probeRedis, redisUrl, startRedisProcess, stopRedisProcess } from './redis.js';
import { probeRegistry, schemaRegistryUrl, startRegistryProcess, stopRegistryProcess } from './registry.js';
import { forgetService, readState, recordService, serviceNames, withStateLock, type ServiceName, type ServiceRecord } from './state.js';

export { serviceNames, type ServiceName } from './state.js';
export { ServiceSetupError } from './process-control.js';

export interface ServiceEndpoints {
  kafkaBrokers: string;
  schemaRegistryUrl: string;
  redisUrl: string;
  clickhouseUrl: string;
}

export interface EnsuredServices extends ServiceEndpoints {
  /** services this call started (empty when everything was already running) */
  started: ServiceName[];
}

export interface EnsureServicesOptions {
  /** default: all four */
  services?: readonly ServiceName[];
  /**
   * Wipe Kafka's log dir and the gateway's chDB data when starting them cold (default true, so
   * every run starts from empty topics and tables). A running service is never touched.
   */
  fresh?: boolean;
}

export const defaultEndpoints: ServiceEndpoints = { kafkaBrokers, schemaRegistryUrl, redisUrl, clickhouseUrl };

export const endpointEnvNames = {
  kafkaBrokers: 'KAFKA_BROKERS',
  schemaRegistryUrl: 'SCHEMA_REGISTRY_URL',
  redisUrl: 'REDIS_URL',
  clickhouseUrl: 'CLICKHOUSE_URL',
} as const satisfies Record<keyof ServiceEndpoints, string>;

export function endpointsToEnv(endpoints: ServiceEndpoints): Record<string, string> {
  return Object.fromEntries(
    (Object.keys(endpointEnvNames) as (keyof ServiceEndpoints)[]).map((key) => [endpointEnvNames[key], endpoints[key]]),
  );
}

type Probe = () => Promise<'ready' | 'closed' | 'other'>;

interface ServiceDriver {
  label: string;
  address: string;
  probe: Probe;
  start(fresh: boolean): Promise<ServiceRecord>;
  stop(record: ServiceRecord): Promise<boolean>;
}

const drivers: Record<ServiceName, ServiceDriver> = {
  kafka: {
    label: 'Kafka',
    address: kafkaBrokers,
    probe: probeKafka,
    start: (fresh) => startKafkaProcess({ fresh }),
    stop: stopKafkaProcess,
  },
  registry: {
    label: 'schema registry',
    address: schemaRegistryUrl,
    probe: probeRegistry,
    start: () => startRegistryProcess(),
    stop: stopRegistryProcess,
  },
  redis: {
    label: 'Redis',
    address: redisUrl,
    probe: probeRedis,
    start: () => startRedisProcess(),
    stop: () => stopRedisProcess(),
  },
  clickhouse: {
    label: 'ClickHouse gateway',
    address: clickhouseUrl,
    probe: probeClickHouse,
    start: (fresh) => startClickHouseGatewayProcess({ fresh }),
    stop: stopClickHouseGatewayProcess,
  },
};

/**
 * TRICKY: a broker that is still starting accepts TCP before it answers metadata, so one
 * "something else is on the port" answer is re-probed for a few seconds before we give up.
 */
async function settledProbe(probe: Probe): Promise<'ready' | 'closed' | 'other'> {
  let result = await probe();
  for (let i = 0; i < 10 && result === 'other'; i += 1) {
    await new Promise((r) => setTimeout(r, 500));
    result = await probe();
  }
  return result;
}

/** Makes one service ready; returns true when this call started it. */
async function ensureService(name: ServiceName, fresh: boolean): Promise<boolean> {
  const driver = drivers[name];
  const record = (await readState()).services[name];
  if ((await driver.probe()) === 'ready') return false;
  if (record !== undefined && (await isOurProcess(record.pid, record.marker))) {
    // NOTE: ours and alive but not answering: still starting or briefly busy; wait rather than start a second one.
    progress(`${name}: pid ${record.pid} is running but not ready yet; waiting`);
    await waitUntilReady({ name, check: async () => (await driver.probe()) === 'ready', timeoutMs: 90_000, pid: record.pid, marker: record.marker, logFile: record.logFile });
    return false;
  }
  if ((await settledProbe(driver.probe)) === 'other') {
    throw new ServiceSetupError(`${name}: ${driver.address} is in use by something that is not a working ${driver.label}; free the port or set ${envNameOf(name)} to a working one`);
  }
  const started = await driver.start(fresh);
  await recordService(name, started);
  progress(`${name}: ready in ${((started.startupMs ?? 0) / 1000).toFixed(1)} s (pid ${started.pid}, RSS ${formatMb(await rssBytes(started.pid))})`);
  return true;
}

function envNameOf(name: ServiceName): string {
  const key: Record<ServiceName, keyof ServiceEndpoints> = { kafka: 'kafkaBrokers', registry: 'schemaRegistryUrl', redis: 'redisUrl', clickhouse: 'clickhouseUrl' };
  return endpointEnvNames[key[name]];
}

/**
 * Starts whichever requested service is not already answering (fetching jars first), waits until
 * each is ready and records what it started in .services/state.json. Idempotent. Starts the
 * services in parallel; when some fail, the others are left running and one error names all failures.
 */
export async function ensureServices(opts: EnsureServicesOptions = {}): Promise<EnsuredServices> {
  const wanted = opts.services ?? serviceNames;
  const fresh = opts.fresh ?? true;
  return withStateLock(async () => {
    const results = await Promise.allSettled(wanted.map((name) => ensureService(name, fresh)));
    const started: ServiceName[] = [];
    const failures: string[] = [];
    results.forEach((result, i) => {
      const name = wanted[i] as ServiceName;
      if (result.status === 'fulfilled') {
        if (result.value) started.push(name);
      } else {
        const reason: unknown = result.reason;
        failures.push(reason instanceof Error ? reason.message : String(reason));
      }
    });
    if (failures.length > 0) {
      const note = started.length > 0 ? `\n(started and left running: ${started.join(', ')}; npm run services:down stops them)` : '';
      throw new ServiceSetupError(`could not start every service:\n- ${failures.join('\n- ')}${note}`);
    }
    return { ...defaultEndpoints, started };
  });
}

/**
 * Stops the services our scripts started (all recorded ones, or `only` those), newest layers
 * first, and clears their state entries. Services we did not start are never touched.
 */
export async function stopServices(opts: { only?: readonly ServiceName[] } = {}): Promise<ServiceName[]> {
  return withStateLock(async () => {
    const state = await readState();
    const stopped: ServiceName[] = [];
    for (const name of ['clickhouse', 'registry', 'kafka', 'redis'] as const) {
      const record = state.services[name];
      if (record === undefined || (opts.only !== undefined && !opts.only.includes(name))) continue;
      progress(`${name}: stopping pid ${record.pid}`);
      if (await drivers[name].stop(record)) stopped.push(name);
      await forgetService(name);
    }
    return stopped;
  });
}

/** Starts one service if it is not answering (fresh=false: Kafka keeps its log dir). */
export async function startService(name: ServiceName, opts: { fresh?: boolean } = {}): Promise<boolean> {
  return withStateLock(() => ensureService(name, opts.fresh ?? false));
}

/** Stops one service that our scripts started; throws for one they did not start. */
export async function stopService(name: ServiceName): Promise<boolean> {
  return withStateLock(async () => {
    const record = (await readState()).services[name];
    if (record === undefined) {
      if ((await drivers[name].probe()) === 'closed') return false;
      throw new ServiceSetupError(`${name}: ${drivers[name].address} was not started by scripts/services (no entry in .services/state.json); not stopping it`);
    }
    const stopped = await drivers[name].stop(record);
    await forgetService(name);
    return stopped;
  });
}

/** Starts Kafka again with the same log dir, so topics, offsets and acknowledged records survive. */
export function startKafka(): Promise<boolean> {
  return startService('kafka', { fresh: false });
}

/** Stops the Kafka broker our scripts started (SIGTERM, wait, SIGKILL after 30 s). */
export function stopKafka(): Promise<boolean> {
  return stopService('kafka');
}

/**
 * Stops the local Redis on 6379 even when the machine started it (the fleet's "Redis stopped"
 * test needs that). Whether we own it is kept: startRedis() records it again only if we did.
 */
export async function stopRedis(): Promise<boolean> {
  return withStateLock(() => stopRedisProcess());
}

/** Starts Redis with the machine's own command line if nothing answers PING on 6379. */
export async function startRedis(): Promise<boolean> {
  return withStateLock(async () => {
    if ((await probeRedis()) === 'ready') return false;
    const owned = (await readState()).services.redis !== undefined;
    const record = await startRedisProcess();
    if (owned) await recordService('redis', record);
    return true;
  });
}

export interface ServiceStatus {
  name: ServiceName;
  address: string;
  state: 'ready' | 'closed' | 'other';
  /** set when our scripts started it */
  pid?: number;
  rssBytes?: number;
}

export async function servicesStatus(): Promise<ServiceStatus[]> {
  const state = await readState();
  return Promise.all(
    serviceNames.map(async (name) => {
      const record = state.services[name];
      const status: ServiceStatus = { name, address: drivers[name].address, state: await drivers[name].probe() };
      if (record !== undefined && (await isOurProcess(record.pid, record.marker))) {
        status.pid = record.pid;
        const rss = await rssBytes(record.pid);
        if (rss !== undefined) status.rssBytes = rss;
      }
      return status;
    }),
  );
}
