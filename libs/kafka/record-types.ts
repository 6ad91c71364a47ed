// Zod schemas (and inferred types) of the two Kafka records that are not events: overwrite
// records (the command of libs/events/overwrite-command.ts as sealed on the topic, issue 12) and
// dead letters. NOTE: dead letters belong beside the envelope in libs/events/; they live here
// until the lead moves them (proposed diff in the report).
import { z } from 'zod';
import { LIMITS } from '../events/envelope.js';
import { overwriteCommandSchema } from '../events/overwrite-command.js';

/**
 * An overwrite command as it travels on the overwrites topic: `id` and `set` are sealed
 * (libs/compactor/overwrite-cipher.ts) and the clear fields left empty, so the topic holds
 * neither ids nor new values. NOTE: `sealed` null is a record as written before sealing: it still
 * decodes (its `id` must then be there), but the compactor dead-letters it (overwrite-cipher.ts):
 * without the seal anyone who can write to the topic could forge an erasure.
 */
export const overwriteRecordSchema = overwriteCommandSchema
  .extend({
    id: z.string().max(LIMITS.idChars),
    sealed: z.instanceof(Buffer).nullable(),
  })
  .refine((r) => r.sealed !== null || r.id.length > 0, { message: 'an unsealed record needs an id', path: ['id'] });
export type OverwriteRecord = z.infer<typeof overwriteRecordSchema>;

/** A poison or permanently failing record on `tracklane.dlq.v1`, with where it came from. */
export const deadLetterSchema = z.object({
  original_topic: z.string(),
  original_partition: z.number().int(),
  /** NOTE: Avro long read as a JS number: exact up to 2^53, far beyond any real offset */
  original_offset: z.number().int(),
  key: z.instanceof(Buffer).nullable(),
  /** the original record bytes, as consumed: possibly undecodable */
  value: z.instanceof(Buffer),
  stage: z.string(),
  reason: z.string(),
  error: z.string().nullable(),
  attempts: z.number().int(),
  tenant_id: z.string().nullable(),
  event_id: z.string().nullable(),
  /** ms since epoch */
  failed_at: z.number().int(),
});
export type DeadLetter = z.infer<typeof deadLetterSchema>;
