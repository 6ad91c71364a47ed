// Enricher: tracklane.raw.v1 → enrich (geo, company, UA, account, URL scrub) → tracklane.enriched.v1
// (records of many events in, each event on its own, records of many out).
import { z } from 'zod';
import { envOptionalString, parseList } from '../../libs/config/env.js';
import type { Logger } from '../../libs/core/logger.js';
import type { EnrichedEvent } from '../../libs/events/envelope.js';
import { createEnricher } from '../../libs/enrich/enrich-stage.js';
import { defaultGeoCacheDirs } from '../../libs/enrich/geo-lookup.js';
import { createDeadLetterOutput } from '../../libs/kafka/outputs.js';
import { createStageWorker } from '../../libs/kafka/stage-worker.js';
import { pipeline, stage } from '../../libs/pipeline/pipeline.js';
import { fleetConfigSchema, groupId } from '../fleet/fleet-config.js';
import { eventTopicOutput, openFleetContext } from '../fleet/fleet-context.js';
import { exitOnFatal, runningService, type RunningService } from '../fleet/running-service.js';

export const enricherConfigSchema = fleetConfigSchema.extend({
  PORT: z.coerce.number().int().min(0).max(65535).default(9101),
  GEOIP_DB: envOptionalString,
  /**
   * Directories (comma-separated, searched in order, before the OS temp dir) for the compact form of
   * the GEOIP_DB files; it is built into the first writable one when none holds it. The image
   * ships it prebuilt for the bundled data in /app/geo-cache.
   */
  GEOIP_CACHE_DIR: envOptionalString,
  ASN_DB: envOptionalString,
});
export type EnricherConfig = z.infer<typeof enricherConfigSchema>;

export async function startEnricher(config: EnricherConfig, logger: Logger): Promise<RunningService> {
  const ctx = await openFleetContext('enricher', config, logger);
  const enricher = await createEnricher({
    flags: ctx.tenants,
    geoPaths: config.GEOIP_DB ? parseList(config.GEOIP_DB) : undefined,
    geoCacheDirs: config.GEOIP_CACHE_DIR ? [...parseList(config.GEOIP_CACHE_DIR), ...defaultGeoCacheDirs()] : undefined,
    asnPaths: config.ASN_DB ? parseList(config.ASN_DB) : undefined,
  });
  const geo = enricher.geo.stats;
  logger.info({ geo: { mode: geo.mode, loadMs: geo.loadMs, files: geo.files }, asnLoadMs: enricher.asn.stats.loadMs }, 'geo and ASN data open');
  const worker = createStageWorker({
    name: 'enrich',
    kafka: ctx.kafka,
    groupId: groupId(config, 'enricher'),
    inputTopic: ctx.topics.raw,
    decode: { record: (b) => ctx.codec.decodeRawRecord(b) },
    pipeline: pipeline(stage('enrich', enricher.stage)),
    describe: (e) => ({ tenantId: e.tenant_id, eventId: e.event_id }),
    output: eventTopicOutput<EnrichedEvent>(ctx, 'enriched', { one: (e) => ctx.codec.encodeEnriched(e), many: (es) => ctx.codec.encodeEnrichedBatch(es) }),
    deadLetters: createDeadLetterOutput({ producer: ctx.producer, topic: ctx.topics.dlq }),
    metrics: ctx.metrics,
    logger,
    onFatal: exitOnFatal(logger),
  });
  return runningService(ctx, [worker], [{ name: 'enricher', run: () => enricher.close() }]);
}
