// Embedded runner's pipeline: the collector's batch goes through enrich → anonymize → the sink
// stage in line, counted and routed by the shared result handler (the same metrics as the
// fleet's workers), then into the group-committing ClickHouse sink; `ingest` resolves once the
// flush holding every accepted event (and every dead letter) succeeded — the embedded
// durability point.
import type { Logger } from '../../libs/core/logger.js';
import type { DeadLetter } from '../../libs/events/dead-letter.js';
import type { CleanEvent, RawEvent } from '../../libs/events/envelope.js';
import type { IngestOutcome, IngestPipeline } from '../../libs/pipeline/ingest.js';
import type { PipelineMetrics } from '../../libs/pipeline/metrics.js';
import type { Pipeline, PipelineResult } from '../../libs/pipeline/pipeline.js';
import { createResultHandler } from '../../libs/pipeline/result-handler.js';
import type { ClickHouseSink } from '../../libs/sink/clickhouse-sink.js';

/** What the pipeline needs of the sink: the group-committing event write and dead letters. */
export type EmbeddedSink = Pick<ClickHouseSink, 'write' | 'writeDeadLetters'>;

export interface EmbeddedPipelineDeps {
  /** raw event → the clean event to store (enrich, anonymize, the sink stage) */
  stages: Pipeline<RawEvent, CleanEvent>;
  sink: EmbeddedSink;
  metrics: PipelineMetrics;
  logger: Logger;
}

export interface EmbeddedPipeline extends IngestPipeline {
  /** stop taking new batches; in-flight ones finish */
  close(): void;
}

export function createEmbeddedPipeline(deps: EmbeddedPipelineDeps): EmbeddedPipeline {
  const results = createResultHandler({ stages: deps.stages.stages, metrics: deps.metrics });
  let open = true;

  return {
    ready: () => open,
    close() {
      open = false;
    },
    async ingest(events: readonly RawEvent[]): Promise<IngestOutcome> {
      const clean: CleanEvent[] = [];
      const letters: DeadLetter[] = [];
      const outcome: IngestOutcome = { accepted: 0, dropped: [], deadLettered: [], retry: [] };
      // NOTE: counted per request, not per event (see ResultHandler.batch)
      const routing = results.batch();
      try {
        for (const event of events) {
          const ran = deps.stages.run(event);
          route(event, ran instanceof Promise ? await ran : ran);
        }
      } finally {
        routing.commit();
      }
      function route(event: RawEvent, ran: PipelineResult<CleanEvent>): void {
        const routed = routing.route(ran, { tenantId: event.tenant_id, eventId: event.event_id });
        const eventId = event.event_id;
        switch (routed.kind) {
          case 'ok':
            clean.push(routed.value);
            break;
          case 'drop':
            outcome.dropped.push({ eventId, reason: routed.reason });
            break;
          case 'retry':
            outcome.retry.push({ eventId, reason: routed.reason });
            break;
          case 'dlq':
            // NOTE: the input may carry PII; dead_letters has a TTL that bounds how long.
            outcome.deadLettered.push({ eventId, reason: routed.letter.reason });
            letters.push(routed.letter);
            break;
        }
      }
      if (outcome.retry.length > 0) {
        deps.logger.warn({ count: outcome.retry.length, reason: outcome.retry[0]?.reason }, 'events need a retry');
      }
      await Promise.all([clean.length > 0 ? deps.sink.write(clean) : undefined, letters.length > 0 ? deps.sink.writeDeadLetters(letters) : undefined]);
      results.handedOn(clean.length, letters);
      outcome.accepted = clean.length;
      return outcome;
    },
  };
}
