// Anonymizer: tracklane.enriched.v1 → pseudonymize identities under the tenant's flags
// (Redis, fail closed) → tracklane.clean.v1.
import { z } from 'zod';
import { createAnonymizeStage } from '../../libs/anonymize/anonymize-stage.js';
import { createKeyRing } from '../../libs/anonymize/key-ring.js';
import { parseMasterKey } from '../../libs/anonymize/master-key.js';
import { closeRedis, openRedis } from '../../libs/config/redis-connection.js';
import { redisKeyStore } from '../../libs/privacy/key-stores.js';
import { keyWrapper } from '../../libs/privacy/key-wrap.js';
import { createStoredKeys, storedKeySource } from '../../libs/privacy/stored-keys.js';
import type { Logger } from '../../libs/core/logger.js';
import type { CleanEvent } from '../../libs/events/envelope.js';
import { createDeadLetterOutput } from '../../libs/kafka/outputs.js';
import { createStageWorker } from '../../libs/kafka/stage-worker.js';
import { pipeline, stage } from '../../libs/pipeline/pipeline.js';
import { fleetConfigSchema, groupId } from '../fleet/fleet-config.js';
import { eventTopicOutput, openFleetContext } from '../fleet/fleet-context.js';
import { exitOnFatal, runningService, type RunningService } from '../fleet/running-service.js';

export const anonymizerConfigSchema = fleetConfigSchema.extend({
  PORT: z.coerce.number().int().min(0).max(65535).default(9102),
  // NOTE: every tenant may switch anonymization on at any time, so the anonymizer always needs it.
  TRACKLANE_MASTER_KEY: z.string({ message: 'TRACKLANE_MASTER_KEY is required (at least 32 bytes)' }),
});
export type AnonymizerConfig = z.infer<typeof anonymizerConfigSchema>;

export async function startAnonymizer(config: AnonymizerConfig, logger: Logger): Promise<RunningService> {
  const master = parseMasterKey(config.TRACKLANE_MASTER_KEY);
  const ctx = await openFleetContext('anonymizer', config, logger);
  // NOTE: stored key versions are read from Redis (the compactor's keeper writes them) when an
  // event first needs one; until then that tenant's events are retried, never passed in clear
  const redis = openRedis(config, 'pseudonym-keys', { lazyConnect: false, maxRetriesPerRequest: 1, commandTimeout: 2_000 });
  const storedKeys = createStoredKeys({ wrapper: keyWrapper(master), store: redisKeyStore(redis, config.TRACKLANE_REDIS_PREFIX), logger });
  const keys = createKeyRing(master, { keys: storedKeySource(ctx.tenants, storedKeys) });
  master.fill(0);
  const worker = createStageWorker({
    name: 'anonymize',
    kafka: ctx.kafka,
    groupId: groupId(config, 'anonymizer'),
    inputTopic: ctx.topics.enriched,
    decode: { record: (b) => ctx.codec.decodeEnrichedRecord(b) },
    // Flags unknown (Redis down, stale cache) → the stage answers retry → the partition pauses.
    pipeline: pipeline(stage('anonymize', createAnonymizeStage({ flags: ctx.tenants, keys }))),
    describe: (e) => ({ tenantId: e.tenant_id, eventId: e.event_id }),
    output: eventTopicOutput<CleanEvent>(ctx, 'clean', { one: (e) => ctx.codec.encodeClean(e), many: (es) => ctx.codec.encodeCleanBatch(es) }),
    deadLetters: createDeadLetterOutput({ producer: ctx.producer, topic: ctx.topics.dlq }),
    metrics: ctx.metrics,
    logger,
    onFatal: exitOnFatal(logger),
  });
  return runningService(ctx, [worker], [{ name: 'redis-keys', run: () => closeRedis(redis) }]);
}
