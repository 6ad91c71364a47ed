// Microbenchmark of the record codec on a typical CleanEvent (~60 leaf fields), without a
// registry: `npx tsx bench/record-codec-bench.ts`. Compares our encode/decode with
// the registry client's own encode/decode (its schema cache pre-filled) and JSON.
import { performance } from 'node:perf_hooks';
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import { cleanEventSchema } from '../libs/events/envelope.js';
import { avroType, loadAvroSchema, RECORD_KINDS } from '../libs/kafka/avro-schemas.js';
import { createRecordCodec, type RegistryClient } from '../libs/kafka/record-codec.js';
import { cleanFull } from '../test/support/record-fixtures.js';

const N = Number(process.argv[2] ?? 100_000);

async function measure(label: string, fn: () => unknown | Promise<unknown>): Promise<number> {
  for (let i = 0; i < Math.min(N, 20_000); i++) await fn(); // warm-up
  const t0 = performance.now();
  for (let i = 0; i < N; i++) await fn();
  const us = ((performance.now() - t0) * 1000) / N;
  console.log(`${label.padEnd(52)} ${us.toFixed(2)} µs/record`);
  return us;
}

function measureSync(label: string, fn: () => unknown): number {
  for (let i = 0; i < Math.min(N, 20_000); i++) fn();
  const t0 = performance.now();
  for (let i = 0; i < N; i++) fn();
  const us = ((performance.now() - t0) * 1000) / N;
  console.log(`${label.padEnd(52)} ${us.toFixed(2)} µs/record`);
  return us;
}

async function main(): Promise<void> {
  // NOTE: a fake in-memory registry: ids 1..5, same schemas as the files.
  const fake: RegistryClient = {
    register: async (schema: unknown) => {
      void schema;
      return { id: 0 };
    },
    getSchema: async () => avroType('clean'),
  };
  let next = 1;
  const byId = new Map<number, ReturnType<typeof avroType>>();
  fake.register = async () => {
    const id = next++;
    byId.set(id, avroType(RECORD_KINDS[id - 1] ?? 'clean'));
    return { id };
  };
  fake.getSchema = async (id: number) => {
    const t = byId.get(id);
    if (!t) throw Object.assign(new Error('not found'), { status: 404 });
    return t as unknown as Awaited<ReturnType<RegistryClient['getSchema']>>;
  };
  const topics = { raw: 'r', enriched: 'e', clean: 'c', overwrites: 'o', dlq: 'd' };
  const codec = createRecordCodec({ registry: fake, topics });
  const codecNoZod = createRecordCodec({ registry: fake, topics, validate: false });
  await codec.init();
  await codecNoZod.init();

  const wire = codec.encodeClean(cleanFull);
  console.log(`CleanEvent: ${wire.length} bytes Avro+header, ${JSON.stringify(cleanFull).length} bytes JSON; N=${N}`);

  // The registry client's own path, its cache pre-filled so it never touches the network.
  const client = new SchemaRegistry({ host: 'http://127.0.0.1:1' });
  const cleanId = codec.schemaIds().clean;
  client.cache.setSchema(cleanId, SchemaType.AVRO, avroType('clean') as never);
  const type = avroType('clean');
  const header = Buffer.from([0, 0, 0, 0, cleanId]);

  measureSync('encode: codec (avsc encode into scratch + header)', () => codec.encodeClean(cleanFull));
  measureSync('encode: avsc toBuffer + Buffer.concat(header)', () => Buffer.concat([header, type.toBuffer(cleanFull)]));
  await measure('encode: registry client encode(id, value)', () => client.encode(cleanId, cleanFull));
  measureSync('encode: JSON.stringify → Buffer (baseline)', () => Buffer.from(JSON.stringify(cleanFull)));

  const json = Buffer.from(JSON.stringify(cleanFull));
  await measure('decode: codec, zod-validated (default)', () => codec.decodeClean(wire));
  await measure('decode: codec, validate: false', () => codecNoZod.decodeClean(wire));
  await measure('decode: registry client decode(buf)', () => client.decode(wire));
  const body = wire.subarray(5);
  measureSync('decode: bare avsc fromBuffer', () => type.fromBuffer(body));
  const decoded: unknown = type.fromBuffer(body);
  measureSync('zod cleanEventSchema.safeParse alone', () => cleanEventSchema.safeParse(decoded));
  measureSync('decode: JSON.parse (baseline)', () => JSON.parse(json.toString('utf8')));
  void loadAvroSchema;
}

await main();
