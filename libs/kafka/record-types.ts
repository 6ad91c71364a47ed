// Zod schemas (and inferred types) of the two Kafka records that are not events: overwrite
// commands (issue 4; on the topic as sealed records, issue 12) and dead letters. NOTE: they belong beside the envelope in
// libs/events/; they live here until the lead moves them (proposed diff in the report).
import { z } from 'zod';
import { LIMITS } from '../events/envelope.js';

export const OVERWRITE_SUBJECTS = ['user', 'account'] as const;
export const overwriteSubjectSchema = z.enum(OVERWRITE_SUBJECTS);
export type OverwriteSubject = z.infer<typeof overwriteSubjectSchema>;

export const OVERWRITE_MODES = ['overwrite', 'anonymize', 'delete'] as const;
export const overwriteModeSchema = z.enum(OVERWRITE_MODES);
export type OverwriteMode = z.infer<typeof overwriteModeSchema>;

/**
 * One overwrite/erasure command on `tracklane.overwrites.v1` (issue 4, DESIGN.md §5).
 * NOTE: snake_case like every other record; the REST API's camelCase body
 * (`requestId`, `deleteEvents`, …) is mapped at the API boundary, and its optional flags
 * are normalised to booleans there so consumers never see "absent".
 */
export const overwriteCommandSchema = z.object({
  request_id: z.string().min(1).max(LIMITS.idChars),
  tenant_id: z.string().min(1).max(LIMITS.idChars),
  subject: overwriteSubjectSchema,
  /** user id or account id, per `subject` */
  id: z.string().min(1).max(LIMITS.idChars),
  /** attribute → new plain-string value; null clears it */
  set: z.record(z.string(), z.string().nullable()),
  mode: overwriteModeSchema,
  /** with mode `delete`: remove the subject's events too */
  delete_events: z.boolean(),
  /** drop (and count) the subject's future events */
  suppress: z.boolean(),
  /** ms since epoch; history received before this instant is rewritten */
  requested_at: z.number().int(),
  /**
   * create the user/account row when none is stored (Data Loader `--insert-missing`);
   * NOTE: nullable (null = false) because it was added after v1 (schemas/avro/README.md)
   */
  insert_missing: z.boolean().nullable(),
});
export type OverwriteCommand = z.infer<typeof overwriteCommandSchema>;

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
