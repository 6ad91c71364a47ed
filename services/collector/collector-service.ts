// The fleet collector: the same HTTP app as embedded mode, with the raw events produced to
// tracklane.raw.v1 (2xx only after Kafka acked, 503 + Retry-After when it cannot), tenants
// and flags in Redis, and analyst queries against the ClickHouse server. Two listeners: PORT
// (public: ingestion, the tag, tenant routes with tenant keys) and ADMIN_PORT (cluster-internal:
// the operator's routes and token).
import type { AddressInfo } from 'node:net';
import { Counter, type Registry } from 'prom-client';
import { z } from 'zod';
import { createAuditLog } from '../../libs/audit/audit-log.js';
import { createClickHouse } from '../../libs/clickhouse/client.js';
import { clickhouseAnalystShape, clickhouseConfigFrom } from '../../libs/clickhouse/clickhouse-connection.js';
import { analystSetupFrom, openAnalystSql } from '../../libs/clickhouse/analyst-setup.js';
import { collectorLimitsFrom, collectorLimitsShape, withCollectorLimitsChecked } from '../../libs/config/collector-limits.js';
import { adminApiConfigShape, envOptionalString, queryLimitsFrom } from '../../libs/config/env.js';
import { closeRedis, openRedis } from '../../libs/config/redis-connection.js';
import type { Logger } from '../../libs/core/logger.js';
import { runStopSteps } from '../../libs/core/stop-stack.js';
import { createReceiptStore, requestReceipt, watchReceiptRetention } from '../../libs/compactor/receipts.js';
import { clickhouseShredReceipts } from '../../libs/clickhouse/tables/pseudonym-keys.js';
import { fleetOverwriteCipher, overwriteMessages } from '../../libs/compactor/overwrite-cipher.js';
import { readBrokerRetention, topicRetentionFrom } from '../../libs/kafka/topic-retention.js';
import { storedSubjectIds } from '../../libs/compactor/stored-subjects.js';
import { createTranslationReceipts } from '../../libs/compactor/translation-receipts.js';
import { createKafkaIngest } from '../../libs/kafka/kafka-ingest.js';
import { createHotKeyRule } from '../../libs/collection/hot-keys.js';
import { createRedisRateLimits, rateLimitCounters } from '../../libs/collection/rate-limits.js';
import { sendInChunks } from '../../libs/kafka/outputs.js';
import type { OverwriteCommand, OverwriteSubject } from '../../libs/events/overwrite-command.js';
import type { IngestPipeline } from '../../libs/pipeline/ingest.js';
import { openRedisPlanStore } from '../../libs/plans/redis-plan-store.js';
import { startTrackingPlans } from '../../libs/plans/tracking-plans.js';
import { clickhouseSettings, fleetConfigSchema, fleetSubjectHash } from '../fleet/fleet-config.js';
import { openFleetContext } from '../fleet/fleet-context.js';
import { startupStep } from '../fleet/startup.js';
import type { RunningService } from '../fleet/running-service.js';
import { compactorPresenceKey, presenceCheck } from '../compactor/compactor-presence.js';
import { createFailureLimiter } from './admin-auth.js';
import { openFleetCollection } from './collection-wiring.js';
import { buildCollectorApp, type CollectorAppOptions } from './http-app.js';

export const collectorConfigSchema = withCollectorLimitsChecked(
  fleetConfigSchema.extend({
    PORT: z.coerce.number().int().min(0).max(65535).default(8080),
    /** the operator routes' listener: never behind the public Ingress (k8s: Service collector-admin) */
    ADMIN_PORT: z.coerce.number().int().min(0).max(65535).default(8090),
    ...adminApiConfigShape,
    /** the read-only analyst user tenant queries log in as (schemas/clickhouse-server/analyst-user.sql) */
    ...clickhouseAnalystShape,
    TRACKLANE_ADMIN_TOKEN: z.string({ message: 'TRACKLANE_ADMIN_TOKEN is required' }).min(16, 'must be at least 16 characters'),
    /** the compactor's HTTP port (e.g. http://compactor:8080): subject access exports are forwarded there; unset: no export route */
    COMPACTOR_URL: envOptionalString.pipe(z.url({ protocol: /^https?$/ }).optional()),
    /** request and event sizes, events per batch, trusted proxies (libs/config/collector-limits.ts) */
    ...collectorLimitsShape,
    /**
     * hot keys (libs/collection/hot-keys.ts): events a second one user may send through this
     * collector before its events get random partition keys; 0 turns the rule off
     */
    COLLECTOR_HOT_KEY_EVENTS_PER_SECOND: z.coerce.number().int().min(0).default(50),
    /** events a user's hot-key bucket holds when full; default twice the rate */
    COLLECTOR_HOT_KEY_BURST: z.coerce.number().int().min(1).optional(),
  }),
);
export type CollectorConfig = z.infer<typeof collectorConfigSchema>;

export async function startCollector(config: CollectorConfig, logger: Logger): Promise<RunningService> {
  const ctx = await openFleetContext('collector', config, logger);
  const analyst = config.CLICKHOUSE_URL
    ? createClickHouse(clickhouseConfigFrom(config, { settings: clickhouseSettings(config), logger }))
    : null;
  const analystSql = config.CLICKHOUSE_URL
    ? await startupStep(config, logger, 'collector', 'clickhouse', () => openAnalystSql(analystSetupFrom(config, '', queryLimitsFrom(config), logger)))
    : null;
  // Overwrite requests: `pending` receipts, then the commands onto tracklane.overwrites.v1 for
  // the compactor service; receipts and stored ids read back from ClickHouse.
  const subjectHash = analyst ? fleetSubjectHash(config, 'collector (its overwrite API; CLICKHOUSE_URL is set)') : null;
  const receipts = analyst && subjectHash ? createReceiptStore(analyst, subjectHash) : null;
  // NOTE: commands go onto the topic sealed (ids and values encrypted); receipts expire and say
  // when Kafka's copies are gone by the retention the brokers actually hold (issue 12, item 6)
  const cipher = subjectHash ? fleetOverwriteCipher(config) : null;
  const retention = receipts ? await watchReceiptRetention({ read: (log) => readBrokerRetention(ctx.kafka, ctx.topics, topicRetentionFrom(config), log), logger }) : null;
  // NOTE: admin actions are recorded in ClickHouse; without CLICKHOUSE_URL there is no admin
  // API worth auditing (no queries, receipts or overwrites), flags and keys excepted: said once.
  if (!analyst) logger.warn('CLICKHOUSE_URL is not set: admin actions are not written to audit_log');
  const audit = analyst ? createAuditLog({ client: analyst, logger }) : undefined;
  // NOTE: requests are accepted without a compactor (they wait in Kafka); the caller is told
  const presenceRedis = receipts ? openRedis(config, 'compactor-presence', { lazyConnect: false, maxRetriesPerRequest: 1, commandTimeout: 500 }) : null;
  const compactorSeen = presenceRedis ? presenceCheck({ redis: presenceRedis, key: compactorPresenceKey(config.TRACKLANE_REDIS_PREFIX, config.TOPIC_PREFIX) }) : null;
  // Opt-in translations of history: a `pending` receipt the compactor polls for (it holds the
  // master key the pseudonyms need). NOTE: a receipt row, not a forward to COMPACTOR_URL: it
  // survives a compactor restart, needs no compactor up to accept, and runs under its lease.
  const translations = analyst ? createTranslationReceipts(analyst) : null;
  // NOTE: the clear copies in Kafka were written before anonymizeSince: gone by it + the topics' horizon
  const translationCopiesExpireBy = (since: number): number | null => {
    const horizon = retention?.current().copiesHorizonMs ?? null;
    return horizon === null ? null : since + horizon;
  };
  const overwrites =
    analyst && receipts && subjectHash && cipher && retention
      ? {
          subjectHash,
          submit: async (commands: OverwriteCommand[]) => {
            await receipts.writePending(commands);
            await sendInChunks(
              ctx.producer,
              ctx.topics.overwrites,
              overwriteMessages(commands, cipher, subjectHash, (r) => ctx.codec.encodeOverwrite(r)),
            );
          },
          receipt: async (requestId: string, mayRead: (tenantId: string) => boolean) =>
            (await requestReceipt(receipts, requestId, retention.current(), { mayRead })) ??
            translations?.forRequest(requestId, (r) => translationCopiesExpireBy(r.anonymize_since)),
          storedIds: (tenantId: string, subject: OverwriteSubject, ids: string[]) => storedSubjectIds(analyst, tenantId, subject, ids),
          ...(compactorSeen ? { compactorSeen } : {}),
        }
      : undefined;
  const hotKeys = hotKeyRule(config, ctx.metrics.registry);
  const kafkaIngest = createKafkaIngest({
    producer: ctx.producer,
    topic: ctx.topics.raw,
    encode: (e) => ctx.codec.encodeRaw(e),
    many: { partitions: ctx.partitions.raw, eventsPerRecord: config.KAFKA_EVENTS_PER_RECORD, encode: (es) => ctx.codec.encodeRawBatch(es) },
    logger,
    ...(hotKeys ? { overflowed: (e) => hotKeys.overflowed(e, Date.now()) } : {}),
  });
  // Per-tenant rate limits, one bucket per tenant shared by every replica. NOTE: a client of its
  // own that fails fast (no offline queue, 250 ms): an unreadable Redis admits, never hangs intake.
  const limitsRedis = openRedis(config, 'rate-limits', { enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: 250 });
  limitsRedis.on('error', () => undefined);
  const admission = createRedisRateLimits({ redis: limitsRedis, prefix: config.TRACKLANE_REDIS_PREFIX, counters: rateLimitCounters(ctx.metrics.registry), logger });
  const counted = countIngest(kafkaIngest, ctx.metrics.registry);
  // tracking plans (issue 16 item 6): in Redis; violations to ClickHouse when CLICKHOUSE_URL is set
  const plans = await openRedisPlanStore({ redis: config, keyPrefix: config.TRACKLANE_REDIS_PREFIX, logger });
  const trackingPlans = startTrackingPlans({ plans, clickhouse: analyst, registry: ctx.metrics.registry, logger });

  const collection = await openFleetCollection(config, logger, { metrics: ctx.metrics.registry, admission, more: [trackingPlans.control] });
  const intake = collectorLimitsFrom(config);
  const appOptions: CollectorAppOptions = {
    logger,
    maxRequestBytes: intake.maxRequestBytes,
    trustProxy: intake.trustProxy,
    metrics: ctx.metrics.registry,
    ingest: {
      tenantByWriteKey: (k) => ctx.tenants.tenantByWriteKey(k),
      pipeline: counted,
      limits: intake.limits,
      collection: collection.collection,
    },
    admin: {
      adminToken: config.TRACKLANE_ADMIN_TOKEN,
      tenants: ctx.tenants,
      // NOTE: hashing happens in the anonymizers, which refuse to start without a master key.
      canAnonymize: true,
      analyst: {
        operatorQuery: async (sql) => {
          if (!analystSql) throw noClickHouse();
          return analystSql.sql.operatorQuery(sql);
        },
        tenantQuery: async (tenantId, sql) => {
          if (!analystSql) throw noClickHouse();
          return analystSql.sql.tenantQuery(tenantId, sql);
        },
      },
      maxConcurrentQueriesPerKey: config.QUERY_MAX_CONCURRENT_PER_KEY,
      failures: createFailureLimiter({ maxFailures: config.AUTH_MAX_FAILURES }),
      ...(audit ? { audit } : {}),
      trackingPlans: { plans },
      ...(overwrites ? { overwrites } : {}),
      ...(overwrites && translations ? { historyTranslation: { request: (r) => translations.writePending(r), ...(compactorSeen ? { compactorSeen } : {}) } } : {}),
      // NOTE: key versions change in the flags here; the compactor's keeper makes and destroys the keys
      pseudonymKeys: { ...(compactorSeen ? { compactorSeen } : {}), ...(analyst ? { shredReceipts: clickhouseShredReceipts(analyst) } : {}) },
      ...(collection.preferences ? { preferences: collection.preferences } : {}),
      // NOTE: the compactor holds the master key the export needs (pseudonymized history)
      ...(config.COMPACTOR_URL ? { exportForward: { compactorUrl: config.COMPACTOR_URL } } : {}),
    },
  };
  const app = buildCollectorApp({ ...appOptions, listener: 'public' });
  const adminApp = buildCollectorApp({ ...appOptions, listener: 'admin' });
  await app.listen({ port: config.PORT, host: config.HOST });
  await adminApp.listen({ port: config.ADMIN_PORT, host: config.HOST });
  const port = (app.server.address() as AddressInfo).port;
  const adminPort = (adminApp.server.address() as AddressInfo).port;
  logger.info({ port, adminPort, topic: ctx.topics.raw }, 'collector listening');

  let stopping: Promise<boolean> | undefined;
  return {
    port,
    adminPort,
    stop: () =>
      (stopping ??= runStopSteps(
        [
          { name: 'intake', run: () => kafkaIngest.close() },
          // fastify's close() waits for in-flight requests, whose produce calls finish first
          { name: 'http', run: () => app.close() },
          { name: 'http-admin', run: () => adminApp.close() },
          { name: 'tracking-plans', run: () => trackingPlans.stop() },
          { name: 'broker-retention', run: () => retention?.stop() },
          ...collection.stopSteps,
          ...ctx.stopSteps,
          { name: 'clickhouse', run: () => analyst?.close() },
          { name: 'clickhouse-analyst', run: () => analystSql?.close() },
          { name: 'redis-presence', run: () => (presenceRedis ? closeRedis(presenceRedis) : undefined) },
          { name: 'redis-rate-limits', run: () => closeRedis(limitsRedis) },
        ],
        logger,
      )),
  };
}

function noClickHouse(): Error {
  return Object.assign(new Error('no ClickHouse configured for queries (set CLICKHOUSE_URL)'), { status: 409, code: 'no_clickhouse' });
}

function hotKeyRule(config: CollectorConfig, registry: Registry) {
  if (config.COLLECTOR_HOT_KEY_EVENTS_PER_SECOND === 0) return null;
  const overflowed = new Counter({ name: 'tracklane_collector_overflowed_events_total', help: "events of hot users produced with a random partition key (hot-key rule)", registers: [registry] });
  return createHotKeyRule({
    eventsPerSecond: config.COLLECTOR_HOT_KEY_EVENTS_PER_SECOND,
    burst: config.COLLECTOR_HOT_KEY_BURST ?? 2 * config.COLLECTOR_HOT_KEY_EVENTS_PER_SECOND,
    onOverflow: () => overflowed.inc(),
  });
}

function countIngest(inner: IngestPipeline, registry: Registry): IngestPipeline {
  const events = new Counter({ name: 'tracklane_collector_events_total', help: 'events by outcome', labelNames: ['outcome'], registers: [registry] });
  return {
    ready: () => inner.ready(),
    async ingest(batch) {
      const outcome = await inner.ingest(batch);
      events.inc({ outcome: 'accepted' }, outcome.accepted);
      if (outcome.retry.length > 0) events.inc({ outcome: 'retry' }, outcome.retry.length);
      return outcome;
    },
  };
}
