// `sealed` on the overwrite record is an allowed evolution of
// tracklane.overwrites.v1-value (schemas/avro/README.md), not a new topic. Old records read
// with the new schema are unsealed (null); a not-yet-upgraded compactor reading a sealed record
// finds an empty id and refuses it (dead letter) rather than applying an empty command.
import { describe, expect, it } from 'vitest';
import { overwriteCommandSchema } from '../events/overwrite-command.js';
import { buildAvroType, loadAvroSchema, type AvroRecordSchema } from './avro-schemas.js';
import { overwriteFull, overwriteSealed } from '../../test/support/record-fixtures.js';
import { overwriteRecordSchema } from './record-types.js';
import { checkEvolutionRules } from './schema-compat.js';

const current = (): AvroRecordSchema => structuredClone(loadAvroSchema('overwrite'));
/** the schema before sealing: the current one without `sealed` */
const before = (): AvroRecordSchema => ({ ...current(), fields: current().fields.filter((f) => f.name !== 'sealed') });

describe('overwrite record: + sealed', () => {
  it('follows the evolution rules (backward compatible, new field optional)', () => {
    expect(before().fields.length).toBe(current().fields.length - 1);
    expect(checkEvolutionRules(before(), current())).toEqual([]);
  });

  it('a record written before sealing reads as unsealed, and is a valid record', () => {
    const oldType = buildAvroType(before());
    const newType = buildAvroType(current());
    const { sealed: _drop, ...oldRecord } = overwriteFull;
    const read: unknown = newType.fromBuffer(oldType.toBuffer(oldRecord), newType.createResolver(oldType));
    expect(read).toEqual({ ...oldRecord, sealed: null });
    expect(overwriteRecordSchema.safeParse(read).success).toBe(true);
  });

  it('an old reader meets a sealed record with an empty id and refuses it', () => {
    const oldType = buildAvroType(before());
    const newType = buildAvroType(current());
    const read: unknown = oldType.fromBuffer(newType.toBuffer(overwriteSealed), oldType.createResolver(newType));
    expect(read).toMatchObject({ id: '', set: {} });
    const parsed = overwriteCommandSchema.safeParse(read);
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues[0]?.path).toEqual(['id']);
  });

  it('an unsealed record must carry its id', () => {
    expect(overwriteRecordSchema.safeParse({ ...overwriteFull, id: '' }).success).toBe(false);
    expect(overwriteRecordSchema.safeParse(overwriteSealed).success).toBe(true);
  });
});
