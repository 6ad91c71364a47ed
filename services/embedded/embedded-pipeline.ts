// Embedded runner's pipeline: the collector's batch goes through enrich → anonymize in line,
// then into the group-committing ClickHouse sink; `ingest` resolves once the flush holding
// every accepted event (and every dead letter) succeeded — the embedded durability point.
import type { Logger } from '../../libs/core/logger.js';
import type { Stage } from '../../libs/core/result.js';
import type { CleanEvent, EnrichedEvent, RawEvent } from '../../libs/events/envelope.js';
import type { IngestOutcome, IngestPipeline } from '../../libs/pipeline/ingest.js';
import { chainStages } from '../../libs/pipeline/stage-chain.js';

export interface DeadLetter {
  tenantId: string;
  eventId: string;
  stage: string;
  reason: string;
  error: string | null;
  /** the event as the failing stage received it (may carry PII: the table has a TTL) */
  payload: string;
  receivedAt: number;
}

export interface EmbeddedSink {
  write(events: readonly CleanEvent[]): Promise<void>;
  writeDeadLetters(letters: readonly DeadLetter[]): Promise<void>;
}

export interface EmbeddedPipelineDeps {
  enrich: Stage<RawEvent, EnrichedEvent>;
  anonymize: Stage<EnrichedEvent, CleanEvent>;
  sink: EmbeddedSink;
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
      const letters: DeadLetter[] = [];
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
          letters.push({
            tenantId: event.tenant_id,
            eventId: event.event_id,
            stage,
            reason: result.reason,
            error: result.error instanceof Error ? result.error.message : null,
            payload: JSON.stringify(event),
            receivedAt: event.received_at,
          });
        }
      }
      if (outcome.retry.length > 0) {
        deps.logger.warn({ count: outcome.retry.length, reason: outcome.retry[0]?.reason }, 'events need a retry');
      }
      await Promise.all([
        clean.length > 0 ? deps.sink.write(clean) : undefined,
        letters.length > 0 ? deps.sink.writeDeadLetters(letters) : undefined,
      ]);
      outcome.accepted = clean.length;
      return outcome;
    },
  };
}
