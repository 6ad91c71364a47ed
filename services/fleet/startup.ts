// Start-up against dependencies that may be late or may refuse us: the fleet context
// is opened again and again until STARTUP_TIMEOUT_MS, /readyz answering 503 meanwhile; each new
// problem is logged once as one line naming the setting to check (never a value), and at the
// deadline the service gives up (exit 1), so the orchestrator shows a failing pod rather than a
// silent one. A configuration error is not retried.
import { Registry } from 'prom-client';
import { clickhouseStartupProblem } from '../../libs/clickhouse/clickhouse-connection.js';
import { ConfigError } from '../../libs/config/env.js';
import { redisStartupProblem } from '../../libs/config/redis-connection.js';
import { safeErrorFields } from '../../libs/core/errors.js';
import { errorChain, tlsFailure } from '../../libs/core/tls-errors.js';
import type { Logger } from '../../libs/core/logger.js';
import { startHealthServer } from './worker-host.js';

/** One line naming what to check for an error, or undefined when the classifier does not know it. */
export type StartupClassifier = (err: unknown) => string | undefined;

/** What a service connects to at start. */
export type Dependency = 'kafka' | 'registry' | 'redis' | 'clickhouse';

/** A start-up step's failure, tagged with the dependency it talked to (so the line names the right settings). */
export class DependencyError extends Error {
  override readonly name = 'DependencyError';
  constructor(
    readonly dependency: Dependency,
    cause: unknown,
  ) {
    super(`${dependency} unavailable`, { cause });
  }
}

/** Runs one start-up step against a dependency; a failure other than a ConfigError comes back tagged. */
export async function using<T>(dependency: Dependency, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    throw err instanceof ConfigError || err instanceof DependencyError ? err : new DependencyError(dependency, err);
  }
}

/** what to say of a dependency that took the whole start timeout without answering */
const unanswered: Record<Dependency, string> = {
  kafka: 'Kafka did not answer in time: check KAFKA_BROKERS, KAFKA_SSL and the network to the brokers',
  registry: 'the schema registry did not answer in time: check SCHEMA_REGISTRY_URL',
  redis: 'Redis did not answer in time: check REDIS_URL',
  clickhouse: 'ClickHouse did not answer in time: check CLICKHOUSE_URL',
};

const unreachable: Record<Dependency, string> = {
  kafka: 'Kafka is not reachable: check KAFKA_BROKERS',
  registry: 'the schema registry is not reachable: check SCHEMA_REGISTRY_URL',
  redis: 'Redis is not reachable: check REDIS_URL',
  clickhouse: 'ClickHouse is not reachable: check CLICKHOUSE_URL',
};

export class StartupTimeoutError extends Error {
  override readonly name = 'StartupTimeoutError';
}

/** KafkaJS errors of a broker that refuses us or that we refuse (by class name and error code). */
export const kafkaStartupProblem: StartupClassifier = (err) => {
  const chain = errorChain(err);
  const names = chain.map((e) => (e instanceof Error ? e.name : ''));
  if (names.includes('KafkaJSSASLAuthenticationError')) {
    return 'Kafka refused the SASL credentials: check KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD (or KAFKA_SASL_PASSWORD_FILE) and KAFKA_SASL_MECHANISM';
  }
  if (chain.some((e) => (e as { type?: unknown }).type === 'UNSUPPORTED_SASL_MECHANISM')) {
    return 'the Kafka listener does not offer KAFKA_SASL_MECHANISM: check KAFKA_SASL_MECHANISM and KAFKA_BROKERS';
  }
  const tls = tlsFailure(err);
  if (tls === 'untrusted') return "the Kafka broker's TLS certificate is not trusted: check KAFKA_SSL_CA_FILE (unset: the system's CAs)";
  if (tls === 'expired') return "the Kafka broker's TLS certificate has expired or is not valid yet: renew the broker's certificate";
  if (tls === 'hostname') return "the Kafka broker's TLS certificate names another host: check KAFKA_BROKERS (host names must match the certificate)";
  if (tls === 'not-tls') return 'the Kafka listener does not speak TLS: check KAFKA_SSL against the listener KAFKA_BROKERS names';
  if (names.includes('KafkaJSConnectionClosedError')) {
    return 'Kafka closed the connection during the handshake: check KAFKA_SSL and KAFKA_SASL_MECHANISM against the listener KAFKA_BROKERS names';
  }
  return undefined;
};

/** Start-up problems of the schema registry client (HTTP status, TLS). */
export const registryStartupProblem: StartupClassifier = (err) => {
  const chain = errorChain(err);
  // NOTE: @kafkajs/confluent-schema-registry rejects with mappersmith's response error: a `status`
  const status = chain.map((e) => (e as { status?: unknown }).status).find((s) => typeof s === 'number');
  if (status === 401 || status === 403) {
    return 'the schema registry refused the credentials: check SCHEMA_REGISTRY_USER and SCHEMA_REGISTRY_PASSWORD (or SCHEMA_REGISTRY_PASSWORD_FILE)';
  }
  const tls = tlsFailure(err);
  if (tls === 'untrusted') return "the schema registry's TLS certificate is not trusted: check SCHEMA_REGISTRY_CA_FILE (unset: the system's CAs)";
  if (tls === 'expired') return "the schema registry's TLS certificate has expired or is not valid yet: renew the registry's certificate";
  if (tls === 'hostname') return "the schema registry's TLS certificate names another host: check SCHEMA_REGISTRY_URL";
  if (tls === 'not-tls') return 'the schema registry does not speak TLS there: check the scheme and port of SCHEMA_REGISTRY_URL';
  return undefined;
};

export type StartupClassifiers = Partial<Record<Dependency, StartupClassifier>>;

export const defaultClassifiers: StartupClassifiers = {
  kafka: kafkaStartupProblem,
  registry: registryStartupProblem,
  redis: redisStartupProblem,
  clickhouse: clickhouseStartupProblem,
};

/**
 * The line for a start-up failure: its dependency's classifier, else that dependency's "not
 * reachable", else the error's class (and system code) — never its message, which may quote values.
 */
export function describeStartupError(err: unknown, classifiers: StartupClassifiers): string {
  if (!(err instanceof DependencyError)) return `start-up failed: ${safeErrorFields(err).error}`;
  return classifiers[err.dependency]?.(err.cause) ?? unreachable[err.dependency];
}

export interface StartupOptions<T> {
  service: string;
  logger: Logger;
  /** STARTUP_TIMEOUT_MS */
  timeoutMs: number;
  /** where /healthz and /readyz answer while starting (the service's own server takes it after) */
  port: number;
  host: string;
  classifiers: StartupClassifiers;
  /**
   * opens everything, each step through `step` (which tags its failure with the dependency and
   * says what the attempt waits for); must clean up after itself when it throws
   */
  open: (step: StartupStep) => Promise<T>;
  /** first wait between attempts (doubles up to 5 s) */
  initialDelayMs?: number;
}

/** One step of an attempt: `using`, remembering which dependency the attempt is waiting for. */
export type StartupStep = <S>(dependency: Dependency, run: () => Promise<S>) => Promise<S>;

class AttemptTimedOut extends Error {}

/**
 * Opens with retries until the deadline. Throws the ConfigError of a bad setting at once, and a
 * StartupTimeoutError (its message: the last problem) when the deadline passes — also while an
 * attempt hangs (a registry that accepts the connection and never answers): each attempt races
 * the time left; one cut off is abandoned (the process exits on the error).
 */
export async function openWithinStartupTimeout<T>(opts: StartupOptions<T>): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  const timedOut = (problem: string) => new StartupTimeoutError(`not started within STARTUP_TIMEOUT_MS (${opts.timeoutMs} ms): ${problem}`);
  // NOTE: port 0 (tests) cannot be held for the real server: no placeholder then
  const placeholder = opts.port === 0 ? undefined : await startHealthServer({ port: opts.port, host: opts.host, ready: () => false, metrics: new Registry(), starting: true });
  let lastProblem: string | undefined;
  let delay = opts.initialDelayMs ?? 500;
  try {
    for (let attempt = 1; ; attempt++) {
      let waitingFor: Dependency | undefined;
      const step: StartupStep = (dependency, run) => {
        waitingFor = dependency;
        return using(dependency, run);
      };
      let timer: NodeJS.Timeout | undefined;
      const cutOff = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new AttemptTimedOut()), Math.max(0, deadline - Date.now()));
      });
      try {
        return await Promise.race([opts.open(step), cutOff]);
      } catch (err) {
        if (err instanceof ConfigError) throw err;
        if (err instanceof AttemptTimedOut) throw timedOut(waitingFor ? unanswered[waitingFor] : (lastProblem ?? 'no answer'));
        const problem = describeStartupError(err, opts.classifiers);
        if (problem !== lastProblem) {
          const cause = err instanceof DependencyError ? err.cause : err;
          opts.logger.error({ service: opts.service, attempt, ...safeErrorFields(cause) }, `not ready: ${problem}`);
          lastProblem = problem;
        }
        const left = deadline - Date.now();
        if (left <= 0) throw timedOut(problem);
        await new Promise((r) => setTimeout(r, Math.min(delay, left)));
        delay = Math.min(delay * 2, 5_000);
      } finally {
        clearTimeout(timer);
      }
    }
  } finally {
    await placeholder?.close();
  }
}

/**
 * A start-up step outside the fleet context (ClickHouse migrations, the analyst login, the
 * overwrite registry's first load): retried the same way, /readyz 503 meanwhile, one line per
 * problem naming the setting, exit at STARTUP_TIMEOUT_MS. `run` must be safe to repeat.
 */
export function startupStep<T>(config: StartupConfig, logger: Logger, service: string, dependency: Dependency, run: () => Promise<T>): Promise<T> {
  return openWithinStartupTimeout({ ...startupOptions(config, logger, service), open: (step) => step(dependency, run) });
}

export type StartupConfig = { STARTUP_TIMEOUT_MS: number; PORT: number; HOST: string };

/** A fleet service's start-up options from its config (everything but what to open). */
export function startupOptions(config: StartupConfig, logger: Logger, service: string): Omit<StartupOptions<never>, 'open'> {
  return { service, logger, timeoutMs: config.STARTUP_TIMEOUT_MS, port: config.PORT, host: config.HOST, classifiers: defaultClassifiers };
}
