// The .avsc files and the zod envelope can never drift: same fields, same nesting, same
// nullability and compatible primitive types, walked recursively.
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { cleanEventSchema, enrichedEventSchema, rawEventSchema } from '../events/envelope.js';
import { AVRO_NAMESPACE, avroType, loadAvroSchema, RECORD_KINDS, type RecordKind } from './avro-schemas.js';
import { overwriteRecordSchema } from './record-types.js';

const ZOD: Record<RecordKind, z.ZodObject> = {
  raw: rawEventSchema,
  enriched: enrichedEventSchema,
  clean: cleanEventSchema,
  overwrite: overwriteRecordSchema,
};

/** One line per leaf: `path: avro-shape`, derived from zod. */
function zodShape(s: z.ZodType, path: string, out: string[]): void {
  const def = s.def as unknown as { type: string; innerType?: z.ZodType; element?: z.ZodType; valueType?: z.ZodType };
  switch (def.type) {
    case 'nullable':
      out.push(`${path}: nullable`);
      return zodShape(def.innerType as z.ZodType, path, out);
    case 'object':
      out.push(`${path}: record`);
      for (const [k, v] of Object.entries((s as z.ZodObject).shape)) zodShape(v as z.ZodType, `${path}.${k}`, out);
      return;
    case 'array':
      out.push(`${path}: array`);
      return zodShape(def.element as z.ZodType, `${path}[]`, out);
    case 'record':
      out.push(`${path}: map`);
      return zodShape(def.valueType as z.ZodType, `${path}{}`, out);
    case 'string':
    case 'enum': // NOTE: enums are Avro strings on purpose (schemas/avro/README.md)
      out.push(`${path}: string`);
      return;
    case 'boolean':
      out.push(`${path}: boolean`);
      return;
    case 'number':
      out.push(`${path}: ${(s as z.ZodNumber).format === 'safeint' ? 'integer' : 'double'}`);
      return;
    case 'custom': // z.instanceof(Buffer)
      out.push(`${path}: bytes`);
      return;
    default:
      throw new Error(`${path}: zod type ${def.type} has no Avro mapping in this test`);
  }
}

/** The same lines from the .avsc JSON; also checks the null-first/default-null rule. */
function avroShape(t: unknown, path: string, out: string[], fieldDefault?: { has: boolean; value: unknown }): void {
  if (Array.isArray(t)) {
    expect(t, `${path}: only ["null", T] unions`).toHaveLength(2);
    expect(t[0], `${path}: null first`).toBe('null');
    if (fieldDefault) expect(fieldDefault, `${path}: nullable field defaults to null`).toEqual({ has: true, value: null });
    out.push(`${path}: nullable`);
    return avroShape(t[1], path, out);
  }
  if (fieldDefault?.has) throw new Error(`${path}: only nullable fields carry a default`);
  if (typeof t === 'string') {
    const m: Record<string, string> = { string: 'string', boolean: 'boolean', int: 'integer', long: 'integer', double: 'double', bytes: 'bytes' };
    const v = m[t];
    if (!v) throw new Error(`${path}: unexpected Avro type ${t}`);
    out.push(`${path}: ${v}`);
    return;
  }
  const o = t as { type: string; fields?: { name: string; type: unknown; default?: unknown }[]; items?: unknown; values?: unknown; logicalType?: string };
  expect(o.logicalType, `${path}: no logical types (plain ms numbers)`).toBeUndefined();
  if (o.type === 'record') {
    out.push(`${path}: record`);
    for (const f of o.fields ?? []) avroShape(f.type, `${path}.${f.name}`, out, { has: 'default' in f, value: f.default });
  } else if (o.type === 'array') {
    out.push(`${path}: array`);
    avroShape(o.items, `${path}[]`, out);
  } else if (o.type === 'map') {
    out.push(`${path}: map`);
    avroShape(o.values, `${path}{}`, out);
  } else {
    throw new Error(`${path}: unexpected Avro type ${o.type}`);
  }
}

describe('schemas/avro mirror the zod envelope', () => {
  it.each(RECORD_KINDS)('%s: same fields, nesting, nullability and types', (kind) => {
    const fromZod: string[] = [];
    const fromAvro: string[] = [];
    zodShape(ZOD[kind], '$', fromZod);
    avroShape(loadAvroSchema(kind), '$', fromAvro);
    expect(fromAvro).toEqual(fromZod);
  });

  it.each(RECORD_KINDS)('%s: named in %s and built by avsc', (kind) => {
    const s = loadAvroSchema(kind);
    expect(s.namespace).toBe(AVRO_NAMESPACE);
    expect(avroType(kind).name).toBe(`${AVRO_NAMESPACE}.${s.name}`);
  });

  it('timestamps and ASNs are longs, small counters ints', () => {
    const clean = JSON.stringify(loadAvroSchema('clean'));
    for (const f of ['occurred_at', 'received_at', 'asn']) expect(clean).toMatch(new RegExp(`"name":"${f}","type":(\\["null",)?"long"`));
    expect(clean).toMatch(/"name":"key_version","type":"int"/);
  });
});
