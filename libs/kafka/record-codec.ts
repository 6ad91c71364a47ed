// Encodes and decodes Tracklane's Kafka records in the Confluent wire format (magic byte 0,
// 4-byte big-endian schema id, Avro body) against a Confluent-compatible schema registry.
import avro from 'avsc';
import type { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import type { z } from 'zod';
import {
  cleanEventSchema,
  enrichedEventSchema,
  rawEventSchema,
  type CleanEvent,
  type EnrichedEvent,
  type RawEvent,
} from '../events/envelope.js';
import { isValidCleanEvent, isValidEnrichedEvent, isValidRawEvent } from '../events/envelope-check.js';
import { avroType, batchAvroType, batchSchema, BATCH_KINDS, loadAvroSchema, RECORD_KINDS, type BatchKind, type RecordKind } from './avro-schemas.js';
import type { DecodedEvent } from './stage-worker.js';
import { overwriteRecordSchema, type OverwriteRecord } from './record-types.js';
import { errorText, httpStatus, registerBackward } from './schema-registration.js';

/** An undecodable record is an expected outcome (it goes to the DLQ), so decode returns it. */
export type DecodeResult<T> = { ok: true; value: T; schemaId: number } | { ok: false; error: string };

export interface RecordTopics {
  raw: string;
  enriched: string;
  clean: string;
  overwrites: string;
  dlq: string;
}

/** What the codec needs of the registry client; a real `SchemaRegistry` is one. */
export type RegistryClient = Pick<SchemaRegistry, 'register' | 'getSchema'>;

export interface RecordCodecOptions {
  registry: RegistryClient;
  topics: RecordTopics;
  /**
   * Check every decoded record against its zod schema (enum members such as `type`, id
   * lengths — what Avro's `string` and `int` cannot say). Default true; see the measurements
   * in the report / README before turning it off.
   */
  validate?: boolean;
  /**
   * The registry's base URL. Only used by init() to set BACKWARD on a subject that a
   * crashed replica registered without setting it (Apicurio reports such a subject as NONE).
   */
  registryUrl?: string;
}

export interface RecordCodec {
  /** Registers every schema under `<topic>-value` and caches the ids. Idempotent. */
  init(): Promise<void>;
  /** The schema id each kind is written with (after init). */
  schemaIds(): Readonly<Record<RecordKind, number>>;
  subjects(): Readonly<Record<RecordKind, string>>;
  /** The schema id records of many events (`<Name>Batch`) are written with, and their subjects. */
  batchSchemaIds(): Readonly<Record<BatchKind, number>>;
  batchSubjects(): Readonly<Record<BatchKind, string>>;
  /** one event per record (the v1 shape; dead letters always are) */
  encodeRaw(e: RawEvent): Buffer;
  /** a record of one event only: refuses a record of many (use decodeRawRecord) */
  decodeRaw(buf: Buffer): Promise<DecodeResult<RawEvent>>;
  /** many events in one record (`RawEventBatch`), in order */
  encodeRawBatch(events: readonly RawEvent[]): Buffer;
  /**
   * The events of a record of either shape. A record that cannot be read at all is not ok; in a
   * record of many, an event that fails validation is a failed item (with its bytes as a record
   * of its own, for the DLQ) and the others are read.
   */
  decodeRawRecord(buf: Buffer): Promise<DecodeResult<DecodedEvent<RawEvent>[]>>;
  encodeEnriched(e: EnrichedEvent): Buffer;
  decodeEnriched(buf: Buffer): Promise<DecodeResult<EnrichedEvent>>;
  encodeEnrichedBatch(events: readonly EnrichedEvent[]): Buffer;
  decodeEnrichedRecord(buf: Buffer): Promise<DecodeResult<DecodedEvent<EnrichedEvent>[]>>;
  encodeClean(e: CleanEvent): Buffer;
  decodeClean(buf: Buffer): Promise<DecodeResult<CleanEvent>>;
  encodeCleanBatch(events: readonly CleanEvent[]): Buffer;
  decodeCleanRecord(buf: Buffer): Promise<DecodeResult<DecodedEvent<CleanEvent>[]>>;
  /** NOTE: a sealed record (libs/compactor/overwrite-cipher.ts): the codec never sees a clear id */
  encodeOverwrite(c: OverwriteRecord): Buffer;
  decodeOverwrite(buf: Buffer): Promise<DecodeResult<OverwriteRecord>>;
  /**
   * The decoder of a topic's records (by its name: a DLQ record's `tl-original-topic`), or
   * undefined for a topic that is not one of ours.
   */
  decoderOf(topic: string): ((buf: Buffer) => Promise<DecodeResult<unknown>>) | undefined;
}

/** Thrown (not returned) when the registry cannot be asked: retriable, never the record's fault. */
export class SchemaRegistryUnavailableError extends Error {
  override readonly name = 'SchemaRegistryUnavailableError';
}

export const WIRE_HEADER_BYTES = 5;
const MAGIC_BYTE = 0;

/**
 * The allocation-free check tried before the schema (events/envelope-check.ts): a record it
 * accepts is used as avsc decoded it; the schema (which copies) judges the rest and words the
 * error. Overwrite records are rare: the schema only.
 */
const FAST_CHECKS: Partial<Record<RecordKind, (v: unknown) => boolean>> = {
  raw: isValidRawEvent,
  enriched: isValidEnrichedEvent,
  clean: isValidCleanEvent,
};

const ZOD_SCHEMAS: Record<RecordKind, z.ZodType> = {
  raw: rawEventSchema,
  enriched: enrichedEventSchema,
  clean: cleanEventSchema,
  overwrite: overwriteRecordSchema,
};

/**
 * `<topic>-<namespace>.<Name>Batch` (Confluent's TopicRecordNameStrategy) per batch kind: the
 * records of many events share the topic with the v1 records of one, under a subject of their own.
 */
export function batchSubjectsFor(topics: RecordTopics): Record<BatchKind, string> {
  const name = (k: BatchKind) => `${batchSchema(k).namespace}.${batchSchema(k).name}`;
  return { raw: `${topics.raw}-${name('raw')}`, enriched: `${topics.enriched}-${name('enriched')}`, clean: `${topics.clean}-${name('clean')}` };
}

/** `<topic>-value` (Confluent's TopicNameStrategy) per record kind. */
export function subjectsFor(topics: RecordTopics): Record<RecordKind, string> {
  return {
    raw: `${topics.raw}-value`,
    enriched: `${topics.enriched}-value`,
    clean: `${topics.clean}-value`,
    overwrite: `${topics.overwrites}-value`,
  };
}

// NOTE: a cached writer id resolves to either "same schema" (no resolver), a resolver into
// our reader schema, or a permanent reason why records written with it cannot be read.
// A writer is of one of two shapes: one event (the kind's own record) or many (`<Name>Batch`).
type Shape = 'one' | 'many';
type WriterEntry = { kind: 'same'; shape: Shape } | { kind: 'resolve'; shape: Shape; resolver: avro.Resolver } | { kind: 'bad'; error: string };
const MAX_BAD_IDS = 1024;

export function createRecordCodec(opts: RecordCodecOptions): RecordCodec {
  const { registry } = opts;
  const validate = opts.validate ?? true;
  const subjects = subjectsFor(opts.topics);
  const kindOfTopic = new Map<string, RecordKind>([
    [opts.topics.raw, 'raw'],
    [opts.topics.enriched, 'enriched'],
    [opts.topics.clean, 'clean'],
    [opts.topics.overwrites, 'overwrite'],
  ]);
  const ids = new Map<RecordKind, number>();
  const batchIds = new Map<BatchKind, number>();
  const batchSubjects = batchSubjectsFor(opts.topics);
  const writers = new Map<RecordKind, Map<number, WriterEntry>>(RECORD_KINDS.map((k) => [k, new Map()]));
  const pendingWriters = new Map<string, Promise<WriterEntry>>();
  let initPromise: Promise<void> | undefined;
  // NOTE: one scratch buffer per codec; encode is synchronous, so no two encodes share it.
  let scratch = Buffer.allocUnsafe(16 * 1024);

  async function registerOne(kind: RecordKind): Promise<void> {
    const id = await registerBackward(registry, subjects[kind], loadAvroSchema(kind), opts.registryUrl);
    ids.set(kind, id);
    // NOTE: our own schema under its own id decodes without a resolver.
    writers.get(kind)?.set(id, { kind: 'same', shape: 'one' });
  }

  async function registerBatch(kind: BatchKind): Promise<void> {
    const id = await registerBackward(registry, batchSubjects[kind], batchSchema(kind), opts.registryUrl);
    batchIds.set(kind, id);
    writers.get(kind)?.set(id, { kind: 'same', shape: 'many' });
  }

  function idOf(kind: RecordKind): number {
    const id = ids.get(kind);
    if (id === undefined) throw new Error(`record codec: init() has not completed (no schema id for ${kind})`);
    return id;
  }

  function batchIdOf(kind: BatchKind): number {
    const id = batchIds.get(kind);
    if (id === undefined) throw new Error(`record codec: init() has not completed (no schema id for ${kind} batches)`);
    return id;
  }

  function encode(kind: RecordKind, value: unknown): Buffer {
    return encodeWith(kind, idOf(kind), avroType(kind), value);
  }

  function encodeBatch(kind: BatchKind, events: readonly unknown[]): Buffer {
    return encodeWith(kind, batchIdOf(kind), batchAvroType(kind), { events });
  }

  function encodeWith(kind: RecordKind, id: number, type: avro.Type, value: unknown): Buffer {
    let end: number;
    try {
      end = type.encode(value, scratch, WIRE_HEADER_BYTES);
      if (end < 0) {
        // NOTE: avsc returns -(bytes missing); grow once to fit and keep the larger buffer.
        scratch = Buffer.allocUnsafe(Math.max(scratch.length * 2, scratch.length - end));
        end = type.encode(value, scratch, WIRE_HEADER_BYTES);
      }
    } catch (err) {
      throw new Error(`cannot encode ${kind} record: ${invalidPaths(type, value) || errorText(err)}`);
    }
    const out = Buffer.allocUnsafe(end);
    out[0] = MAGIC_BYTE;
    out.writeInt32BE(id, 1);
    scratch.copy(out, WIRE_HEADER_BYTES, WIRE_HEADER_BYTES, end);
    return out;
  }

  async function writerEntry(kind: RecordKind, id: number): Promise<WriterEntry> {
    const key = `${kind}:${id}`;
    const pending = pendingWriters.get(key);
    if (pending) return pending;
    const p = resolveWriter(kind, id).finally(() => pendingWriters.delete(key));
    pendingWriters.set(key, p);
    return p;
  }

  async function resolveWriter(kind: RecordKind, id: number): Promise<WriterEntry> {
    const cache = writers.get(kind);
    let writer: unknown;
    try {
      writer = await registry.getSchema(id);
    } catch (err) {
      if (httpStatus(err) !== 404) {
        throw new SchemaRegistryUnavailableError(`schema registry: cannot fetch schema id ${id}: ${errorText(err)}`);
      }
      return remember(cache, id, { kind: 'bad', error: `unknown schema id ${id}` });
    }
    let entry: WriterEntry;
    const one = avroType(kind);
    const many = isBatchKind(kind) ? batchAvroType(kind) : undefined;
    const shape: Shape | undefined = !(writer instanceof avro.Type) ? undefined : writer.name === one.name ? 'one' : many && writer.name === many.name ? 'many' : undefined;
    const reader = shape === 'many' && many ? many : one;
    if (!(writer instanceof avro.Type)) {
      entry = { kind: 'bad', error: `schema id ${id} is not an Avro schema` };
    } else if (shape === undefined) {
      // NOTE: e.g. a clean event on the raw topic; avsc would refuse too, less readably.
      entry = { kind: 'bad', error: `schema id ${id} is ${writer.name ?? 'unnamed'}, expected ${one.name ?? kind}${many ? ` or ${many.name}` : ''}` };
    } else if (writer.equals(reader)) {
      entry = { kind: 'same', shape };
    } else {
      try {
        entry = { kind: 'resolve', shape, resolver: reader.createResolver(writer) };
      } catch (err) {
        entry = { kind: 'bad', error: `schema id ${id} cannot be read as ${reader.name ?? kind}: ${errorText(err)}` };
      }
    }
    return remember(cache, id, entry);
  }

  /** the wire header's schema id and its writer, or why the record cannot be read */
  async function readHeader(kind: RecordKind, buf: Buffer): Promise<{ ok: true; id: number; entry: Exclude<WriterEntry, { kind: 'bad' }> } | { ok: false; error: string }> {
    if (!Buffer.isBuffer(buf)) return { ok: false, error: 'not a buffer' };
    if (buf.length < WIRE_HEADER_BYTES) return { ok: false, error: `truncated: ${buf.length} bytes, no wire header` };
    if (buf[0] !== MAGIC_BYTE) return { ok: false, error: `unknown magic byte ${buf[0] ?? -1}` };
    const id = buf.readInt32BE(1);
    const entry = writers.get(kind)?.get(id) ?? (await writerEntry(kind, id));
    if (entry.kind === 'bad') return { ok: false, error: entry.error };
    return { ok: true, id, entry };
  }

  function body(kind: RecordKind, buf: Buffer, id: number, entry: Exclude<WriterEntry, { kind: 'bad' }>): { ok: true; value: unknown } | { ok: false; error: string } {
    const type = entry.shape === 'many' && isBatchKind(kind) ? batchAvroType(kind) : avroType(kind);
    try {
      return { ok: true, value: type.fromBuffer(buf.subarray(WIRE_HEADER_BYTES), entry.kind === 'resolve' ? entry.resolver : undefined) };
    } catch (err) {
      return { ok: false, error: `malformed Avro body (schema id ${id}): ${errorText(err)}` };
    }
  }

  function check<T>(kind: RecordKind, value: unknown): { ok: true; value: T } | { ok: false; error: string } {
    if (!validate || FAST_CHECKS[kind]?.(value) === true) return { ok: true, value: value as T };
    const parsed = ZOD_SCHEMAS[kind].safeParse(value);
    if (parsed.success) return { ok: true, value: parsed.data as T };
    const first = parsed.error.issues[0];
    return { ok: false, error: `invalid ${kind} record: ${first ? `${first.path.join('.')}: ${first.message}` : 'rejected'}` };
  }

  async function decode<T>(kind: RecordKind, buf: Buffer): Promise<DecodeResult<T>> {
    const head = await readHeader(kind, buf);
    if (!head.ok) return head;
    if (head.entry.shape === 'many') return { ok: false, error: `schema id ${head.id} is a record of many events; read it with decode${kind[0]?.toUpperCase()}${kind.slice(1)}Record` };
    const read = body(kind, buf, head.id, head.entry);
    if (!read.ok) return read;
    const checked = check<T>(kind, read.value);
    return checked.ok ? { ...checked, schemaId: head.id } : checked;
  }

  async function decodeRecord<T>(kind: BatchKind, buf: Buffer): Promise<DecodeResult<DecodedEvent<T>[]>> {
    const head = await readHeader(kind, buf);
    if (!head.ok) return head;
    const read = body(kind, buf, head.id, head.entry);
    if (!read.ok) return read;
    if (head.entry.shape === 'one') {
      // NOTE: a record of one event keeps v1's meaning: if its event is invalid, the record is refused
      const checked = check<T>(kind, read.value);
      return checked.ok ? { ok: true, value: [{ ok: true, value: checked.value, bytes: () => buf }], schemaId: head.id } : checked;
    }
    const events = (read.value as { events: unknown[] }).events;
    const items = events.map((e): DecodedEvent<T> => {
      const checked = check<T>(kind, e);
      // NOTE: a dead letter carries the event as a record of its own (replayable like any v1 record)
      const bytes = () => encode(kind, e);
      return checked.ok ? { ok: true, value: checked.value, bytes } : { ok: false, error: checked.error, bytes };
    });
    return { ok: true, value: items, schemaId: head.id };
  }

  return {
    init() {
      initPromise ??= Promise.all([...RECORD_KINDS.map(registerOne), ...BATCH_KINDS.map(registerBatch)]).then(
        () => undefined,
        (err: unknown) => {
          // NOTE: forget the failure so a caller's retry registers again.
          initPromise = undefined;
          throw err;
        },
      );
      return initPromise;
    },
    schemaIds() {
      return Object.fromEntries(RECORD_KINDS.map((k) => [k, idOf(k)])) as Record<RecordKind, number>;
    },
    subjects: () => subjects,
    batchSchemaIds() {
      return Object.fromEntries(BATCH_KINDS.map((k) => [k, batchIdOf(k)])) as Record<BatchKind, number>;
    },
    batchSubjects: () => batchSubjects,
    encodeRaw: (e) => encode('raw', e),
    decodeRaw: (b) => decode<RawEvent>('raw', b),
    encodeRawBatch: (es) => encodeBatch('raw', es),
    decodeRawRecord: (b) => decodeRecord<RawEvent>('raw', b),
    encodeEnriched: (e) => encode('enriched', e),
    decodeEnriched: (b) => decode<EnrichedEvent>('enriched', b),
    encodeEnrichedBatch: (es) => encodeBatch('enriched', es),
    decodeEnrichedRecord: (b) => decodeRecord<EnrichedEvent>('enriched', b),
    encodeClean: (e) => encode('clean', e),
    decodeClean: (b) => decode<CleanEvent>('clean', b),
    encodeCleanBatch: (es) => encodeBatch('clean', es),
    decodeCleanRecord: (b) => decodeRecord<CleanEvent>('clean', b),
    encodeOverwrite: (c) => encode('overwrite', c),
    decodeOverwrite: (b) => decode<OverwriteRecord>('overwrite', b),
    decoderOf(topic) {
      const kind = kindOfTopic.get(topic);
      return kind === undefined ? undefined : (b) => decode<unknown>(kind, b);
    },
  };
}

function isBatchKind(kind: RecordKind): kind is BatchKind {
  return (BATCH_KINDS as readonly string[]).includes(kind);
}

function remember(cache: Map<number, WriterEntry> | undefined, id: number, entry: WriterEntry): WriterEntry {
  if (!cache) return entry;
  // NOTE: bound the cache: garbage records carry random ids, each a permanent miss.
  if (entry.kind === 'bad' && cache.size >= MAX_BAD_IDS) {
    for (const [k, v] of cache) if (v.kind === 'bad') cache.delete(k);
  }
  cache.set(id, entry);
  return entry;
}

function invalidPaths(type: avro.Type, value: unknown): string {
  const paths: string[] = [];
  type.isValid(value, { errorHook: (path) => paths.push(path.join('.') || '(root)') });
  return paths.length ? `invalid field(s) ${paths.slice(0, 5).join(', ')}` : '';
}
