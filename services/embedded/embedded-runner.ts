// The embedded runner (`tracklane start`): one process, stages in line, chDB storage (or a
// ClickHouse server when CLICKHOUSE_URL is set) and a tenant store persisted under the
// data dir. start() wires everything; stop() tears it down in reverse order.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { AddressInfo } from 'node:net';
import { createAnonymizeStage } from '../../libs/anonymize/anonymize-stage.js';
import { createKeyRing, type KeyRing } from '../../libs/anonymize/key-ring.js';
import { parseMasterKey } from '../../libs/anonymize/master-key.js';
import { clickhouseKeyStore, clickhouseShredReceipts, historyUnderVersion, type ShredReceiptStore } from '../../libs/clickhouse/tables/pseudonym-keys.js';
import { singleNodeTarget } from '../../libs/compactor/compactor-target.js';
import { createKeyKeeper, type KeyKeeper, type KeyKeeperOptions } from '../../libs/privacy/key-keeper.js';
import { openFileKeyStore } from '../../libs/privacy/key-stores.js';
import { keyWrapper, type KeyWrapper } from '../../libs/privacy/key-wrap.js';
import { createStoredKeys, storedKeySource, type StoredKeys, type WrappedKeyStore } from '../../libs/privacy/stored-keys.js';
import { createClickHouse, type ClickHouseClient } from '../../libs/clickhouse/client.js';
import { clickhouseConfigFrom } from '../../libs/clickhouse/clickhouse-connection.js';
import { migrate } from '../../libs/clickhouse/migrate.js';
import { createCompactor } from '../../libs/compactor/compactor.js';
import { createExclusive, exclusiveCompactor } from '../../libs/compactor/exclusive.js';
import { createOverwriteRegistry, OVERWRITE_RACE_WINDOW_MS } from '../../libs/compactor/overwrite-registry.js';
import { pseudonymAliases } from '../../libs/compactor/pseudonym-aliases.js';
import { createReceiptStore } from '../../libs/compactor/receipts.js';
import { createIdSeal, type IdSeal } from '../../libs/privacy/id-seal.js';
import { dataDirIdHashKey, parseIdHashKey, subjectHasher, type SubjectHash } from '../../libs/privacy/subject-hash.js';
import { storedSubjectIds } from '../../libs/compactor/stored-subjects.js';
import { analystSetupFrom, openAnalystSql } from '../../libs/clickhouse/analyst-setup.js';
import type { AnalystSql } from '../../libs/clickhouse/analyst-sql.js';
import { createAuditLog } from '../../libs/audit/audit-log.js';
import { userAliases } from '../../libs/privacy/subject-export.js';
import { clickhouseExportSource } from '../../libs/privacy/subject-export-source.js';
import { collectorLimitsFrom } from '../../libs/config/collector-limits.js';
import { createMemoryRateLimits, rateLimitCounters } from '../../libs/collection/rate-limits.js';
import { ConfigError, parseList, queryLimitsFrom } from '../../libs/config/env.js';
import { safeErrorFields } from '../../libs/core/errors.js';
import type { Logger } from '../../libs/core/logger.js';
import { createStopStack } from '../../libs/core/stop-stack.js';
import { createEnricher } from '../../libs/enrich/enrich-stage.js';
import type { IngestPipeline } from '../../libs/pipeline/ingest.js';
import { memoryDailySalts } from '../../libs/collection/daily-ids.js';
import { standardControls } from '../../libs/collection/standard-controls.js';
import { openFileTrackingPreferences } from '../../libs/collection/tracking-preferences.js';
import { createPipelineMetrics } from '../../libs/pipeline/metrics.js';
import { pipeline, stage } from '../../libs/pipeline/pipeline.js';
import { createClickHouseSink } from '../../libs/sink/clickhouse-sink.js';
import { createSinkStage } from '../../libs/sink/sink-stage.js';
import { openFileTenantStore } from '../../libs/tenants/file-tenant-store.js';
import { openFilePlanStore } from '../../libs/plans/file-plan-store.js';
import { startTrackingPlans } from '../../libs/plans/tracking-plans.js';
import type { TenantStore } from '../../libs/tenants/tenant-store.js';
import { createFailureLimiter } from '../collector/admin-auth.js';
import { buildCollectorApp, type CollectorAppOptions } from '../collector/http-app.js';
import type { EmbeddedConfig } from './config.js';
import { createEmbeddedPipeline } from './embedded-pipeline.js';
import { startEmbeddedTranslation } from './history-translation-wiring.js';
import { openOverwriteQueue } from './overwrite-queue.js';

export interface EmbeddedServer {
  /** base URL, e.g. http://127.0.0.1:8080 */
  url: string;
  port: number;
  /** where the operator routes are: `url` unless ADMIN_PORT gives them a listener of their own */
  adminUrl: string;
  adminToken: string;
  tenants: TenantStore;
  clickhouse: ClickHouseClient;
  /** the operator's analyst SQL (as POST /v1/admin/query runs it): one bounded read-only SELECT */
  analystQuery: AnalystSql['operatorQuery'];
  /** analyst SQL of a tenant (as its read keys run it) */
  tenantQuery: AnalystSql['tenantQuery'];
  /** the in-process intake the ingestion routes hand normalized events to (for embedding as a library) */
  intake: IngestPipeline;
  stop(): Promise<void>;
}

export async function startEmbedded(config: EmbeddedConfig, logger: Logger): Promise<EmbeddedServer> {
  const dataDir = resolve(config.TRACKLANE_DATA_DIR);
  await mkdir(dataDir, { recursive: true });
  // NOTE: everything opened below is closed newest first, on stop or when a later step fails
  const stack = createStopStack();
  try {
    const tenants = await openFileTenantStore({ path: join(dataDir, 'tenants.json') });
    stack.push('tenants', () => tenants.close());
    // NOTE: stored pseudonym keys live in memory here once the keeper (below) has read or made them
    const master = config.TRACKLANE_MASTER_KEY === undefined ? null : parseMasterKey(config.TRACKLANE_MASTER_KEY);
    const storedKeys = createStoredKeys();
    const wrapper = master === null ? null : keyWrapper(master);
    const keys: KeyRing | null = master === null ? null : createKeyRing(master, { keys: storedKeySource(tenants, storedKeys) });
    master?.fill(0);
    const needing = tenants.list().filter((t) => t.flags.anonymizeIdentity);
    if (needing.length > 0 && !keys) {
      throw new ConfigError(
        `TRACKLANE_MASTER_KEY is required: ${needing.length} tenant(s) have anonymizeIdentity on ` +
          `(${needing.map((t) => t.tenantId).slice(0, 5).join(', ')}); set a secret of at least 32 bytes`,
      );
    }

    const chdbDir = join(dataDir, 'clickhouse');
    const chConfig = clickhouseConfigFrom(config, { chdbDir, logger });
    const clickhouse = createClickHouse(chConfig);
    stack.push('clickhouse', () => clickhouse.close());
    // NOTE: analyst SQL opens sessions of its own per statement (chDB keeps settings per session:
    // a readonly query on the sink's connection would make every later insert fail).
    const analyst = await openAnalystSql(analystSetupFrom(config, chdbDir, queryLimitsFrom(config), logger));
    stack.push('clickhouse-analyst', () => analyst.close());
    const analystQuery = (sql: string) => analyst.sql.operatorQuery(sql);
    const tenantQuery = (tenantId: string, sql: string) => analyst.sql.tenantQuery(tenantId, sql);
    if (config.MIGRATE_ON_START) {
      const { applied } = await migrate(clickhouse, { logger });
      if (applied.length > 0) logger.info({ applied }, 'migrations applied');
    }

    const enricher = await createEnricher({
      geoPaths: config.GEOIP_DB ? parseList(config.GEOIP_DB) : undefined,
      asnPaths: config.ASN_DB ? parseList(config.ASN_DB) : undefined,
      flags: tenants,
    });
    stack.push('enricher', () => enricher.close());

    // NOTE: users/accounts read-merge-writes get their own connection so they do not queue
    // behind event inserts (a chDB connection runs one statement at a time).
    const dimensions = createClickHouse(chConfig);
    stack.push('clickhouse-dimensions', () => dimensions.close());
    const sink = createClickHouseSink({
      client: clickhouse,
      dimensionClient: dimensions,
      maxRows: config.SINK_MAX_ROWS,
      maxAgeMs: config.SINK_MAX_AGE_MS,
      maxConcurrentFlushes: config.SINK_MAX_CONCURRENT_FLUSHES,
      logger,
    });
    stack.push('sink', () => sink.stop());

    // Retroactive overwrites: the compactor on a session of its own (its mutations and merges
    // run long), receipts read on the analyst session.
    const compactorClient = createClickHouse(chConfig);
    stack.push('clickhouse-compactor', () => compactorClient.close());
    const shredReceipts = clickhouseShredReceipts(dimensions);
    const keeper = wrapper === null ? null : await startKeyKeeper({ dataDir, wrapper, storedKeys, tenants, copy: clickhouseKeyStore(compactorClient, singleNodeTarget(compactorClient)), usedBefore: historyUnderVersion(dimensions), receipts: shredReceipts, logger });
    if (keeper) stack.push('key-keeper', () => keeper.stop());
    // NOTE: the admin API's tenant store runs the keeper after each change, so a new tenant's or a
    // new version's key exists before the answer: events never wait for it
    const managedTenants = keeper ? syncingKeys(tenants, keeper.keeper) : tenants;
    // The registry of recent overwrites and suppressions the sink consults: reloaded at start.
    const { subjectHash, idSeal } = embeddedIdKeys(config.TRACKLANE_ID_HASH_KEY, dataDir);
    const registry = createOverwriteRegistry({ client: dimensions, logger, subjectHash, idSeal });
    await registry.load(Date.now() - OVERWRITE_RACE_WINDOW_MS);
    const flushCounts = () => registry.flushSuppressedCounts().catch((err: unknown) => logger.warn({ ...safeErrorFields(err) }, 'could not write suppressed-event counts'));
    const countsTimer = setInterval(() => void flushCounts(), 5_000);
    stack.push('suppressed-counts', async () => {
      clearInterval(countsTimer);
      await flushCounts();
    });
    // NOTE: without a master key no tenant can anonymize (checked above), so no pseudonyms exist
    const aliases = keys ? pseudonymAliases(keys, (t) => tenants.get(t)) : null;
    // NOTE: overwrite batches and history translations run one at a time (exclusive.ts)
    const exclusive = createExclusive();
    const compactor = exclusiveCompactor(createCompactor({
      client: compactorClient,
      subjectHash,
      idSeal,
      logger,
      registry,
      piiTraits: (t) => tenants.get(t)?.piiTraits ?? [],
      ...(aliases ? { aliases } : {}),
    }), exclusive);
    // NOTE: receipts on the dimensions session: the analyst one is read-only, the compactor's busy.
    const receipts = createReceiptStore(dimensions, subjectHash);
    const overwrites = await openOverwriteQueue({ compactor, receipts, logger, journalPath: join(dataDir, 'overwrites-queue.jsonl') });
    stack.push('overwrites', () => overwrites.close());
    // opt-in translation of history to pseudonyms: needs the key ring (a master key)
    const translation = keys ? startEmbeddedTranslation({ compactorClient, receiptsClient: dimensions, keys, tenants, exclusive, logger }) : null;
    if (translation) stack.push('history-translation', () => translation.stop());

    // Subject access exports read page by page on a connection of their own, so a long one
    // never queues the sink's reads or the receipts behind it.
    const exportClient = createClickHouse(chConfig);
    stack.push('clickhouse-exports', () => exportClient.close());

    const metrics = createPipelineMetrics('embedded');
    // tracking plans (issue 16 item 6): violations written on the dimensions session, like the audit log
    const trackingPlans = startTrackingPlans({ plans: await openFilePlanStore(join(dataDir, 'tracking-plans.json')), clickhouse: dimensions, registry: metrics.registry, logger });
    stack.push('tracking-plans', () => trackingPlans.stop());
    const intakePipeline = createEmbeddedPipeline({
      // NOTE: the sink stage applies pending overwrites to events received before a request but
      // sunk after it, and drops those of suppressed users (the registry is in process: never stale)
      stages: pipeline(stage('enrich', enricher.stage))
        .then(stage('anonymize', createAnonymizeStage({ flags: tenants, keys })))
        .then(createSinkStage(registry)),
      sink,
      metrics,
      logger,
    });

    // Collection controls (issue 16): cookieless ids on an in-process salt, tracking preferences in the data dir
    const preferences = await openFileTrackingPreferences(join(dataDir, 'tracking-preferences.json'), subjectHash);
    stack.push('tracking-preferences', () => preferences.close());
    const collection = standardControls({
      salts: memoryDailySalts(),
      preferences,
      // NOTE: rate limits in process (one process takes every request); no hot-key rule: no partitions here
      admission: createMemoryRateLimits({ counters: rateLimitCounters(metrics.registry), logger }),
      more: [trackingPlans.control],
      metrics: metrics.registry,
    });

    const adminToken = config.TRACKLANE_ADMIN_TOKEN ?? (await ensureAdminToken(dataDir, logger));
    const intake = collectorLimitsFrom(config);
    const appOptions: CollectorAppOptions = {
      logger,
      maxRequestBytes: intake.maxRequestBytes,
      trustProxy: intake.trustProxy,
      tag: { testPage: config.TRACKLANE_TAG_TEST_PAGE },
      ingest: {
        tenantByWriteKey: (k) => tenants.tenantByWriteKey(k),
        pipeline: intakePipeline,
        limits: intake.limits,
        collection,
      },
      admin: {
        adminToken,
        tenants: managedTenants,
        canAnonymize: keys !== null,
        pseudonymKeys: { ...(keeper ? { keeper: keeper.keeper } : {}), shredReceipts },
        analyst: { operatorQuery: analystQuery, tenantQuery },
        maxConcurrentQueriesPerKey: config.QUERY_MAX_CONCURRENT_PER_KEY,
        audit: createAuditLog({ client: dimensions, logger }),
        trackingPlans: { plans: trackingPlans.plans },
        failures: createFailureLimiter({ maxFailures: config.AUTH_MAX_FAILURES }),
        overwrites: {
          submit: (c) => overwrites.submit(c),
          receipt: async (id) => (await overwrites.receipt(id)) ?? translation?.receipt(id),
          storedIds: (tenant, subject, ids) => storedSubjectIds(dimensions, tenant, subject, ids),
          subjectHash,
        },
        ...(translation ? { historyTranslation: translation.route } : {}),
        preferences: { preferences, subjectHash },
        exports: {
          source: clickhouseExportSource(exportClient),
          aliasesOf: aliases ? userAliases(aliases) : () => [],
          subjectHash,
          logger,
        },
      },
    };
    // NOTE: one port by default; with ADMIN_PORT the operator routes move to a listener of their own.
    const split = config.ADMIN_PORT !== undefined;
    // NOTE: /metrics goes with the operator routes
    const app = buildCollectorApp({ ...appOptions, listener: split ? 'public' : 'combined', ...(split ? {} : { metrics: metrics.registry }) });
    const adminApp = split ? buildCollectorApp({ ...appOptions, listener: 'admin', metrics: metrics.registry }) : null;
    // NOTE: reverse order on stop: intake first (pipeline closed, server drains its
    // in-flight requests), then the sink flushes, then storage closes.
    stack.push('http', () => app.close());
    if (adminApp) stack.push('http-admin', () => adminApp.close());
    stack.push('intake', () => intakePipeline.close());

    const base = (p: number) => `http://${config.HOST.includes(':') ? `[${config.HOST}]` : config.HOST}:${p}`;
    await app.listen({ port: config.PORT, host: config.HOST });
    const port = (app.server.address() as AddressInfo).port;
    const url = base(port);
    let adminUrl = url;
    if (adminApp) {
      await adminApp.listen({ port: config.ADMIN_PORT ?? 0, host: config.HOST });
      adminUrl = base((adminApp.server.address() as AddressInfo).port);
    }
    logger.info({ url, adminUrl, dataDir, storage: config.CLICKHOUSE_URL ? 'clickhouse-http' : 'chdb', anonymization: keys !== null }, 'tracklane embedded pipeline listening');

    return {
      url,
      port,
      adminUrl,
      adminToken,
      tenants: managedTenants,
      clickhouse,
      analystQuery,
      tenantQuery,
      intake: intakePipeline,
      stop: async () => {
        await stack.close(logger);
      },
    };
  } catch (err) {
    await stack.close(logger);
    throw err;
  }
}

/** Copies of a shredded key that Tracklane cannot reach from an embedded data dir. */
export const EMBEDDED_OUTSIDE_COPIES = [
  'backups and snapshots of the data dir taken before the shred',
  "the filesystem's freed blocks of replaced files (pseudonym-keys.json is rewritten, ClickHouse parts are rewritten): until the filesystem reuses them",
];

/** The keeper of the embedded key store (data dir, ClickHouse copy): one pass before the server answers, then every second. */
async function startKeyKeeper(opts: {
  dataDir: string;
  wrapper: KeyWrapper;
  storedKeys: StoredKeys;
  tenants: TenantStore;
  copy: WrappedKeyStore;
  usedBefore: KeyKeeperOptions['usedBefore'];
  receipts: ShredReceiptStore;
  logger: Logger;
}): Promise<{ keeper: KeyKeeper; stop(): Promise<void> }> {
  const keeper = createKeyKeeper({
    wrapper: opts.wrapper,
    primary: await openFileKeyStore(join(opts.dataDir, 'pseudonym-keys.json')),
    copy: opts.copy,
    usedBefore: opts.usedBefore,
    keys: opts.storedKeys,
    tenants: () => opts.tenants.list(),
    receipts: opts.receipts,
    outsideCopies: EMBEDDED_OUTSIDE_COPIES,
    logger: opts.logger,
  });
  // NOTE: a failed first pass (the ClickHouse copy unreachable) is retried every second; until
  // then a stored key not yet made makes its tenant's anonymized events wait, never pass in clear
  await keeper.sync().catch((err: unknown) => opts.logger.warn({ ...safeErrorFields(err) }, 'pseudonym keys not brought up to date at start: retrying'));
  const timer = keeper.start(1_000);
  return { keeper, stop: () => timer.stop() };
}

/** `store` with the keeper run after every tenant creation and flag change. */
function syncingKeys(store: TenantStore, keeper: KeyKeeper): TenantStore {
  return {
    ...store,
    async createTenant(tenantId) {
      const created = await store.createTenant(tenantId);
      await keeper.sync();
      return created;
    },
    async patchFlags(tenantId, patch, now) {
      const flags = await store.patchFlags(tenantId, patch, now);
      await keeper.sync();
      return flags;
    },
  };
}

/**
 * The subject hash and the new-id seal, from TRACKLANE_ID_HASH_KEY when set, else the data dir's
 * own key (created on first start): one key for as long as the data it hashed is kept. Errors
 * never quote the key.
 */
function embeddedIdKeys(raw: string | undefined, dataDir: string): { subjectHash: SubjectHash; idSeal: IdSeal } {
  const key = raw !== undefined ? parseIdHashKey(raw) : dataDirIdHashKey(dataDir);
  try {
    return { subjectHash: subjectHasher(key), idSeal: createIdSeal(key) };
  } finally {
    key.fill(0);
  }
}

/** An admin token for a laptop run: generated once, kept in the data dir (mode 0600), never logged. */
async function ensureAdminToken(dataDir: string, logger: Logger): Promise<string> {
  const path = join(dataDir, 'admin-token');
  try {
    const existing = (await readFile(path, 'utf8')).trim();
    if (existing.length >= 16) return existing;
  } catch {
    // first start: generate below
  }
  const token = randomBytes(24).toString('base64url');
  await writeFile(path, `${token}\n`, { mode: 0o600 });
  logger.info({ path }, 'TRACKLANE_ADMIN_TOKEN not set: generated one and stored it in the data dir');
  return token;
}
