// Embedded runner's pipeline: the collector's batch goes through enrich → anonymize in line,
// then into the group-committing ClickHouse sink; `ingest` resolves once the flush holding
// every accepted event (and every dead letter) succeeded — the embedded durability point.
import type { Logger } from '../../libs/core/logger.js';
import type { Stage } from '../../libs/core/result.js';
import type { CleanEvent, EnrichedEvent, RawEvent } from '../../libs/events/envelope.js';
import type { IngestOutcome, IngestPipeline } from '../../libs/pipeline/ingest.js';
import { chainStages } from '../../libs/pipeline/stage-chain.js';
import type { DeadLetterInput } from '../../libs/clickhouse/tables/dead-letters.js';
import type { ClickHouseSink } from '../../libs/sink/clickhouse-sink.js';

/** What the pipeline needs of the sink: the group-committing event write and dead letters. */
export type EmbeddedSink = Pick<ClickHouseSink, 'write' | 'writeDeadLetters'>;

export interface EmbeddedPipelineDeps {
  enrich: Stage<RawEvent, EnrichedEvent>;
  anonymize: Stage<EnrichedEvent, CleanEvent>;
  sink: EmbeddedSink;
  /** last look at clean events before they are written (e.g. pending overwrites) */
  beforeSink?: (events: CleanEvent[]) => CleanEvent[];
  logger: Logger;
}

export interface EmbeddedPipeline extends IngestPipeline {
  /** stop taking new batches; in-flight ones finish */
  close(): void;
}

export function createEmbeddedPipeline(deps: EmbeddedPipelineDeps): EmbeddedPipeline {
  const run = chainStages({ name: 'enrich', run: deps.enrich }, { name: 'anonymize', run: deps.anonymize });
  let open = true;

  return {
    ready: () => open,
    close() {
      open = false;
    },
    async ingest(events: readonly RawEvent[]): Promise<IngestOutcome> {
      const clean: CleanEvent[] = [];
      const letters: DeadLetterInput[] = [];
      const outcome: IngestOutcome = { accepted: 0, dropped: [], deadLettered: [], retry: [] };
      for (const event of events) {
        const r = run(event);
        if (r.ok) {
          clean.push(r.value);
          continue;
        }
        const { stage, result } = r;
        if (result.kind === 'drop') {
          outcome.dropped.push({ eventId: event.event_id, reason: result.reason });
        } else if (result.kind === 'retry') {
          outcome.retry.push({ eventId: event.event_id, reason: result.reason });
        } else {
          outcome.deadLettered.push({ eventId: event.event_id, reason: result.reason });
          // NOTE: the payload may carry PII; dead_letters has a TTL that bounds how long.
          letters.push({
            tenant_id: event.tenant_id,
            event_id: event.event_id,
            stage,
            reason: result.reason,
            error: result.error,
            payload: event,
            received_at: event.received_at,
          });
        }
      }
      if (outcome.retry.length > 0) {
        deps.logger.warn({ count: outcome.retry.length, reason: outcome.retry[0]?.reason }, 'events need a retry');
      }
      await Promise.all([
        clean.length > 0 ? deps.sink.write(deps.beforeSink ? deps.beforeSink(clean) : clean) : undefined,
        letters.length > 0 ? deps.sink.writeDeadLetters(letters) : undefined,
      ]);
      outcome.accepted = clean.length;
      return outcome;
    },
  };
}
