// The collector's HTTP server: Segment-compatible ingestion, the admin API and health
// routes. One instance per listener: `combined` (embedded default: everything on one port),
// `public` (ingestion, the tag and the tenant routes, tenant keys only) or `admin` (every admin
// route, the operator token too). The runner decides what the pipeline behind it is.
import { randomUUID } from 'node:crypto';
import { fastify, type FastifyError, type FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { safeErrorFields } from '../../libs/core/errors.js';
import type { Logger } from '../../libs/core/logger.js';
import { BodyError, registerBodyParser } from './body-parser.js';
import { registerAdminRoutes, type AdminDeps, type AdminListener } from './admin-routes.js';
import { registerIngestRoutes, type IngestDeps } from './ingest-routes.js';
import { registerTagRoutes, type TagRouteOptions } from './tag-routes.js';

export interface CollectorAppOptions {
  logger: Logger;
  /** compressed and uncompressed request size limit */
  maxRequestBytes: number;
  /** fastify trustProxy: which proxies may set X-Forwarded-For */
  trustProxy: boolean | string | string[];
  ingest: IngestDeps;
  admin: AdminDeps;
  /** serves GET /metrics (Prometheus text) when given */
  metrics?: Registry;
  /** the web tag (GET /tag.js) is served where ingestion is; its test page only when asked */
  tag?: TagRouteOptions;
  /** default `combined` */
  listener?: AdminListener;
}

export function buildCollectorApp(opts: CollectorAppOptions): FastifyInstance {
  const app = fastify({
    logger: false,
    bodyLimit: opts.maxRequestBytes,
    trustProxy: opts.trustProxy,
    // NOTE: user and account ids (≤ 128 characters, URL-encoded up to 3×) are path parameters
    routerOptions: { maxParamLength: 512 },
    // Segment SDKs retry on 5xx; a slow ClickHouse flush must not be cut short by a timeout.
    requestTimeout: 120_000,
    // NOTE: request ids name admin actions in the audit log: unique across replicas and restarts.
    genReqId: () => randomUUID(),
  });
  const listener = opts.listener ?? 'combined';
  registerBodyParser(app, opts.maxRequestBytes);

  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (err instanceof BodyError) {
      return reply.code(err.statusCode).send({ success: false, error: errorName(err.statusCode), message: err.message });
    }
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return reply.code(413).send({
        success: false,
        error: 'payload_too_large',
        message: `request body exceeds ${opts.maxRequestBytes} bytes`,
      });
    }
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
      return reply.code(err.statusCode).send({ success: false, error: errorName(err.statusCode), message: err.message });
    }
    opts.logger.error({ ...safeErrorFields(err), route: req.routeOptions.url }, 'request failed');
    return reply.code(500).send({ success: false, error: 'internal', message: 'internal error; the request can be retried' });
  });

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) =>
    opts.ingest.pipeline.ready() ? { status: 'ready' } : reply.code(503).send({ status: 'not_ready' }),
  );

  const metrics = opts.metrics;
  if (metrics) {
    app.get('/metrics', async (_req, reply) => reply.header('content-type', metrics.contentType).send(await metrics.metrics()));
  }

  if (listener !== 'admin') {
    registerIngestRoutes(app, opts.ingest);
    registerTagRoutes(app, opts.tag);
  }
  registerAdminRoutes(app, opts.admin, listener);
  return app;
}

function errorName(status: number): string {
  switch (status) {
    case 400:
      return 'bad_request';
    case 401:
      return 'unauthorized';
    case 403:
      return 'forbidden';
    case 404:
      return 'not_found';
    case 413:
      return 'payload_too_large';
    case 415:
      return 'unsupported_media_type';
    default:
      return 'error';
  }
}
