// Sink: tracklane.clean.v1 → ClickHouse (events, users, accounts; group commit), and
// tracklane.dlq.v1 → dead_letters rows. Offsets are committed only after the insert that
// holds a record succeeded, so a crash at any point redelivers instead of losing rows.
import { z } from 'zod';
import { createClickHouse } from '../../libs/clickhouse/client.js';
import { clickhouseConfigFrom } from '../../libs/clickhouse/clickhouse-connection.js';
import { migrate } from '../../libs/clickhouse/migrate.js';
import { createOverwriteRegistry, OVERWRITE_RACE_WINDOW_MS, type OverwriteRegistry } from '../../libs/compactor/overwrite-registry.js';
import { envBoolean } from '../../libs/config/env.js';
import { safeErrorFields } from '../../libs/core/errors.js';
import { ok, retry, type Result } from '../../libs/core/result.js';
import type { Logger } from '../../libs/core/logger.js';
import type { CleanEvent } from '../../libs/events/envelope.js';
import { createDeadLetterOutput, DLQ_HEADERS } from '../../libs/kafka/outputs.js';
import { createStageWorker, type ConsumedRecord, type DecodeResult } from '../../libs/kafka/stage-worker.js';
import type { DeadLetterInput } from '../../libs/clickhouse/tables/dead-letters.js';
import { createClickHouseSink } from '../../libs/sink/clickhouse-sink.js';
import { clickhouseSettings, fleetConfigSchema, fleetSubjectHash, groupId } from '../fleet/fleet-config.js';
import { openFleetContext } from '../fleet/fleet-context.js';
import { startupStep } from '../fleet/startup.js';
import { exitOnFatal, runningService, type RunningService } from '../fleet/running-service.js';

export const sinkConfigSchema = fleetConfigSchema.extend({
  PORT: z.coerce.number().int().min(0).max(65535).default(9103),
  CLICKHOUSE_URL: z.url({ message: 'CLICKHOUSE_URL is required (http(s)://host:8123)' }),
  SINK_MAX_ROWS: z.coerce.number().int().min(1).default(10_000),
  // NOTE: a Kafka batch already groups rows; a long age only idles the partition (bench/fleet-bench.ts: 0.42 → 0.80 of passthrough)
  SINK_MAX_AGE_MS: z.coerce.number().int().min(1).default(20),
  MIGRATE_ON_START: envBoolean(true),
  /** how often the registry of overwrites and suppressions is polled (the compactor waits for it) */
  SINK_REGISTRY_REFRESH_MS: z.coerce.number().int().min(50).default(1_000),
  /**
   * fail closed: with no successful poll for this long the sink pauses (an overwrite may have
   * been registered that it does not know). Keep it below the compactor's COMPACTOR_REGISTRY_WAIT_MS.
   */
  SINK_REGISTRY_MAX_AGE_MS: z.coerce.number().int().min(100).default(2_500),
});
export type SinkConfig = z.infer<typeof sinkConfigSchema>;

const pass = <T>(v: T): Result<T> => ok(v);

export async function startSink(config: SinkConfig, logger: Logger): Promise<RunningService> {
  const chConfig = clickhouseConfigFrom(config, { settings: clickhouseSettings(config), logger });
  const clickhouse = createClickHouse(chConfig);
  const dimensions = createClickHouse(chConfig);
  // NOTE: migrations are idempotent (checksummed), so a start-up step may repeat them
  if (config.MIGRATE_ON_START) await startupStep(config, logger, 'sink', 'clickhouse', () => migrate(clickhouse, { logger, cluster: config.CLICKHOUSE_CLUSTER, database: config.CLICKHOUSE_DATABASE }));
  const ctx = await openFleetContext('sink', config, logger);
  const sink = createClickHouseSink({ client: clickhouse, dimensionClient: dimensions, maxRows: config.SINK_MAX_ROWS, maxAgeMs: config.SINK_MAX_AGE_MS, logger });
  // Events received before an overwrite request but sunk after it get it too; events of
  // suppressed users are dropped and counted (DESIGN.md §5 step 4).
  const registry = createOverwriteRegistry({ client: dimensions, logger, subjectHash: fleetSubjectHash(config, 'sink') });
  await startupStep(config, logger, 'sink', 'clickhouse', () => registry.load(Date.now() - OVERWRITE_RACE_WINDOW_MS));
  const registryPoll = startRegistryPoll(registry, config.SINK_REGISTRY_REFRESH_MS, logger);
  const registryFresh = () => Date.now() - registryPoll.lastSuccess() <= config.SINK_REGISTRY_MAX_AGE_MS;

  const events = createStageWorker<CleanEvent, CleanEvent>({
    name: 'sink',
    kafka: ctx.kafka,
    groupId: groupId(config, 'sink'),
    inputTopic: ctx.topics.clean,
    decode: (b) => ctx.codec.decodeClean(b),
    // fail closed, like the anonymizer: no event is written under a registry that may be stale
    stage: (e) => (registryFresh() ? ok(e) : retry('overwrite registry not refreshed recently')),
    describe: (e) => ({ tenantId: e.tenant_id, eventId: e.event_id }),
    output: { write: (items) => sink.write(registry.applyPendingOverwrites(items.map((i) => i.value))) },
    // NOTE: every partition's batch in flight at once, so one group commit gathers them all.
    partitionsConsumedConcurrently: config.KAFKA_PARTITIONS,
    deadLetters: createDeadLetterOutput({ producer: ctx.producer, topic: ctx.topics.dlq }),
    metrics: ctx.metrics,
    logger,
    onFatal: exitOnFatal(logger),
  });
  const deadLetters = createStageWorker<DeadLetterInput, DeadLetterInput>({
    name: 'dead-letters',
    kafka: ctx.kafka,
    groupId: groupId(config, 'sink-dlq'),
    inputTopic: ctx.topics.dlq,
    decode: async (_b, record) => deadLetterRow(record),
    stage: pass,
    describe: (d) => ({ tenantId: d.tenant_id, eventId: d.event_id ?? null }),
    output: { write: (items) => sink.writeDeadLetters(items.map((i) => i.value)) },
    // NOTE: a dead letter that cannot be stored is not sent back to the DLQ (loop); the
    // worker retries it through KafkaJS by throwing from write.
    deadLetters: { write: async () => undefined },
    metrics: ctx.metrics,
    logger,
    onFatal: exitOnFatal(logger),
  });
  return runningService(ctx, [events, deadLetters], [
    { name: 'clickhouse-sink', run: () => sink.stop() },
    { name: 'overwrite-registry', run: () => registryPoll.stop() },
    { name: 'clickhouse', run: () => Promise.all([clickhouse.close(), dimensions.close()]) },
  ]);
}

/** Polls the registry for new overwrites and writes the suppressed-event counts. */
function startRegistryPoll(registry: OverwriteRegistry, everyMs: number, logger: Logger): { stop(): Promise<void>; lastSuccess(): number } {
  let failing = false;
  let lastSuccess = Date.now(); // the start-up load just succeeded
  let busy: Promise<void> | null = null;
  const tick = async () => {
    try {
      const started = Date.now();
      await registry.refresh();
      lastSuccess = started;
      await registry.flushSuppressedCounts();
      if (failing) logger.info('overwrite registry refreshed again');
      failing = false;
    } catch (err) {
      if (!failing) logger.warn({ ...safeErrorFields(err) }, 'overwrite registry refresh failed; retrying');
      failing = true;
    }
  };
  // NOTE: a tick still running (ClickHouse slow) is not stacked upon: the next one waits its turn
  const timer = setInterval(() => {
    busy ??= tick().finally(() => (busy = null));
  }, everyMs);
  return {
    lastSuccess: () => lastSuccess,
    async stop() {
      clearInterval(timer);
      await busy;
      await registry.flushSuppressedCounts().catch(() => undefined);
    },
  };
}

/** A dead_letters row from a DLQ record's headers; the payload is kept as base64 of the original bytes. */
export function deadLetterRow(record: ConsumedRecord): DecodeResult<DeadLetterInput> {
  const h = record.headers;
  return {
    ok: true,
    value: {
      tenant_id: h[DLQ_HEADERS.tenantId] ?? '',
      event_id: h[DLQ_HEADERS.eventId] ?? null,
      stage: h[DLQ_HEADERS.stage] ?? 'unknown',
      reason: h[DLQ_HEADERS.reason] ?? 'unknown',
      error: h[DLQ_HEADERS.error] ?? null,
      payload: JSON.stringify({
        topic: h[DLQ_HEADERS.topic] ?? null,
        partition: h[DLQ_HEADERS.partition] ?? null,
        offset: h[DLQ_HEADERS.offset] ?? null,
        attempts: h[DLQ_HEADERS.attempts] ?? null,
        value_base64: record.value?.toString('base64') ?? null,
      }),
      received_at: Number(h[DLQ_HEADERS.failedAt]) || Date.now(),
    },
  };
}
