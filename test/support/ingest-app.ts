// The collector's HTTP app for route tests: a memory tenant store, a pipeline that records what
// it was handed, and the collection controls under test.
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import type { CollectionControls } from '../../libs/collection/controls.js';
import { createLogger } from '../../libs/core/logger.js';
import type { RawEvent } from '../../libs/events/envelope.js';
import type { IngestPipeline } from '../../libs/pipeline/ingest.js';
import type { TenantStore } from '../../libs/tenants/tenant-store.js';
import { buildCollectorApp } from '../../services/collector/http-app.js';

export interface IngestApp {
  app: FastifyInstance;
  /** every event the pipeline was handed */
  ingested: RawEvent[];
  /** POST /v1/batch with `writeKey` */
  batch(writeKey: string, messages: unknown[]): Promise<LightMyRequestResponse>;
}

export async function ingestApp(opts: { tenants: TenantStore; collection: CollectionControls; now?: () => number }): Promise<IngestApp> {
  const ingested: RawEvent[] = [];
  const pipeline: IngestPipeline = {
    ready: () => true,
    async ingest(events) {
      ingested.push(...events);
      return { accepted: events.length, dropped: [], deadLettered: [], retry: [] };
    },
  };
  const app = buildCollectorApp({
    logger: createLogger({ level: 'silent' }),
    maxRequestBytes: 500 * 1024,
    trustProxy: false,
    ingest: {
      tenantByWriteKey: (k) => opts.tenants.tenantByWriteKey(k),
      pipeline,
      limits: { maxEventBytes: 32 * 1024, maxBatchEvents: 500, maxFutureMs: 60_000 },
      collection: opts.collection,
      ...(opts.now ? { now: opts.now } : {}),
    },
    admin: { adminToken: 'admin-token-0123456789', tenants: opts.tenants, canAnonymize: true, analyst: { operatorQuery: async () => [], tenantQuery: async () => [] } },
  });
  await app.ready();
  return {
    app,
    ingested,
    batch: (writeKey, messages) =>
      app.inject({
        method: 'POST',
        url: '/v1/batch',
        headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${writeKey}:`).toString('base64')}` },
        payload: JSON.stringify({ batch: messages }),
      }),
  };
}
