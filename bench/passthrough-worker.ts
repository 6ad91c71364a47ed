// The baseline of bench/fleet-bench.ts: a no-op stage worker that consumes records of one event
// each (the v1 shape) with the same runner, consumer settings, codec and producer as the real
// services, and produces every record decoded-then-re-encoded, unchanged, one per event, to a
// scratch topic: "a one-event-per-record KafkaJS consume-and-produce passthrough".
// Run as its own process: `node --import tsx bench/passthrough-worker.ts` with the fleet env
// plus PASSTHROUGH_KIND, PASSTHROUGH_GROUP and PASSTHROUGH_OUTPUT_TOPIC.
import { z } from 'zod';
import type { Logger } from '../libs/core/logger.js';
import { partitionKey, type RawEvent } from '../libs/events/envelope.js';
import { createDeadLetterOutput, createTopicOutput } from '../libs/kafka/outputs.js';
import { createStageWorker, type DecodeResult } from '../libs/kafka/stage-worker.js';
import { passStage, pipeline } from '../libs/pipeline/pipeline.js';
import { fleetConfigSchema } from '../services/fleet/fleet-config.js';
import { openFleetContext, type FleetContext } from '../services/fleet/fleet-context.js';
import { runningService, runServiceMain, type RunningService } from '../services/fleet/running-service.js';

const passthroughConfigSchema = fleetConfigSchema.extend({
  PORT: z.coerce.number().int().min(0).max(65535).default(0),
  /** which record kind (and so which input topic and codec) to pass through */
  PASSTHROUGH_KIND: z.enum(['raw', 'enriched', 'clean']),
  PASSTHROUGH_GROUP: z.string().min(1, 'PASSTHROUGH_GROUP names the consumer group'),
  /** the topic to read (default: the kind's own topic); its records hold one event each */
  PASSTHROUGH_INPUT_TOPIC: z.string().min(1).optional(),
  PASSTHROUGH_OUTPUT_TOPIC: z.string().min(1, 'PASSTHROUGH_OUTPUT_TOPIC names the scratch topic'),
});
type PassthroughConfig = z.infer<typeof passthroughConfigSchema>;

interface Io<T> {
  inputTopic: string;
  decode: (b: Buffer) => Promise<DecodeResult<T>>;
  encode: (e: T) => Buffer;
}

async function startPassthrough(config: PassthroughConfig, logger: Logger): Promise<RunningService> {
  const ctx = await openFleetContext('passthrough', config, logger);
  const { codec, topics } = ctx;
  switch (config.PASSTHROUGH_KIND) {
    case 'raw':
      return run(ctx, config, { inputTopic: config.PASSTHROUGH_INPUT_TOPIC ?? topics.raw, decode: (b) => codec.decodeRaw(b), encode: (e) => codec.encodeRaw(e) });
    case 'enriched':
      return run(ctx, config, { inputTopic: config.PASSTHROUGH_INPUT_TOPIC ?? topics.enriched, decode: (b) => codec.decodeEnriched(b), encode: (e) => codec.encodeEnriched(e) });
    case 'clean':
      return run(ctx, config, { inputTopic: config.PASSTHROUGH_INPUT_TOPIC ?? topics.clean, decode: (b) => codec.decodeClean(b), encode: (e) => codec.encodeClean(e) });
  }
}

async function run<T extends RawEvent>(ctx: FleetContext, config: PassthroughConfig, io: Io<T>): Promise<RunningService> {
  // NOTE: no consumer or producer options here on purpose: the defaults of createStageWorker and
  // connectProducer are exactly what the enricher, anonymizer and sink run with.
  const worker = createStageWorker<T, T>({
    name: 'passthrough',
    kafka: ctx.kafka,
    groupId: config.PASSTHROUGH_GROUP,
    inputTopic: io.inputTopic,
    decode: io.decode,
    pipeline: pipeline(passStage<T>('passthrough')),
    describe: (e) => ({ tenantId: e.tenant_id, eventId: e.event_id }),
    output: createTopicOutput<T>({ producer: ctx.producer, topic: config.PASSTHROUGH_OUTPUT_TOPIC, encode: io.encode, key: partitionKey }),
    deadLetters: createDeadLetterOutput({ producer: ctx.producer, topic: ctx.topics.dlq }),
    metrics: ctx.metrics,
    logger: ctx.logger,
  });
  return runningService(ctx, [worker], []);
}

runServiceMain('passthrough', passthroughConfigSchema, startPassthrough);
