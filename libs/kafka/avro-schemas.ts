// Loads the Avro schemas of the Kafka records (schemas/avro/*.avsc, the files are the
// contract) and builds the avsc Types the record codec reads and writes with.
import { readFileSync } from 'node:fs';
import avro from 'avsc';

/**
 * The four kinds of Kafka record Tracklane writes; one .avsc file and one topic each. The DLQ
 * topic carries records of these kinds as they were (libs/kafka/outputs.ts), so it has none.
 */
export const RECORD_KINDS = ['raw', 'enriched', 'clean', 'overwrite'] as const;
export type RecordKind = (typeof RECORD_KINDS)[number];

export const AVRO_NAMESPACE = 'dev.tracklane.v1';

/** schemas/avro/<file>.avsc per record kind. */
export const AVRO_SCHEMA_FILES: Readonly<Record<RecordKind, string>> = {
  raw: 'raw-event.avsc',
  enriched: 'enriched-event.avsc',
  clean: 'clean-event.avsc',
  overwrite: 'overwrite-command.avsc',
};

/** The JSON of one .avsc record schema (only what this code relies on is typed). */
export interface AvroRecordSchema {
  type: 'record';
  name: string;
  namespace?: string;
  doc?: string;
  fields: AvroField[];
}
export interface AvroField {
  name: string;
  type: unknown;
  default?: unknown;
  doc?: string;
}

/**
 * Options every Type of ours is built with. NOTE: `wrapUnions: 'auto'` keeps `["null", T]`
 * unions unwrapped (`null` or the bare value), which is exactly the envelope's nullable
 * fields; no logical types are declared, so longs stay plain ms numbers like the envelope.
 */
export const AVRO_TYPE_OPTIONS = { wrapUnions: 'auto', omitRecordMethods: true } as const;

// NOTE: resolved from this module's URL so it works from libs/kafka (tsx, vitest) and from
// dist/libs/kafka (the build copies schemas/ to dist/schemas/).
const SCHEMA_DIR = new URL('../../schemas/avro/', import.meta.url);

const rawCache = new Map<RecordKind, AvroRecordSchema>();
const typeCache = new Map<RecordKind, avro.Type>();

/** The parsed .avsc of one record kind (cached; treat it as read-only). */
export function loadAvroSchema(kind: RecordKind): AvroRecordSchema {
  const cached = rawCache.get(kind);
  if (cached) return cached;
  const file = new URL(AVRO_SCHEMA_FILES[kind], SCHEMA_DIR);
  const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
  if (!isRecordSchema(parsed)) throw new Error(`${file.pathname}: not an Avro record schema`);
  rawCache.set(kind, parsed);
  return parsed;
}

/** The avsc Type of one record kind, built from its .avsc (cached). */
export function avroType(kind: RecordKind): avro.Type {
  const cached = typeCache.get(kind);
  if (cached) return cached;
  const type = buildAvroType(loadAvroSchema(kind));
  typeCache.set(kind, type);
  return type;
}

/**
 * The record kinds whose records may hold many events (`<Name>Batch`, see batchSchema), and
 * the kinds they hold.
 */
export const BATCH_KINDS = ['raw', 'enriched', 'clean'] as const;
export type BatchKind = (typeof BATCH_KINDS)[number];

const batchSchemaCache = new Map<BatchKind, AvroRecordSchema>();
const batchTypeCache = new Map<BatchKind, avro.Type>();

/**
 * The schema of a record of many events of one kind, derived from its .avsc (never written out:
 * the event schema stays the one contract): `<Name>Batch { events: array<Name> }` in the same
 * namespace. Registered under `<topic>-<namespace>.<Name>Batch` (TopicRecordNameStrategy), next to
 * the event schema under `<topic>-value`; see schemas/avro/README.md "Records of many events".
 */
export function batchSchema(kind: BatchKind): AvroRecordSchema {
  const cached = batchSchemaCache.get(kind);
  if (cached) return cached;
  const one = loadAvroSchema(kind);
  const schema: AvroRecordSchema = {
    type: 'record',
    name: `${one.name}Batch`,
    namespace: one.namespace ?? AVRO_NAMESPACE,
    doc: `Many ${one.name} records of one partition, in the order they were received (one Kafka record).`,
    fields: [{ name: 'events', type: { type: 'array', items: one } }],
  };
  batchSchemaCache.set(kind, schema);
  return schema;
}

/** The avsc Type of batchSchema(kind) (cached). */
export function batchAvroType(kind: BatchKind): avro.Type {
  const cached = batchTypeCache.get(kind);
  if (cached) return cached;
  const type = buildAvroType(batchSchema(kind));
  batchTypeCache.set(kind, type);
  return type;
}

/** Builds a Type from any record schema with our options (for evolved or foreign schemas). */
export function buildAvroType(schema: AvroRecordSchema): avro.Type {
  // NOTE: a fresh registry per Type: named records (Geo, PageContext, …) recur across files.
  return avro.Type.forSchema(schema as avro.Schema, { ...AVRO_TYPE_OPTIONS, registry: {} });
}

function isRecordSchema(v: unknown): v is AvroRecordSchema {
  return (
    typeof v === 'object' &&
    v !== null &&
    'type' in v &&
    v.type === 'record' &&
    'name' in v &&
    typeof v.name === 'string' &&
    'fields' in v &&
    Array.isArray(v.fields)
  );
}
