import type { Kafka, Message, Producer, ProducerRecord } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import type { ConsumedRecord } from './stage-worker.js';
import { connectProducer, createTopicOutput, keyed, OVERFLOW_HEADER, sendInChunks } from './outputs.js';

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
