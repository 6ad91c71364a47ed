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
import type { Logger } from '../../libs/core/logger.js';
import type { CleanEvent } from '../../libs/events/envelope.js';
import type { DeadLetter } from '../../libs/events/dead-letter.js';
import { createDeadLetterOutput, deadLetterOfRecord } from '../../libs/kafka/outputs.js';
import type { RecordCodec } from '../../libs/kafka/record-codec.js';
import { createStageWorker, type ConsumedRecord } from '../../libs/kafka/stage-worker.js';
import { passStage, pipeline } from '../../libs/pipeline/pipeline.js';
import { createSinkStage } from '../../libs/sink/sink-stage.js';
import { createClickHouseSink } from '../../libs/sink/clickhouse-sink.js';
import { clickhouseSettings, fleetConfigSchema, fleetIdSeal, fleetSubjectHash, groupId } from '../fleet/fleet-config.js';
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
  const registry = createOverwriteRegistry({ client: dimensions, logger, subjectHash: fleetSubjectHash(config, 'sink'), idSeal: fleetIdSeal(config, 'sink') });
  await startupStep(config, logger, 'sink', 'clickhouse', () => registry.load(Date.now() - OVERWRITE_RACE_WINDOW_MS));
  const registryPoll = startRegistryPoll(registry, config.SINK_REGISTRY_REFRESH_MS, logger);
  const registryFresh = () => Date.now() - registryPoll.lastSuccess() <= config.SINK_REGISTRY_MAX_AGE_MS;

  const events = createStageWorker<CleanEvent, CleanEvent>({
    name: 'sink',
    kafka: ctx.kafka,
    groupId: groupId(config, 'sink'),
    inputTopic: ctx.topics.clean,
    decode: { record: (b) => ctx.codec.decodeCleanRecord(b) },
    // fail closed, like the anonymizer: no event is written under a registry that may be stale
    pipeline: pipeline(createSinkStage(registry, registryFresh)),
    describe: (e) => ({ tenantId: e.tenant_id, eventId: e.event_id }),
    output: { write: (items) => sink.write(items.map((i) => i.value)) },
    // NOTE: every partition's batch in flight at once, so one group commit gathers them all.
    partitionsConsumedConcurrently: config.KAFKA_PARTITIONS,
    deadLetters: createDeadLetterOutput({ producer: ctx.producer, topic: ctx.topics.dlq }),
    metrics: ctx.metrics,
    logger,
    onFatal: exitOnFatal(logger),
  });
  const deadLetters = createStageWorker<DeadLetter, DeadLetter>({
    name: 'dead-letters',
    kafka: ctx.kafka,
    groupId: groupId(config, 'sink-dlq'),
    inputTopic: ctx.topics.dlq,
    decode: async (_b, record) => ({ ok: true, value: await readDeadLetter(record, ctx.codec) }),
    pipeline: pipeline(passStage<DeadLetter>('dead-letters')),
    describe: (d) => ({ tenantId: d.tenantId, eventId: d.eventId }),
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

/**
 * The dead letter a DLQ record describes: its headers, and the failed record's own bytes read
 * with the schema they were written with (the input the stage was given), or kept as bytes when
 * they cannot be read. An unavailable registry throws: the record is redelivered, not stored
 * half-read.
 */
export async function readDeadLetter(record: ConsumedRecord, codec: Pick<RecordCodec, 'decoderOf'>): Promise<DeadLetter> {
  const { originalTopic, ...letter } = deadLetterOfRecord(record);
  const bytes = record.value ?? Buffer.alloc(0);
  const decode = letter.stage === 'decode' || originalTopic === null ? undefined : codec.decoderOf(originalTopic);
  const decoded = decode ? await decode(bytes) : undefined;
  return decoded?.ok ? { ...letter, input: decoded.value } : { ...letter, unreadable: bytes };
}
