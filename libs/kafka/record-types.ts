// The zod schema (and inferred type) of the one Kafka record that is not an event: the overwrite
// record, the command of libs/events/overwrite-command.ts as sealed on the topic. Dead letters
// have no record of their own (libs/kafka/outputs.ts).
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
  // NOTE: an erasure's new id travels only inside `sealed` (no field of its own on the topic)
  .omit({ replacement_id: true })
  .extend({
    id: z.string().max(LIMITS.idChars),
    sealed: z.instanceof(Buffer).nullable(),
  })
  .refine((r) => r.sealed !== null || r.id.length > 0, { message: 'an unsealed record needs an id', path: ['id'] });
export type OverwriteRecord = z.infer<typeof overwriteRecordSchema>;
