// KafkaJS behind a small seam: one place that builds the client (logging through pino,
// retry policy), so the rest of the code never imports kafkajs directly except the runner.
import { Kafka, logLevel, type KafkaConfig, type LogEntry } from 'kafkajs';
import type { Logger } from '../core/logger.js';
import type { KafkaSecurity } from './kafka-security.js';

export interface KafkaClientConfig extends KafkaSecurity {
  brokers: string[];
  clientId: string;
  logger: Logger;
  /** ms; also bounds how long a produce waits when the cluster is down */
  requestTimeoutMs?: number;
  connectionTimeoutMs?: number;
  /**
   * while true, the client's own errors and warnings are logged at debug: during start-up the
   * service logs one line naming the setting to check instead (services/fleet/startup.ts)
   */
  quiet?: () => boolean;
}

export function createKafka(cfg: KafkaClientConfig): Kafka {
  const log = cfg.logger.child({ component: 'kafkajs' });
  const config: KafkaConfig = {
    clientId: cfg.clientId,
    brokers: cfg.brokers,
    requestTimeout: cfg.requestTimeoutMs ?? 10_000,
    connectionTimeout: cfg.connectionTimeoutMs ?? 3_000,
    ...(cfg.ssl ? { ssl: cfg.ssl } : {}),
    ...(cfg.sasl ? { sasl: cfg.sasl } : {}),
    // NOTE: retries are bounded on purpose (a collector must answer 503 rather than hang); a
    // message resent after that is deduplicated downstream by event id
    retry: { initialRetryTime: 100, maxRetryTime: 2_000, retries: 5 },
    logLevel: logLevel.WARN,
    logCreator:
      () =>
      ({ level, log: entry }: LogEntry) => {
        // NOTE: kafkajs log entries carry broker/topic metadata, never record payloads.
        const { message, ...rest } = entry;
        if (cfg.quiet?.()) log.debug(rest, message);
        else if (level <= logLevel.ERROR) log.error(rest, message);
        else if (level === logLevel.WARN) log.warn(rest, message);
        else log.debug(rest, message);
      },
  };
  return new Kafka(config);
}
