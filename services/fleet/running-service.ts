// Starts a fleet service's workers and its health server, and gives back one stop() that
// runs in the order of STYLE.md §8: stop intake (consumers drain and commit), flush and close
// the service's own parts, close shared clients, then the health server.
import type { FastifyInstance } from 'fastify';
import type { z } from 'zod';
import { ConfigError, parseEnv } from '../../libs/config/env.js';
import { safeErrorFields } from '../../libs/core/errors.js';
import { createLogger, type Logger } from '../../libs/core/logger.js';
import { runStopSteps, type StopStep } from '../../libs/core/stop-stack.js';
import type { StageWorker } from '../../libs/kafka/stage-worker.js';
import type { FleetContext } from './fleet-context.js';
import { StartupTimeoutError } from './startup.js';
import { exitOnSignals, startHealthServer } from './worker-host.js';

export interface RunningService {
  /** port of the health/metrics (and, for the collector, API) server */
  port: number;
  /** the collector's operator listener (ADMIN_PORT) */
  adminPort?: number;
  /** resolves true when every step stopped cleanly; idempotent */
  stop(): Promise<boolean>;
}

export async function runningService(
  ctx: FleetContext,
  workers: readonly StageWorker[],
  ownStops: readonly StopStep[],
  opts: { app?: FastifyInstance; ready?: () => boolean } = {},
): Promise<RunningService> {
  for (const w of workers) await w.start();
  const ready = opts.ready ?? (() => workers.every((w) => w.ready()));
  const health = await startHealthServer({ port: ctx.config.PORT, host: ctx.config.HOST, ready, metrics: ctx.metrics.registry, app: opts.app });
  ctx.logger.info({ service: ctx.service, port: health.port, topicPrefix: ctx.config.TOPIC_PREFIX }, 'service started');
  let stopping: Promise<boolean> | undefined;
  return {
    port: health.port,
    stop: () =>
      (stopping ??= runStopSteps(
        [
          ...workers.map((w, i) => ({ name: `worker-${i}`, run: () => w.stop() })),
          ...ownStops,
          ...ctx.stopSteps,
          { name: 'http', run: () => health.close() },
        ],
        ctx.logger,
      )),
  };
}

/**
 * A worker that cannot go on where a restart of the process does better (the broker refuses the
 * credentials: a rotated Secret is read at start): log and exit non-zero. Faults of the broker
 * itself are ridden out in process (libs/kafka/stage-worker.ts).
 */
export function exitOnFatal(logger: Logger): (error: Error) => void {
  return (error) => {
    logger.fatal({ ...safeErrorFields(error) }, 'the worker cannot go on (Kafka refuses its credentials); exiting so that a restart reads them again');
    process.exit(1);
  };
}

/** Entry point of a fleet service: parse env once, start, stop on SIGTERM/SIGINT. */
export function runServiceMain<S extends z.ZodType<{ LOG_LEVEL: string; SHUTDOWN_TIMEOUT_MS: number }>>(
  name: string,
  schema: S,
  start: (config: z.infer<S>, logger: Logger) => Promise<RunningService>,
): void {
  let config: z.infer<S>;
  try {
    config = parseEnv(schema, process.env);
  } catch (err) {
    process.stderr.write(`tracklane ${name}: ${(err as Error).message}\n`);
    process.exit(err instanceof ConfigError ? 2 : 1);
  }
  const logger = createLogger({ level: config.LOG_LEVEL, name });
  start(config, logger).then(
    (svc) => exitOnSignals(() => svc.stop(), logger, config.SHUTDOWN_TIMEOUT_MS),
    (err: unknown) => {
      // NOTE: our own errors' messages name settings only; any other error (a ClickHouse
      // answer may quote a row) is logged by class and code, never by message
      const ours = err instanceof StartupTimeoutError || err instanceof ConfigError;
      logger.fatal(ours ? { error: (err as Error).name } : safeErrorFields(err), ours ? `failed to start: ${(err as Error).message}` : 'failed to start');
      process.exit(1);
    },
  );
}
