// What every fleet process shares: /healthz, /readyz and /metrics on its own port, and a
// shutdown on SIGTERM/SIGINT bounded by a timeout (its steps: libs/core/stop-stack.ts).
import type { AddressInfo } from 'node:net';
import { fastify, type FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import type { Logger } from '../../libs/core/logger.js';

export interface HealthServer {
  port: number;
  close(): Promise<void>;
}

export async function startHealthServer(opts: {
  port: number;
  host: string;
  ready: () => boolean;
  metrics: Registry;
  app?: FastifyInstance;
  /** a start-up placeholder: every other route answers 503 + Retry-After */
  starting?: boolean;
}): Promise<HealthServer> {
  const app = opts.app ?? fastify({ logger: false });
  // NOTE: a placeholder (startup.ts) holds the service's port while it starts: a request that
  // reaches it (a restarted collector found before its readiness gate) gets a retryable 503,
  // never a 404 that SDKs drop as final
  if (opts.starting) {
    app.setNotFoundHandler((_req, reply) => reply.code(503).header('retry-after', '1').send({ success: false, error: 'unavailable', message: 'starting' }));
  }
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => (opts.ready() ? { status: 'ready' } : reply.code(503).send({ status: 'not_ready' })));
  app.get('/metrics', async (_req, reply) => reply.header('content-type', opts.metrics.contentType).send(await opts.metrics.metrics()));
  await app.listen({ port: opts.port, host: opts.host });
  return { port: (app.server.address() as AddressInfo).port, close: () => app.close() };
}

/** SIGTERM/SIGINT → stop() once; exit 0 when it finished cleanly in time, 1 otherwise. */
export function exitOnSignals(stop: () => Promise<boolean>, logger: Logger, timeoutMs: number): void {
  let stopping = false;
  const onSignal = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    const timer = setTimeout(() => {
      logger.error({ timeoutMs }, 'shutdown timed out');
      process.exit(1);
    }, timeoutMs);
    timer.unref();
    stop().then(
      (clean) => process.exit(clean ? 0 : 1),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', () => onSignal('SIGTERM'));
  process.once('SIGINT', () => onSignal('SIGINT'));
}
