// A dead letter: an input a stage could not process, with the reason. Every runner reports
// failures in this one shape; the fleet sends the original record bytes to the DLQ topic with
// these fields as `tl-*` headers (libs/kafka/outputs.ts), and both runners store it as one
// `dead_letters` row (libs/clickhouse/tables/dead-letters.ts).

export interface DeadLetter {
  /** the stage that failed; `decode` when the record could not be read at all */
  stage: string;
  reason: string;
  /** the error's text, when there was one (never a record value: stage errors name fields only) */
  error: string | null;
  /** how often the stage ran on it (retries included) */
  attempts: number;
  tenantId: string | null;
  eventId: string | null;
  /** ms: when the stage gave up */
  failedAt: number;
  /** what the stage was given, as read; undefined when the record could not be read */
  input?: unknown;
  /** the record's bytes as received, when they could not be read (kept for inspection) */
  unreadable?: Buffer;
}

/** The text of a stage's error, for DeadLetter.error. */
export function errorText(e: unknown): string | null {
  if (e === undefined || e === null) return null;
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return typeof e === 'string' ? e : String(e);
}
