// Unit tests of the record codec without a registry: avsc round trips of every record kind,
// the wire header, and every way a record can be undecodable (returned, never thrown).
import avro from 'avsc';
import { beforeEach, describe, expect, it } from 'vitest';
import { rawEventSchema } from '../events/envelope.js';
import { avroType, batchAvroType, buildAvroType, loadAvroSchema, RECORD_KINDS, type AvroRecordSchema, type RecordKind } from './avro-schemas.js';
import {
  createRecordCodec,
  SchemaRegistryUnavailableError,
  type RecordCodec,
  type RegistryClient,
} from './record-codec.js';
import * as fx from '../../test/support/record-fixtures.js';

/**
 * A decoded value as plain objects. NOTE: a valid record is handed on as avsc decoded it (its
 * records are instances of avsc's generated classes, without methods: omitRecordMethods), so
 * toStrictEqual, which compares classes, sees it through structuredClone; keys, values and
 * undefined-valued keys are compared as before.
 */
const plain = <T>(v: T): T => structuredClone(v);

const FIXTURES: Record<RecordKind, [string, unknown][]> = {
  raw: [
    ['full', fx.rawFull],
    ['minimal', fx.rawMinimal],
  ],
  enriched: [
    ['full', fx.enrichedFull],
    ['null parts', fx.enrichedNullParts],
    ['minimal', fx.enrichedMinimal],
  ],
  clean: [
    ['full', fx.cleanFull],
    ['null parts', fx.cleanNullParts],
    ['minimal', fx.cleanMinimal],
  ],
  overwrite: [
    ['full', fx.overwriteFull],
    ['empty set', fx.overwriteEmptySet],
    ['sealed', fx.overwriteSealed],
  ],
};
const CASES = RECORD_KINDS.flatMap((k) => FIXTURES[k].map(([name, v]) => [k, name, v] as const));

const TOPICS = { raw: 'raw.v1', enriched: 'enriched.v1', clean: 'clean.v1', overwrites: 'overwrites.v1', dlq: 'dlq.v1' };

type SchemaResult = Awaited<ReturnType<RegistryClient['getSchema']>>;

/** An in-memory stand-in for the registry client: global ids, same schema → same id. */
function fakeRegistry() {
  const byId = new Map<number, avro.Type>();
  const idByText = new Map<string, number>();
  const registrations: string[] = [];
  let failGets: number | undefined;
  const registry: RegistryClient = {
    register: async (schema: unknown, opts?: { subject?: string }) => {
      const text = (schema as { schema: string }).schema;
      registrations.push(opts?.subject ?? '?');
      let id = idByText.get(text);
      if (id === undefined) {
        id = idByText.size + 1;
        idByText.set(text, id);
        byId.set(id, avro.Type.forSchema(JSON.parse(text) as avro.Schema));
      }
      return { id };
    },
    getSchema: async (id: number) => {
      if (failGets !== undefined) throw Object.assign(new Error(`status ${failGets}`), { status: failGets });
      const t = byId.get(id);
      if (!t) throw Object.assign(new Error('Schema not found'), { status: 404 });
      return t as unknown as SchemaResult;
    },
  };
  return {
    registry,
    registrations,
    /** Registers a schema as another producer would (e.g. an evolved version). */
    add: async (schema: AvroRecordSchema) => (await registry.register({ schema: JSON.stringify(schema) } as never, { subject: 'x' })).id,
    failGets: (status: number | undefined) => {
      failGets = status;
    },
  };
}

function encodeWith(codec: RecordCodec, kind: RecordKind, v: unknown): Buffer {
  switch (kind) {
    case 'raw': return codec.encodeRaw(v as typeof fx.rawFull);
    case 'enriched': return codec.encodeEnriched(v as typeof fx.enrichedFull);
    case 'clean': return codec.encodeClean(v as typeof fx.cleanFull);
    case 'overwrite': return codec.encodeOverwrite(v as typeof fx.overwriteFull);
  }
}
function decodeWith(codec: RecordCodec, kind: RecordKind, b: Buffer) {
  switch (kind) {
    case 'raw': return codec.decodeRaw(b);
    case 'enriched': return codec.decodeEnriched(b);
    case 'clean': return codec.decodeClean(b);
    case 'overwrite': return codec.decodeOverwrite(b);
  }
}

describe('avsc Types', () => {
  it.each(CASES)('%s (%s) round-trips and deep-equals the input', (kind, _name, value) => {
    const type = avroType(kind);
    expect(type.isValid(value)).toBe(true);
    expect(type.fromBuffer(type.toBuffer(value))).toEqual(value);
  });

  it('every nullable field of the full fixtures is set (so the null branch is not all we test)', () => {
    const nulls = (v: unknown, p: string): string[] =>
      v === null ? [p] : typeof v === 'object' && !Buffer.isBuffer(v) && !Array.isArray(v)
        ? Object.entries(v as object).flatMap(([k, x]) => nulls(x, `${p}.${k}`)) : [];
    // NOTE: element.href and overwrite set-values to null are the fixtures' deliberate nulls.
    expect(nulls(fx.cleanFull, '$')).toEqual(['$.element.href']);
  });
});

describe('record codec', () => {
  let reg: ReturnType<typeof fakeRegistry>;
  let codec: RecordCodec;
  beforeEach(async () => {
    reg = fakeRegistry();
    codec = createRecordCodec({ registry: reg.registry, topics: TOPICS });
    await codec.init();
  });

  it('registers one schema per topic under <topic>-value and one per batch kind under <topic>-<batch record name>, once however often init is called', async () => {
    await Promise.all([codec.init(), codec.init()]);
    expect(reg.registrations.sort()).toEqual([
      'clean.v1-dev.tracklane.v1.CleanEventBatch',
      'clean.v1-value',
      'enriched.v1-dev.tracklane.v1.EnrichedEventBatch',
      'enriched.v1-value',
      'overwrites.v1-value',
      'raw.v1-dev.tracklane.v1.RawEventBatch',
      'raw.v1-value',
    ]);
    expect(new Set([...Object.values(codec.schemaIds()), ...Object.values(codec.batchSchemaIds())]).size).toBe(7);
    expect(codec.batchSubjects()).toEqual({
      raw: 'raw.v1-dev.tracklane.v1.RawEventBatch',
      enriched: 'enriched.v1-dev.tracklane.v1.EnrichedEventBatch',
      clean: 'clean.v1-dev.tracklane.v1.CleanEventBatch',
    });
  });

  describe('records of many events', () => {
    const withHeader = (id: number, body: Buffer) => {
      const h = Buffer.alloc(5);
      h.writeInt32BE(id, 1);
      return Buffer.concat([h, body]);
    };

    it('decode*Record(encode*Batch(xs)) gives every event in order, each also readable as a record of its own', async () => {
      const events = [fx.cleanFull, fx.cleanNullParts, fx.cleanMinimal];
      const buf = codec.encodeCleanBatch(events);
      expect(buf.readInt32BE(1)).toBe(codec.batchSchemaIds().clean);
      const res = await codec.decodeCleanRecord(buf);
      if (!res.ok) throw new Error(res.error);
      expect(plain(res.value.map((i) => i.ok && i.value))).toStrictEqual(events);
      for (const [i, item] of res.value.entries()) {
        expect(plain(await codec.decodeClean(item.bytes()))).toStrictEqual({ ok: true, value: events[i], schemaId: codec.schemaIds().clean });
      }
      const raw = await codec.decodeRawRecord(codec.encodeRawBatch([fx.rawFull, fx.rawMinimal]));
      expect(plain(raw.ok && raw.value.map((i) => i.ok && i.value))).toStrictEqual([fx.rawFull, fx.rawMinimal]);
      const enriched = await codec.decodeEnrichedRecord(codec.encodeEnrichedBatch([fx.enrichedMinimal]));
      expect(plain(enriched.ok && enriched.value.map((i) => i.ok && i.value))).toStrictEqual([fx.enrichedMinimal]);
    });

    it('reads a v1 record of one event as one item whose bytes are the record itself', async () => {
      const buf = codec.encodeEnriched(fx.enrichedFull);
      const res = await codec.decodeEnrichedRecord(buf);
      if (!res.ok) throw new Error(res.error);
      expect(res.value).toHaveLength(1);
      expect(plain(res.value[0]?.ok && res.value[0].value)).toStrictEqual(fx.enrichedFull);
      expect(res.value[0]?.bytes()).toBe(buf);
    });

    it('an event zod rejects fails alone; its neighbours are read and its bytes carry it alone', async () => {
      const bad = { ...fx.cleanFull, event_id: 'bad-1', type: 'teleport' };
      const body = batchAvroType('clean').toBuffer({ events: [fx.cleanMinimal, bad, fx.cleanFull] });
      const res = await codec.decodeCleanRecord(withHeader(codec.batchSchemaIds().clean, body));
      if (!res.ok) throw new Error(res.error);
      expect(res.value.map((i) => i.ok)).toEqual([true, false, true]);
      const failed = res.value[1];
      expect(failed && !failed.ok && failed.error).toMatch(/invalid clean record: type:/);
      const alone = await codec.decodeClean(failed?.bytes() as Buffer);
      expect(!alone.ok && alone.error).toMatch(/invalid clean record: type:/);
      expect(avroType('clean').fromBuffer((failed?.bytes() as Buffer).subarray(5))).toMatchObject({ event_id: 'bad-1' });
    });

    it('a v1 record zod rejects is refused as a whole, as before', async () => {
      const res = await codec.decodeCleanRecord(withHeader(codec.schemaIds().clean, avroType('clean').toBuffer({ ...fx.cleanFull, type: 'teleport' })));
      expect(!res.ok && res.error).toMatch(/invalid clean record: type:/);
    });

    it('an empty record of many is read as no events; a malformed one is refused as a whole', async () => {
      expect(await codec.decodeRawRecord(codec.encodeRawBatch([]))).toStrictEqual({ ok: true, value: [], schemaId: codec.batchSchemaIds().raw });
      const truncated = codec.encodeRawBatch([fx.rawFull, fx.rawFull]);
      const res = await codec.decodeRawRecord(truncated.subarray(0, truncated.length - 40));
      expect(!res.ok && res.error).toMatch(/malformed Avro body/);
    });

    it('the one-event decoders refuse a record of many, naming the decoder that reads it', async () => {
      const res = await codec.decodeRaw(codec.encodeRawBatch([fx.rawFull]));
      expect(!res.ok && res.error).toMatch(/record of many events; read it with decodeRawRecord/);
    });

    it('a record of many of another kind is refused by name', async () => {
      const res = await codec.decodeCleanRecord(codec.encodeRawBatch([fx.rawFull]));
      expect(!res.ok && res.error).toMatch(/is dev\.tracklane\.v1\.RawEventBatch, expected dev\.tracklane\.v1\.CleanEvent or dev\.tracklane\.v1\.CleanEventBatch/);
    });
  });

  it('refuses to encode before init', () => {
    const fresh = createRecordCodec({ registry: reg.registry, topics: TOPICS });
    expect(() => fresh.encodeClean(fx.cleanFull)).toThrow(/init\(\) has not completed/);
  });

  it.each(CASES)('%s (%s): decode(encode(x)) deep-equals x', async (kind, _name, value) => {
    const buf = encodeWith(codec, kind, value);
    expect(buf[0]).toBe(0);
    expect(buf.readInt32BE(1)).toBe(codec.schemaIds()[kind]);
    expect(buf.subarray(5)).toEqual(avroType(kind).toBuffer(value));
    const res = await decodeWith(codec, kind, buf);
    // NOTE: overwrite records go through zod (plain objects, Buffers that structuredClone would turn into Uint8Arrays)
    expect(kind === 'overwrite' ? res : plain(res)).toStrictEqual({ ok: true, value, schemaId: codec.schemaIds()[kind] });
  });

  it('returns plain avsc records when zod validation is off, still deep-equal', async () => {
    const fast = createRecordCodec({ registry: reg.registry, topics: TOPICS, validate: false });
    await fast.init();
    const res = await fast.decodeClean(fast.encodeClean(fx.cleanFull));
    expect(res.ok && res.value).toEqual(fx.cleanFull);
  });

  it('encodes records larger than its scratch buffer', async () => {
    const properties = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`k${i}`, JSON.stringify('ü'.repeat(4000))]));
    const big = { ...fx.cleanFull, properties };
    const buf = codec.encodeClean(big);
    expect(buf.length).toBeGreaterThan(1_600_000);
    expect(await codec.decodeClean(buf)).toMatchObject({ ok: true, value: big });
    expect(await codec.decodeClean(codec.encodeClean(fx.cleanMinimal))).toMatchObject({ ok: true, value: fx.cleanMinimal });
  });

  it('throws on a value that does not fit the schema, naming the field', () => {
    const bad = { ...fx.rawFull, received_at: 'yesterday' } as unknown as typeof fx.rawFull;
    expect(() => codec.encodeRaw(bad)).toThrow(/received_at/);
  });

  describe('undecodable records are returned as ok:false, never thrown', () => {
    const evolvedClean = (): AvroRecordSchema => {
      const s = structuredClone(loadAvroSchema('clean'));
      s.fields.push({ name: 'consent', type: ['null', 'string'], default: null });
      return s;
    };
    const cases: [string, () => Promise<Buffer>, RegExp][] = [
      ['empty', async () => Buffer.alloc(0), /truncated/],
      ['shorter than the header', async () => Buffer.from([0, 0, 1]), /truncated/],
      ['wrong magic byte', async () => Buffer.from('{"event_id":"x"}'), /magic byte 123/],
      ['unknown schema id', async () => Buffer.from([0, 0, 0, 0x30, 0x39, 1, 2, 3]), /unknown schema id 12345/],
      ['truncated body', async () => codec.encodeClean(fx.cleanFull).subarray(0, 200), /malformed Avro body/],
      ['garbage body', async () => Buffer.concat([codec.encodeClean(fx.cleanFull).subarray(0, 5), Buffer.alloc(64, 0xff)]), /malformed Avro body/],
      ['trailing bytes', async () => Buffer.concat([codec.encodeClean(fx.cleanFull), Buffer.from([1])]), /malformed Avro body/],
      ['another topic\'s schema', async () => codec.encodeOverwrite(fx.overwriteFull), /is dev\.tracklane\.v1\.OverwriteCommand, expected dev\.tracklane\.v1\.CleanEvent/],
      ['incompatible writer of the same name', async () => {
        const s = structuredClone(loadAvroSchema('clean'));
        s.fields = s.fields.filter((f) => f.name !== 'key_version');
        const id = await reg.add(s);
        const { key_version: _drop, ...rest } = fx.cleanFull;
        const body = buildAvroType(s).toBuffer(rest);
        const h = Buffer.alloc(5);
        h.writeInt32BE(id, 1);
        return Buffer.concat([h, body]);
      }, /cannot be read as dev\.tracklane\.v1\.CleanEvent/],
      ['a value zod rejects', async () => {
        const raw = { ...fx.cleanFull, type: 'teleport' };
        const h = Buffer.alloc(5);
        h.writeInt32BE(codec.schemaIds().clean, 1);
        return Buffer.concat([h, avroType('clean').toBuffer(raw)]);
      }, /invalid clean record: type:/],
    ];
    it.each(cases)('%s', async (_name, make, reason) => {
      const res = await codec.decodeClean(await make());
      expect(res.ok).toBe(false);
      expect(!res.ok && res.error).toMatch(reason);
    });

    it('reads records of an evolved writer (new optional field) with the current reader', async () => {
      const id = await reg.add(evolvedClean());
      const body = buildAvroType(evolvedClean()).toBuffer({ ...fx.cleanFull, consent: 'granted' });
      const h = Buffer.alloc(5);
      h.writeInt32BE(id, 1);
      expect(plain(await codec.decodeClean(Buffer.concat([h, body])))).toStrictEqual({ ok: true, value: fx.cleanFull, schemaId: id });
    });
  });

  it('throws a retriable error when the registry cannot be asked, and recovers', async () => {
    const other = createRecordCodec({ registry: reg.registry, topics: TOPICS });
    const buf = codec.encodeRaw(fx.rawFull);
    reg.failGets(503);
    await expect(other.decodeRaw(buf)).rejects.toBeInstanceOf(SchemaRegistryUnavailableError);
    reg.failGets(undefined);
    expect(await other.decodeRaw(buf)).toMatchObject({ ok: true, value: fx.rawFull });
  });

  it('zod and the codec agree on what a raw event is', async () => {
    const res = await codec.decodeRaw(codec.encodeRaw(fx.rawFull));
    expect(res.ok && rawEventSchema.parse(res.value)).toStrictEqual(fx.rawFull);
  });
});
