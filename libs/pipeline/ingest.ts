// The collector's view of "everything after me": hand a batch of raw events on durably.
// Embedded mode runs the stages in line and waits for the ClickHouse flush; the fleet
// runner produces to Kafka and waits for the acks. The collector answers 2xx only after
// `ingest` resolved.
import type { RawEvent } from '../events/envelope.js';

export interface IngestOutcome {
  /** events handed on (stored, or produced) */
  accepted: number;
  /** deliberately discarded (e.g. suppressed users), with reasons */
  dropped: { eventId: string; reason: string }[];
  /** permanently failing events, kept in the dead-letter store with a reason */
  deadLettered: { eventId: string; reason: string }[];
  /** transiently failing events: the client should retry the request */
  retry: { eventId: string; reason: string }[];
}

export interface IngestPipeline {
  ingest(events: readonly RawEvent[]): Promise<IngestOutcome>;
  /** false while the pipeline cannot take events (starting, draining, storage down) */
  ready(): boolean;
}
