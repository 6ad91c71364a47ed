// Schema evolution on the clean schema: a v2 with one new optional field reads v1 data
// (default) and v1 reads v2 data (field dropped); anything else is caught by our checks.
import { describe, expect, it } from 'vitest';
import { buildAvroType, loadAvroSchema, RECORD_KINDS, type AvroField, type AvroRecordSchema } from './avro-schemas.js';
import { cleanFull, cleanMinimal } from '../../test/support/record-fixtures.js';
import { checkBackwardCompatible, checkEvolutionRules } from './schema-compat.js';

const v1 = (): AvroRecordSchema => structuredClone(loadAvroSchema('clean'));
const withField = (f: AvroField, s = v1()): AvroRecordSchema => ({ ...s, fields: [...s.fields, f] });
const v2 = () => withField({ name: 'consent_basis', type: ['null', 'string'], default: null });

describe('clean schema v1 → v2 with one new optional field', () => {
  const v1Type = buildAvroType(v1());
  const v2Type = buildAvroType(v2());

  it('old data read with the new schema gets the default', () => {
    for (const e of [cleanFull, cleanMinimal]) {
      const read: unknown = v2Type.fromBuffer(v1Type.toBuffer(e), v2Type.createResolver(v1Type));
      expect(read).toEqual({ ...e, consent_basis: null });
    }
  });

  it('new data read with the old schema drops the new field', () => {
    const written = v2Type.toBuffer({ ...cleanFull, consent_basis: 'contract' });
    const read: unknown = v1Type.fromBuffer(written, v1Type.createResolver(v2Type));
    expect(read).toEqual(cleanFull);
    expect(read).not.toHaveProperty('consent_basis');
  });

  it('is backward compatible and follows the house rules', () => {
    expect(checkBackwardCompatible(v1(), v2())).toEqual({ compatible: true });
    expect(checkEvolutionRules(v1(), v2())).toEqual([]);
  });

  it.each(RECORD_KINDS)('%s: the current schema is compatible with itself', (kind) => {
    expect(checkEvolutionRules(loadAvroSchema(kind), loadAvroSchema(kind))).toEqual([]);
  });
});

describe('incompatible changes are reported', () => {
  it('a new required field (no default) is not backward compatible', () => {
    const res = checkBackwardCompatible(v1(), withField({ name: 'region_code', type: 'string' }));
    expect(res.compatible).toBe(false);
    expect(!res.compatible && res.reason).toMatch(/region_code/);
  });

  it('a retyped field is not backward compatible', () => {
    const s = v1();
    s.fields = s.fields.map((f) => (f.name === 'key_version' ? { ...f, type: 'string' } : f));
    expect(checkBackwardCompatible(v1(), s).compatible).toBe(false);
  });

  const rules: [string, () => AvroRecordSchema, RegExp][] = [
    ['new field with a non-null default', () => withField({ name: 'tier', type: 'string', default: 'free' }), /tier: new field must be/],
    ['new nullable field without a default', () => withField({ name: 'tier', type: ['null', 'string'] }), /tier: new field must be|not backward compatible/],
    ['removed field', () => ({ ...v1(), fields: v1().fields.filter((f) => f.name !== 'ip') }), /\.ip: removed/],
    ['renamed field', () => ({ ...v1(), fields: v1().fields.map((f) => (f.name === 'ip' ? { ...f, name: 'ip_address' } : f)) }), /\.ip: removed/],
    ['widened int → long (Avro-compatible, but a retype)', () => ({
      ...v1(),
      fields: v1().fields.map((f) => (f.name === 'key_version' ? { ...f, type: 'long' } : f)),
    }), /key_version: type changed/],
    ['new required field inside a nested record', () => {
      const s = v1();
      const geo = s.fields.find((f) => f.name === 'geo');
      const rec = (geo?.type as [string, AvroRecordSchema])[1];
      rec.fields.push({ name: 'postal_code', type: 'string' });
      return s;
    }, /geo\.postal_code: new field must be/],
  ];
  it.each(rules)('%s', (_name, make, problem) => {
    const problems = checkEvolutionRules(v1(), make());
    expect(problems.join('\n')).toMatch(problem);
  });
});
