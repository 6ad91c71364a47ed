// The overwrite/erasure command (issue 4, DESIGN.md §5): what the REST API accepts (mapped
// from its camelCase body), the compactor plans and applies, and the embedded queue holds. How
// it travels on Kafka (sealed, as an Avro record) is libs/kafka/record-types.ts.
import { z } from 'zod';
import { LIMITS } from './envelope.js';

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
  /**
   * replaceId (issue 15 item 3): the random id the subject's kept history takes instead of its
   * clear id or any pseudonym of it; absent: ids are kept. NOTE: on Kafka it travels sealed with
   * `id` (overwrite-cipher.ts), so the record's schema is unchanged.
   */
  replacement_id: z.string().min(1).max(LIMITS.idChars).optional(),
});
export type OverwriteCommand = z.infer<typeof overwriteCommandSchema>;
