// Compactor: tracklane.overwrites.v1 → retroactive overwrites and erasures in ClickHouse
// (libs/compactor). The topic has one partition, so one replica is active and the others
// stand by; a batch's offsets are committed once its receipts are written (verified or
// failed), so a crash mid-round redelivers it and the idempotent compactor finishes it.
import { Counter } from 'prom-client';
import { z } from 'zod';
import { createClickHouse, type ClickHouseClient } from '../../libs/clickhouse/client.js';
import { clickhouseConfigFrom } from '../../libs/clickhouse/clickhouse-connection.js';
import { migrate } from '../../libs/clickhouse/migrate.js';
import { createKeyRing } from '../../libs/anonymize/key-ring.js';
import { parseMasterKey } from '../../libs/anonymize/master-key.js';
import { clickhouseKeyStore, clickhouseShredReceipts, historyUnderVersion } from '../../libs/clickhouse/tables/pseudonym-keys.js';
import { createKeyKeeper } from '../../libs/privacy/key-keeper.js';
import { redisKeyStore } from '../../libs/privacy/key-stores.js';
import { keyWrapper } from '../../libs/privacy/key-wrap.js';
import { createStoredKeys, storedKeySource } from '../../libs/privacy/stored-keys.js';
import { clusterHosts, nodeName, nodeUrls } from '../../libs/compactor/cluster-nodes.js';
import { createCompactor } from '../../libs/compactor/compactor.js';
import { clusterTarget, singleNodeTarget, type CompactorTarget } from '../../libs/compactor/compactor-target.js';
import { createCompactorLock } from './compactor-lock.js';
import { compactorExportApp } from './export-app.js';
import { announcePresence, compactorPresenceKey } from './compactor-presence.js';
import { createOverwriteRegistry } from '../../libs/compactor/overwrite-registry.js';
import { fleetOverwriteCipher, reportRejections } from '../../libs/compactor/overwrite-cipher.js';
import { createReceiptStore, startPendingExpiry, watchReceiptRetention } from '../../libs/compactor/receipts.js';
import { readBrokerRetention, topicRetentionFrom } from '../../libs/kafka/topic-retention.js';
import { pseudonymAliases } from '../../libs/compactor/pseudonym-aliases.js';
import { createHistoryTranslator } from '../../libs/compactor/history-translation.js';
import { startTranslationPoller } from '../../libs/compactor/translation-poller.js';
import { createTranslationReceipts } from '../../libs/compactor/translation-receipts.js';
import { ConfigError, envBoolean, envOptionalString } from '../../libs/config/env.js';
import { closeRedis, openRedis } from '../../libs/config/redis-connection.js';
import type { Logger } from '../../libs/core/logger.js';
import type { OverwriteCommand } from '../../libs/events/overwrite-command.js';
import { createDeadLetterOutput } from '../../libs/kafka/outputs.js';
import { createStageWorker } from '../../libs/kafka/stage-worker.js';
import { passStage, pipeline } from '../../libs/pipeline/pipeline.js';
import { clickhouseSettings, fleetConfigSchema, fleetIdSeal, fleetSubjectHash, groupId } from '../fleet/fleet-config.js';
import { openFleetContext } from '../fleet/fleet-context.js';
import { startupStep } from '../fleet/startup.js';
import { exitOnFatal, runningService, type RunningService } from '../fleet/running-service.js';

export const compactorConfigSchema = fleetConfigSchema.extend({
  PORT: z.coerce.number().int().min(0).max(65535).default(9104),
  CLICKHOUSE_URL: z.url({ message: 'CLICKHOUSE_URL is required (http(s)://host:8123)' }),
  // NOTE: history of an anonymizing tenant is stored under pseudonyms: the compactor derives
  // them to find it, so it needs the anonymizers' key (never logged).
  TRACKLANE_MASTER_KEY: z.string({ message: 'TRACKLANE_MASTER_KEY is required (the anonymizers\' key: pseudonymized history is found by it)' }),
  /**
   * How long a round waits after registering its overwrites before it rewrites history, so
   * every sink has loaded them (sinks poll every SINK_REGISTRY_REFRESH_MS, 1 s by default).
   */
  COMPACTOR_REGISTRY_WAIT_MS: z.coerce.number().int().min(0).default(3_000),
  COMPACTOR_MAX_ATTEMPTS: z.coerce.number().int().min(1).default(3),
  /** mutations and forced merges wait server-side (mutations_sync): far longer than a query */
  COMPACTOR_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(1_000).default(30 * 60_000),
  MIGRATE_ON_START: envBoolean(true),
  /**
   * Cluster mode: every node's HTTP URL, comma-separated, when the host names of the cluster's
   * remote_servers do not resolve from here (default: those names, CLICKHOUSE_URL's scheme and port).
   */
  CLICKHOUSE_NODE_URLS: envOptionalString,
  /** Cluster mode: the nodes' HTTP port when it is not CLICKHOUSE_URL's */
  CLICKHOUSE_NODE_HTTP_PORT: z.coerce.number().int().min(1).max(65535).optional(),
});
export type CompactorConfig = z.infer<typeof compactorConfigSchema>;

export async function startCompactor(config: CompactorConfig, logger: Logger): Promise<RunningService> {
  if ((config.CLICKHOUSE_DATABASE ?? 'default') !== 'default') {
    // NOTE: mutations run without a current database, so their lookup tables are named default.*
    throw new ConfigError('the compactor needs CLICKHOUSE_DATABASE=default (its mutations name default.* lookup tables)');
  }
  // NOTE: the per-node connections of cluster mode log in and verify TLS as the main one does
  const main = clickhouseConfigFrom(config, { requestTimeoutMs: config.COMPACTOR_REQUEST_TIMEOUT_MS, settings: clickhouseSettings(config), logger });
  const connect = (url: string): ClickHouseClient => createClickHouse({ ...main, url });
  const clickhouse = createClickHouse(main);
  const master = parseMasterKey(config.TRACKLANE_MASTER_KEY);
  const wrapper = keyWrapper(master);
  const storedKeys = createStoredKeys();
  if (config.MIGRATE_ON_START) await startupStep(config, logger, 'compactor', 'clickhouse', () => migrate(clickhouse, { logger, cluster: config.CLICKHOUSE_CLUSTER, database: config.CLICKHOUSE_DATABASE }));
  const cluster = config.CLICKHOUSE_CLUSTER
    ? await startupStep(config, logger, 'compactor', 'clickhouse', () => openClusterTarget(config, config.CLICKHOUSE_CLUSTER as string, clickhouse, connect, logger))
    : null;
  const ctx = await openFleetContext('compactor', config, logger);
  const redis = openRedis(config, 'compactor-lease', { lazyConnect: false, maxRetriesPerRequest: 2 });
  const lock = createCompactorLock({ redis, key: `${config.TRACKLANE_REDIS_PREFIX}compactor-lease:${config.TOPIC_PREFIX}`, logger });
  // The key keeper: makes each stored key version a tenant uses (Redis, copied to ClickHouse),
  // destroys shredded ones with a receipt; this process's key ring reads the keys it holds.
  const keys = createKeyRing(master, { keys: storedKeySource(ctx.tenants, storedKeys) });
  master.fill(0);
  const keeper = createKeyKeeper({
    wrapper,
    primary: redisKeyStore(redis, config.TRACKLANE_REDIS_PREFIX),
    copy: clickhouseKeyStore(clickhouse, cluster?.target ?? singleNodeTarget(clickhouse)),
    keys: storedKeys,
    tenants: () => ctx.tenants.list(),
    receipts: clickhouseShredReceipts(clickhouse),
    usedBefore: historyUnderVersion(clickhouse),
    outsideCopies: FLEET_OUTSIDE_COPIES,
    logger,
  });
  const keeping = keeper.start(KEY_KEEPER_INTERVAL_MS);
  const subjectHash = fleetSubjectHash(config, 'compactor');
  // NOTE: a record that does not open is logged and counted too (overwrite-cipher.ts reportRejections)
  const cipher = reportRejections(fleetOverwriteCipher(config), { logger, registry: ctx.metrics.registry });
  const compactor = createCompactor({
    client: clickhouse,
    subjectHash,
    idSeal: fleetIdSeal(config, 'compactor'),
    ...(cluster ? { target: cluster.target } : {}),
    logger,
    maxAttempts: config.COMPACTOR_MAX_ATTEMPTS,
    piiTraits: (tenantId) => ctx.tenants.get(tenantId)?.piiTraits ?? [],
    // the sinks keep the registry (from overwrite_values); this process sinks no event
    registry: createOverwriteRegistry({ keep: false, subjectHash }),
    aliases: pseudonymAliases(keys, (tenantId) => ctx.tenants.get(tenantId)),
    afterRegister: () => new Promise((r) => setTimeout(r, config.COMPACTOR_REGISTRY_WAIT_MS)),
    guard: () => lock.assertHeld(),
  });

  const receipts = new Counter({
    name: 'tracklane_compactor_receipts_total',
    help: 'overwrite commands finished, by receipt status (verified | failed)',
    labelNames: ['status'],
    registers: [ctx.metrics.registry],
  });
  const worker = createStageWorker<OverwriteCommand, OverwriteCommand>({
    name: 'compactor',
    kafka: ctx.kafka,
    groupId: groupId(config, 'compactor'),
    inputTopic: ctx.topics.overwrites,
    // NOTE: a record that does not open (altered, another key) is dead-lettered with the reason
    decode: async (b) => {
      const record = await ctx.codec.decodeOverwrite(b);
      if (!record.ok) return record;
      const opened = cipher.open(record.value);
      return opened.ok ? { ...opened, schemaId: record.schemaId } : opened;
    },
    pipeline: pipeline(passStage<OverwriteCommand>('compactor')),
    describe: (c) => ({ tenantId: c.tenant_id, eventId: c.request_id }),
    // NOTE: a Kafka batch becomes one compactor batch (a Data Loader run: thousands of commands)
    output: {
      write: async (items) => {
        await lock.acquire();
        try {
          for (const r of await compactor.apply(items.map((i) => i.value))) receipts.inc({ status: r.status });
        } finally {
          await lock.release();
        }
      },
    },
    deadLetters: createDeadLetterOutput({ producer: ctx.producer, topic: ctx.topics.dlq }),
    partitionsConsumedConcurrently: 1,
    // rounds run for seconds to minutes: the worker heartbeats meanwhile, this bounds a dead member
    sessionTimeoutMs: 30_000,
    metrics: ctx.metrics,
    logger,
    onFatal: exitOnFatal(logger),
  });
  // a pending command the overwrites topic no longer holds can never apply: its receipt fails
  const retention = await watchReceiptRetention({ read: (log) => readBrokerRetention(ctx.kafka, ctx.topics, topicRetentionFrom(config), log), logger });
  const expiry = startPendingExpiry({ store: createReceiptStore(clickhouse, subjectHash), ttlMs: () => retention.current().pendingTtlMs, logger });
  // Opt-in translations of history: the collector records them as pending receipts; they run
  // here (the master key is here), under the lease, so never alongside an overwrite batch.
  const translationReceipts = createTranslationReceipts(clickhouse);
  const translations = startTranslationPoller({
    receipts: translationReceipts,
    translator: createHistoryTranslator({
      client: clickhouse,
      ...(cluster ? { target: cluster.target } : {}),
      keys,
      flags: (tenantId) => ctx.tenants.get(tenantId),
      receipts: translationReceipts,
      logger,
      maxAttempts: config.COMPACTOR_MAX_ATTEMPTS,
      guard: () => lock.assertHeld(),
    }),
    exclusive: async (f) => {
      await lock.acquire();
      try {
        return await f();
      } finally {
        await lock.release();
      }
    },
    logger,
  });
  // every compactor process, standing by or not: the collector tells callers when none runs
  const presence = announcePresence({ redis, key: compactorPresenceKey(config.TRACKLANE_REDIS_PREFIX, config.TOPIC_PREFIX), logger });
  // subject access exports need the master key: served here, the collector forwards them
  const app = compactorExportApp({ tenants: ctx.tenants, clickhouse, keys, subjectHash, logger });
  return runningService(ctx, [worker], [
    { name: 'history-translation', run: () => translations.stop() },
    { name: 'key-keeper', run: () => keeping.stop() },
    { name: 'receipt-expiry', run: () => expiry.stop() },
    { name: 'broker-retention', run: () => retention.stop() },
    { name: 'clickhouse', run: () => Promise.all([clickhouse, ...(cluster?.clients ?? [])].map((c) => c.close())).then(() => undefined) },
    { name: 'redis-lease', run: () => presence.stop().then(() => closeRedis(redis)) },
  ], { app });
}

/**
 * How often the keeper follows the flags. NOTE: well inside the 2 s a rotation is stamped ahead
 * (propagation-budget.ts), so a new version's key exists before the first event needs it.
 */
export const KEY_KEEPER_INTERVAL_MS = 250;

/** Copies of a shredded key the fleet cannot reach: the operator's to purge. */
export const FLEET_OUTSIDE_COPIES = [
  'Redis persistence files (RDB snapshots, AOF) and replicas written before the shred, and their backups',
  'ClickHouse backups, and detached or frozen parts of pseudonym_keys (ALTER TABLE … FREEZE, shadow/)',
  "the filesystems' freed blocks of rewritten files, until they are reused",
];

/**
 * Cluster mode: a connection to every replica of every shard (each holds its own copy of the
 * lookup tables a mutation reads), each checked to answer and to have those tables.
 */
async function openClusterTarget(
  config: CompactorConfig,
  cluster: string,
  clickhouse: ClickHouseClient,
  connect: (url: string) => ClickHouseClient,
  logger: Logger,
): Promise<{ target: CompactorTarget; clients: ClickHouseClient[] }> {
  const hosts = await clusterHosts(clickhouse, cluster);
  const urls = nodeUrls(hosts, {
    cluster,
    baseUrl: config.CLICKHOUSE_URL,
    ...(config.CLICKHOUSE_NODE_HTTP_PORT ? { httpPort: config.CLICKHOUSE_NODE_HTTP_PORT } : {}),
    ...(config.CLICKHOUSE_NODE_URLS ? { explicitUrls: config.CLICKHOUSE_NODE_URLS.split(',').map((u) => u.trim()).filter(Boolean) } : {}),
  });
  const clients = urls.map(connect);
  for (const [i, node] of clients.entries()) {
    let tables: number;
    try {
      const rs = await node.query({
        query: `SELECT count() AS n FROM system.tables WHERE database = 'default' AND name IN ('overwrite_join', 'overwrite_keys')`,
        format: 'JSONEachRow',
      });
      tables = Number((await rs.json<{ n: unknown }>())[0]?.n ?? 0);
    } catch (err) {
      await Promise.all(clients.map((c) => c.close()));
      throw new ConfigError(`cluster node ${nodeName(urls[i] as string)} (${i + 1} of ${urls.length}) does not answer over HTTP: set CLICKHOUSE_NODE_URLS or CLICKHOUSE_NODE_HTTP_PORT (${(err as Error).name})`);
    }
    if (tables !== 2) {
      await Promise.all(clients.map((c) => c.close()));
      throw new ConfigError(`cluster node ${nodeName(urls[i] as string)} lacks the compactor's lookup tables: run \`tracklane migrate\` with CLICKHOUSE_CLUSTER=${cluster}`);
    }
  }
  logger.info({ cluster, nodes: urls.map(nodeName) }, 'compactor reaches every node of the cluster');
  // NOTE: CLICKHOUSE_NODE_URLS lists the nodes in system.clusters order (shard, then replica)
  return { target: clusterTarget({ nodes: clients.map((client, i) => ({ client, shard: (hosts[i] as { shard: number }).shard })), cluster }), clients };
}
