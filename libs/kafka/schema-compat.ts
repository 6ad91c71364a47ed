// Schema evolution checks for schemas/avro: Avro's BACKWARD rule (the registry's setting)
// decided by avsc's own resolver, plus our stricter house rules (schemas/avro/README.md).
import avro from 'avsc';
import { buildAvroType, type AvroField, type AvroRecordSchema } from './avro-schemas.js';

export type CompatResult = { compatible: true } | { compatible: false; reason: string };

/**
 * BACKWARD: a reader on `newSchema` can read every record written with `oldSchema`.
 * NOTE: decided by avsc itself (`new.createResolver(old)` throws when, e.g., a field was
 * added without a default or a type changed), the same machinery the codec decodes with.
 */
export function checkBackwardCompatible(oldSchema: AvroRecordSchema, newSchema: AvroRecordSchema): CompatResult {
  let oldType: avro.Type;
  let newType: avro.Type;
  try {
    oldType = buildAvroType(oldSchema);
    newType = buildAvroType(newSchema);
  } catch (err) {
    return { compatible: false, reason: `invalid schema: ${errorText(err)}` };
  }
  try {
    newType.createResolver(oldType);
    return { compatible: true };
  } catch (err) {
    return { compatible: false, reason: errorText(err) };
  }
}

/**
 * Our evolution rules, stricter than BACKWARD because old consumers keep reading while
 * producers roll out: BACKWARD holds, no field is removed or retyped (so old readers keep
 * every field they expect), and every added field is `["null", …]` with `"default": null`.
 * Applied recursively to nested records. Returns every violation found.
 */
export function checkEvolutionRules(oldSchema: AvroRecordSchema, newSchema: AvroRecordSchema): string[] {
  const problems: string[] = [];
  const backward = checkBackwardCompatible(oldSchema, newSchema);
  if (!backward.compatible) problems.push(`not backward compatible: ${backward.reason}`);
  compareRecords(oldSchema, newSchema, newSchema.name, problems);
  return problems;
}

function compareRecords(oldRec: AvroRecordSchema, newRec: AvroRecordSchema, path: string, problems: string[]): void {
  if (oldRec.name !== newRec.name) problems.push(`${path}: record renamed ${oldRec.name} → ${newRec.name}`);
  const newFields = new Map(newRec.fields.map((f) => [f.name, f]));
  for (const of of oldRec.fields) {
    const nf = newFields.get(of.name);
    if (!nf) {
      problems.push(`${path}.${of.name}: removed (or renamed)`);
      continue;
    }
    const oldRecord = recordOf(of.type);
    const newRecord = recordOf(nf.type);
    if (oldRecord && newRecord) {
      if (isNullable(of.type) !== isNullable(nf.type)) problems.push(`${path}.${of.name}: nullability changed`);
      compareRecords(oldRecord, newRecord, `${path}.${of.name}`, problems);
    } else if (JSON.stringify(stripDocs(of.type)) !== JSON.stringify(stripDocs(nf.type))) {
      problems.push(`${path}.${of.name}: type changed`);
    }
  }
  const oldNames = new Set(oldRec.fields.map((f) => f.name));
  for (const nf of newRec.fields) {
    if (!oldNames.has(nf.name) && !isOptionalField(nf)) {
      problems.push(`${path}.${nf.name}: new field must be ["null", …] with "default": null`);
    }
  }
}

function isOptionalField(f: AvroField): boolean {
  return Array.isArray(f.type) && f.type[0] === 'null' && 'default' in f && f.default === null;
}

function isNullable(t: unknown): boolean {
  return Array.isArray(t) && t[0] === 'null';
}

/** The record schema a field holds, directly or as the non-null branch of a union. */
function recordOf(t: unknown): AvroRecordSchema | undefined {
  const branch: unknown = Array.isArray(t) && t.length === 2 && t[0] === 'null' ? t[1] : t;
  if (typeof branch === 'object' && branch !== null && 'type' in branch && branch.type === 'record') {
    return branch as AvroRecordSchema;
  }
  return undefined;
}

function stripDocs(t: unknown): unknown {
  if (Array.isArray(t)) return t.map(stripDocs);
  if (typeof t === 'object' && t !== null) {
    return Object.fromEntries(Object.entries(t).filter(([k]) => k !== 'doc').map(([k, v]) => [k, stripDocs(v)]));
  }
  return t;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
