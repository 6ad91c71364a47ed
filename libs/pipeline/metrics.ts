// Prometheus metrics of a pipeline (prom-client), one registry per process, served on /metrics:
// the same names in a fleet worker and in the embedded runner. Counted by result-handler.ts,
// except what only a Kafka consumer has (rebuilds, lag, batch time: libs/kafka/stage-worker.ts).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface PipelineMetrics {
  registry: Registry;
  eventsIn: Counter<'stage'>;
  eventsOut: Counter<'stage'>;
  deadLetters: Counter<'stage'>;
  drops: Counter<'stage'>;
  retries: Counter<'stage'>;
  /** consumers rebuilt in process after KafkaJS gave up on them (libs/kafka/stage-worker.ts) */
  consumerRebuilds: Counter<'stage'>;
  batchSeconds: Histogram<'stage'>;
  lag: Gauge<'stage' | 'topic' | 'partition'>;
}

export function createPipelineMetrics(service: string): PipelineMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    eventsIn: new Counter({ name: 'tracklane_events_in_total', help: 'inputs a stage took (records read, undecodable ones included)', labelNames: ['stage'], registers }),
    eventsOut: new Counter({ name: 'tracklane_events_out_total', help: 'results a stage handed on, counted once the next step took them', labelNames: ['stage'], registers }),
    deadLetters: new Counter({ name: 'tracklane_dead_letters_total', help: 'inputs sent to the dead-letter store (the DLQ topic, or dead_letters in embedded mode)', labelNames: ['stage'], registers }),
    drops: new Counter({ name: 'tracklane_dropped_total', help: 'inputs deliberately discarded (e.g. events of a suppressed user)', labelNames: ['stage'], registers }),
    retries: new Counter({ name: 'tracklane_retries_total', help: 'stage retries (e.g. fail-closed pauses)', labelNames: ['stage'], registers }),
    consumerRebuilds: new Counter({ name: 'tracklane_consumer_rebuilds_total', help: 'consumers rebuilt in process after the Kafka client gave up on them', labelNames: ['stage'], registers }),
    batchSeconds: new Histogram({
      name: 'tracklane_batch_seconds',
      help: 'time to process one batch, commit included',
      labelNames: ['stage'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    lag: new Gauge({ name: 'tracklane_consumer_lag', help: 'records behind the high watermark', labelNames: ['stage', 'topic', 'partition'], registers }),
  };
}
