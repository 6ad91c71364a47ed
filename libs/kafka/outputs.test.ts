import { Partitioners, type Kafka, type Message, type Producer, type ProducerRecord } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import type { ConsumedRecord } from './stage-worker.js';
import { connectProducer, createTopicOutput, groupByPartition, keyed, messagesOf, OVERFLOW_HEADER, partitionOf, sendInChunks } from './outputs.js';

function recordingProducer(): { producer: Producer; sends: ProducerRecord[] } {
  const sends: ProducerRecord[] = [];
  const producer = { send: async (r: ProducerRecord) => (sends.push(r), []) } as unknown as Producer;
  return { producer, sends };
}

describe('sendInChunks', () => {
  it.each([
    ['everything fits one send', 10, 1_000, 1],
    ['splits at the byte budget', 10, 30_000, 4],
    ['one message larger than the budget still goes, alone', 1, 200_000, 1],
  ])('%s', async (_name, count, size, expectedSends) => {
    const { producer, sends } = recordingProducer();
    const messages: Message[] = Array.from({ length: count }, (_, i) => ({ key: `k${i}`, value: Buffer.alloc(size) }));
    await sendInChunks(producer, 'topic', messages, 100_000);
    expect(sends).toHaveLength(expectedSends);
    expect(sends.flatMap((s) => s.messages)).toEqual(messages);
    for (const s of sends) expect(s).toMatchObject({ topic: 'topic', acks: -1 });
    for (const s of sends.filter((x) => x.messages.length > 1)) {
      expect(s.messages.reduce((n, m) => n + (m.value as Buffer).length, 0)).toBeLessThanOrEqual(100_000);
    }
  });
});

describe('connectProducer', () => {
  it('connects one acks=all producer that is not idempotent, one request in flight per broker', async () => {
    const configs: unknown[] = [];
    let connected = 0;
    const kafka = {
      producer: (config: unknown) => {
        configs.push(config);
        return { connect: async () => void connected++ };
      },
    } as unknown as Kafka;
    await connectProducer(kafka);
    expect(configs).toEqual([expect.objectContaining({ idempotent: false, maxInFlightRequests: 1, allowAutoTopicCreation: false })]);
    expect(connected).toBe(1);
  });
});

describe('overflowed records', () => {
  const record = (headers: Record<string, string>): ConsumedRecord => ({ topic: 'in', partition: 0, offset: '0', key: null, value: null, headers });

  it('keyed: a user key, or a random key (never the user\'s) with the overflow header', () => {
    expect(keyed('acme:u1', false)).toEqual({ key: 'acme:u1' });
    const a = keyed('acme:u1', true);
    const b = keyed('acme:u1', true);
    expect(a.headers).toEqual({ [OVERFLOW_HEADER]: '1' });
    expect(a.key).not.toBe('acme:u1');
    expect(a.key).not.toBe(b.key);
  });

  it('a topic output keeps the header and gives an overflowed record a random key; other records keep the stage key', async () => {
    const { producer, sends } = recordingProducer();
    const out = createTopicOutput<string>({ producer, topic: 'next', encode: (v) => Buffer.from(v), key: (v) => `acme:${v}` });
    await out.write([
      { record: record({ [OVERFLOW_HEADER]: '1', other: 'x' }), value: 'hot' },
      { record: record({}), value: 'calm' },
    ]);
    const [hot, calm] = sends.flatMap((s) => s.messages);
    expect(hot?.headers).toEqual({ [OVERFLOW_HEADER]: '1' });
    expect(hot?.key).not.toBe('acme:hot');
    expect(calm).toEqual({ key: 'acme:calm', value: Buffer.from('calm') });
  });
});

describe('records of many events', () => {
  const record = (headers: Record<string, string>): ConsumedRecord => ({ topic: 'in', partition: 0, offset: '0', key: null, value: null, headers });
  const users = Array.from({ length: 40 }, (_, i) => `acme:u${i}`);

  it('partitionOf is where KafkaJS puts a keyed record (Java-compatible murmur2)', () => {
    const kafkajs = Partitioners.DefaultPartitioner();
    const metadata = Array.from({ length: 6 }, (_, i) => ({ partitionId: i, leader: 0 }));
    for (const key of users) {
      expect(partitionOf(key, 6)).toBe(kafkajs({ topic: 't', partitionMetadata: metadata as never, message: { key, value: null } }));
    }
    expect(new Set(users.map((k) => partitionOf(k, 6))).size).toBeGreaterThan(1);
  });

  it('groups events by partition in order, at most eventsPerRecord each: one user stays on one partition, in order', () => {
    const events = Array.from({ length: 400 }, (_, i) => ({ key: users[i % users.length] as string, seq: i }));
    const groups = groupByPartition(
      events.map((value) => ({ value, overflowed: false })),
      { partitions: 6, eventsPerRecord: 25, key: (e) => e.key },
    );
    expect(groups.flatMap((g) => g.values)).toHaveLength(400);
    for (const g of groups) {
      expect(g.values.length).toBeLessThanOrEqual(25);
      for (const e of g.values) expect(partitionOf(e.key, 6)).toBe(g.partition);
    }
    for (const user of users) {
      const seqs = groups.flatMap((g) => g.values).filter((e) => e.key === user).map((e) => e.seq);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    }
  });

  it('keeps overflowed events in records of their own, spread over partitions', () => {
    const items = Array.from({ length: 300 }, (_, i) => ({ value: { key: 'acme:hot', seq: i }, overflowed: i % 2 === 0 }));
    const groups = groupByPartition(items, { partitions: 6, eventsPerRecord: 500, key: (e) => e.key });
    const hot = groups.filter((g) => g.overflowed);
    expect(hot.flatMap((g) => g.values).every((e) => e.seq % 2 === 0)).toBe(true);
    expect(new Set(hot.map((g) => g.partition)).size).toBeGreaterThan(1);
    expect(groups.filter((g) => !g.overflowed).map((g) => g.partition)).toEqual([partitionOf('acme:hot', 6)]);
  });

  it('splits a record that would not fit the byte limit in halves; marks overflowed records', () => {
    const groups = [
      { partition: 2, overflowed: false, values: Array.from({ length: 8 }, (_, i) => i) },
      { partition: 4, overflowed: true, values: [100] },
    ];
    const messages = messagesOf(groups, (vs) => Buffer.alloc(vs.length * 100, vs[0]), 250);
    expect(messages.map((m) => [m.partition, (m.value as Buffer).length])).toEqual([
      [2, 200],
      [2, 200],
      [2, 200],
      [2, 200],
      [4, 100],
    ]);
    expect(messages.map((m) => m.headers)).toEqual([undefined, undefined, undefined, undefined, { [OVERFLOW_HEADER]: '1' }]);
    expect(messages.every((m) => m.key === null)).toBe(true);
  });

  it('a topic output with many per record sends one record per partition; with eventsPerRecord 1, one keyed record per event', async () => {
    const { producer, sends } = recordingProducer();
    const many = createTopicOutput<string>({
      producer,
      topic: 'next',
      encode: (v) => Buffer.from(v),
      key: (v) => `acme:${v}`,
      many: { partitions: 6, eventsPerRecord: 500, encode: (vs) => Buffer.from(vs.join(',')) },
    });
    const values = users.map((u) => u.slice(5));
    await many.write(values.map((value) => ({ record: record({}), value })));
    const sent = sends.flatMap((s) => s.messages);
    expect(sent.length).toBe(new Set(values.map((v) => partitionOf(`acme:${v}`, 6))).size);
    for (const m of sent) {
      for (const v of String(m.value).split(',')) expect(partitionOf(`acme:${v}`, 6)).toBe(m.partition);
    }
    const { producer: p1, sends: s1 } = recordingProducer();
    const one = createTopicOutput<string>({ producer: p1, topic: 'next', encode: (v) => Buffer.from(v), key: (v) => `acme:${v}`, many: { partitions: 6, eventsPerRecord: 1, encode: () => Buffer.alloc(0) } });
    await one.write([{ record: record({}), value: 'u1' }]);
    expect(s1.flatMap((s) => s.messages)).toEqual([{ key: 'acme:u1', value: Buffer.from('u1') }]);
  });
});
