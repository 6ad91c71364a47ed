// The record codec against the real schema registry (SCHEMA_REGISTRY_URL, Apicurio's
// Confluent-compatible API in dev/CI): registration, ids, wire format, evolution, poison.
import { randomUUID } from 'node:crypto';
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildAvroType, loadAvroSchema, RECORD_KINDS, type AvroRecordSchema } from './avro-schemas.js';
import { createRecordCodec, type RecordCodec, type RecordTopics } from './record-codec.js';
import * as fx from '../../test/support/record-fixtures.js';

// NOTE: read here until test/support/services.ts (serviceEndpoints()) lands; then use it.
// A missing registry FAILS this file: a skipped integration test proves nothing.
function registryUrl(): string {
  const url = process.env.SCHEMA_REGISTRY_URL;
  if (!url) {
    throw new Error(
      'SCHEMA_REGISTRY_URL is not set: start the services with `npm run services:up` and export ' +
        'the printed SCHEMA_REGISTRY_URL=… (e.g. http://127.0.0.1:8081/apis/ccompat/v7)',
    );
  }
  return url.replace(/\/+$/, '');
}

async function api(path: string, init?: RequestInit): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${registryUrl()}${path}`, {
    ...init,
    headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as unknown) : null };
}

const newClient = () => new SchemaRegistry({ host: registryUrl() });

// NOTE: every run gets its own topics, so its own subjects: runs never see each other.
const run = `it-${Date.now().toString(36)}-${randomUUID().slice(0, 8)}`;
const topics: RecordTopics = {
  raw: `${run}.raw.v1`,
  enriched: `${run}.enriched.v1`,
  clean: `${run}.clean.v1`,
  overwrites: `${run}.overwrites.v1`,
  dlq: `${run}.dlq.v1`,
};

const header = (id: number) => {
  const h = Buffer.alloc(5);
  h.writeInt32BE(id, 1);
  return h;
};

describe('record codec against the schema registry', () => {
  let codec: RecordCodec;

  beforeAll(async () => {
    const url = registryUrl();
    const ping = await fetch(`${url}/subjects`).catch((err: unknown) => {
      throw new Error(`schema registry at ${url} is not reachable (${String(err)}): run \`npm run services:up\``);
    });
    expect(ping.status, `GET ${url}/subjects`).toBe(200);
    codec = createRecordCodec({ registry: newClient(), topics, registryUrl: url });
    await codec.init();
  });

  it('init registers all five subjects under <topic>-value with BACKWARD compatibility', async () => {
    const { body } = await api('/subjects');
    expect(body).toEqual(expect.arrayContaining(Object.values(codec.subjects())));
    for (const subject of Object.values(codec.subjects())) {
      expect((await api(`/config/${encodeURIComponent(subject)}`)).body, subject).toEqual({ compatibilityLevel: 'BACKWARD' });
      expect((await api(`/subjects/${encodeURIComponent(subject)}/versions`)).body, subject).toEqual([1]);
    }
  });

  it('registering again, even from concurrent fresh replicas, gives the same ids', async () => {
    const replicas = [1, 2, 3].map(() => createRecordCodec({ registry: newClient(), topics }));
    await Promise.all(replicas.map((r) => r.init()));
    for (const r of replicas) expect(r.schemaIds()).toEqual(codec.schemaIds());
  });

  it('concurrent first registrations of fresh subjects agree on ids and end BACKWARD', async () => {
    const fresh: RecordTopics = { ...topics, clean: `${run}-race.clean.v1` };
    const url = registryUrl();
    const replicas = [1, 2, 3, 4].map(() => createRecordCodec({ registry: newClient(), topics: fresh, registryUrl: url }));
    await Promise.all(replicas.map((r) => r.init()));
    expect(new Set(replicas.map((r) => r.schemaIds().clean)).size).toBe(1);
    expect((await api(`/config/${encodeURIComponent(`${fresh.clean}-value`)}`)).body).toEqual({ compatibilityLevel: 'BACKWARD' });
  });

  it('repairs a subject a crashed replica left without a rule (Apicurio reports NONE)', async () => {
    const orphan: RecordTopics = { ...topics, raw: `${run}-orphan.raw.v1` };
    const subject = `${orphan.raw}-value`;
    // NOTE: what a replica that died between registering and setting BACKWARD leaves behind.
    const created = await api(`/subjects/${encodeURIComponent(subject)}/versions`, {
      method: 'POST',
      body: JSON.stringify({ schema: JSON.stringify(loadAvroSchema('raw')) }),
    });
    expect(created.status).toBe(200);
    const noUrl = createRecordCodec({ registry: newClient(), topics: orphan });
    await expect(noUrl.init()).rejects.toThrow(/exists with compatibility NONE/);
    const repairing = createRecordCodec({ registry: newClient(), topics: orphan, registryUrl: registryUrl() });
    await repairing.init();
    expect((await api(`/config/${encodeURIComponent(subject)}`)).body).toEqual({ compatibilityLevel: 'BACKWARD' });
    expect(repairing.schemaIds().raw).toBe(codec.schemaIds().raw);
  });

  it('round-trips every record kind through the wire format, decoded by a fresh replica', async () => {
    const reader = createRecordCodec({ registry: newClient(), topics });
    const cases = [
      [codec.encodeRaw(fx.rawFull), reader.decodeRaw, fx.rawFull],
      [codec.encodeRaw(fx.rawMinimal), reader.decodeRaw, fx.rawMinimal],
      [codec.encodeEnriched(fx.enrichedFull), reader.decodeEnriched, fx.enrichedFull],
      [codec.encodeEnriched(fx.enrichedNullParts), reader.decodeEnriched, fx.enrichedNullParts],
      [codec.encodeClean(fx.cleanFull), reader.decodeClean, fx.cleanFull],
      [codec.encodeClean(fx.cleanMinimal), reader.decodeClean, fx.cleanMinimal],
      [codec.encodeOverwrite(fx.overwriteFull), reader.decodeOverwrite, fx.overwriteFull],
    ] as const;
    // NOTE: decoding never needs init(): the writer schema is fetched by id.
    for (const [buf, decode, expected] of cases) {
      expect(await (decode as (b: Buffer) => Promise<unknown>)(buf)).toMatchObject({ ok: true, value: expected });
    }
  });

  it('writes the same wire format the registry client reads', async () => {
    const client = newClient();
    expect(await client.decode(codec.encodeClean(fx.cleanFull))).toEqual(fx.cleanFull);
    const theirs = await client.encode(codec.schemaIds().clean, fx.cleanFull);
    expect(theirs).toEqual(codec.encodeClean(fx.cleanFull));
  });

  describe('undecodable records come back as ok:false with a reason', () => {
    const cases: [string, () => Buffer, RegExp][] = [
      ['garbage bytes', () => Buffer.from('garbage, not even close to Avro'), /magic byte/],
      ['a wrong magic byte', () => Buffer.concat([Buffer.from([1]), codec.encodeClean(fx.cleanFull).subarray(1)]), /magic byte 1/],
      ['an unknown schema id', () => Buffer.concat([header(2_000_000_000), codec.encodeClean(fx.cleanFull).subarray(5)]), /unknown schema id 2000000000/],
      ['a truncated body', () => codec.encodeClean(fx.cleanFull).subarray(0, 100), /malformed Avro body/],
      ['a record of another topic', () => codec.encodeRaw(fx.rawFull), /RawEvent, expected dev\.tracklane\.v1\.CleanEvent/],
    ];
    it.each(cases)('%s', async (_name, make, reason) => {
      const res = await createRecordCodec({ registry: newClient(), topics }).decodeClean(make());
      expect(res.ok).toBe(false);
      expect(!res.ok && res.error).toMatch(reason);
    });
  });

  it('decodes records written with an evolved schema (new optional field) with the current reader', async () => {
    const v2: AvroRecordSchema = structuredClone(loadAvroSchema('clean'));
    v2.fields.push({ name: 'consent_basis', type: ['null', 'string'], default: null });
    const { id } = await newClient().register(
      { type: SchemaType.AVRO, schema: JSON.stringify(v2) },
      { subject: codec.subjects().clean },
    );
    expect(id).not.toBe(codec.schemaIds().clean);
    const wire = Buffer.concat([header(id), buildAvroType(v2).toBuffer({ ...fx.cleanFull, consent_basis: 'contract' })]);
    const res = await createRecordCodec({ registry: newClient(), topics }).decodeClean(wire);
    // NOTE: structuredClone: the value comes as avsc decoded it, records as its generated classes (the reader's fields only)
    expect(structuredClone(res)).toStrictEqual({ ok: true, value: fx.cleanFull, schemaId: id });
    // NOTE: an old replica restarting after v2 exists still registers (finds) v1, same id.
    const old = createRecordCodec({ registry: newClient(), topics });
    await old.init();
    expect(old.schemaIds()).toEqual(codec.schemaIds());
  });

  it('the registry refuses a non-optional new field (BACKWARD is enforced)', async () => {
    const bad: AvroRecordSchema = structuredClone(loadAvroSchema('clean'));
    bad.fields.push({ name: 'region_code', type: 'string' });
    const res = await api(`/subjects/${encodeURIComponent(codec.subjects().clean)}/versions`, {
      method: 'POST',
      body: JSON.stringify({ schema: JSON.stringify(bad) }),
    });
    expect(res.status).toBe(409);
  });

  it('all four kinds have distinct ids', () => {
    expect(new Set(RECORD_KINDS.map((k) => codec.schemaIds()[k])).size).toBe(4);
  });
});
