import { EventEmitter } from 'node:events';
import type { Kafka, Message, Producer, ProducerRecord } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { connectProducer, lostProducerSession, sendInChunks } from './outputs.js';

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

/** KafkaJS's error for a lost idempotent session, as producer.send rejects with it (wrapped). */
function lostSession(type = 'OUT_OF_ORDER_SEQUENCE_NUMBER'): Error {
  const cause = Object.assign(new Error('The broker received an out of order sequence number'), { name: 'KafkaJSProtocolError', type, retriable: false });
  return Object.assign(new Error(cause.message), { name: 'KafkaJSNonRetriableError', cause });
}

/** A Kafka whose producers record their life; `failWith(n)` makes producer n's sends reject. */
function fakeKafka() {
  const made: { id: number; connected: boolean; sends: number; emitter: EventEmitter; failure?: Error }[] = [];
  const kafka = {
    producer: () => {
      const state = { id: made.length + 1, connected: false, sends: 0, emitter: new EventEmitter() } as (typeof made)[number];
      made.push(state);
      return {
        events: { CONNECT: 'producer.connect', DISCONNECT: 'producer.disconnect' },
        connect: async () => {
          state.connected = true;
          state.emitter.emit('producer.connect');
        },
        disconnect: async () => {
          state.connected = false;
          state.emitter.emit('producer.disconnect');
        },
        on: (event: string, fn: () => void) => {
          state.emitter.on(event, fn);
          return () => state.emitter.off(event, fn);
        },
        send: async () => {
          state.sends++;
          if (state.failure) throw state.failure;
          return [];
        },
      };
    },
  } as unknown as Kafka;
  return { kafka, made };
}

describe('connectProducer', () => {
  it('replaces a producer whose session the broker lost; the failed send still fails, later ones go through the new one', async () => {
    const { kafka, made } = fakeKafka();
    const producer = await connectProducer(kafka);
    await producer.send({ topic: 't', messages: [] });
    made[0]!.failure = lostSession();
    await expect(producer.send({ topic: 't', messages: [] })).rejects.toThrow(/out of order sequence/);
    expect(made).toHaveLength(2);
    expect(made[0]!.connected).toBe(false);
    expect(made[1]!.connected).toBe(true);
    await producer.send({ topic: 't', messages: [] });
    expect([made[0]!.sends, made[1]!.sends]).toEqual([2, 1]);
  });

  it('replaces once for sends failing together, and not at all for other errors', async () => {
    const { kafka, made } = fakeKafka();
    const producer = await connectProducer(kafka);
    made[0]!.failure = Object.assign(new Error('Connection error'), { name: 'KafkaJSConnectionError', retriable: true });
    await expect(producer.send({ topic: 't', messages: [] })).rejects.toThrow('Connection error');
    expect(made).toHaveLength(1);
    made[0]!.failure = lostSession('UNKNOWN_PRODUCER_ID');
    const sends = [1, 2, 3].map(() => producer.send({ topic: 't', messages: [] }));
    for (const s of sends) await expect(s).rejects.toThrow();
    expect(made).toHaveLength(2);
  });

  it('moves event listeners to the new producer; the old one\'s disconnect never reaches them', async () => {
    const { kafka, made } = fakeKafka();
    const producer = await connectProducer(kafka);
    const seen: string[] = [];
    producer.on(producer.events.CONNECT, () => seen.push('connect'));
    producer.on(producer.events.DISCONNECT, () => seen.push('disconnect'));
    made[0]!.failure = lostSession();
    await expect(producer.send({ topic: 't', messages: [] })).rejects.toThrow();
    expect(made[0]!.connected).toBe(false);
    expect(seen).toEqual([]);
    await producer.disconnect();
    expect(seen).toEqual(['disconnect']);
    expect(made[1]!.connected).toBe(false);
  });

  it('keeps the old producer (and its listeners) when the new one cannot connect, and tries again on the next loss', async () => {
    const { kafka, made } = fakeKafka();
    const producer = await connectProducer(kafka);
    const seen: string[] = [];
    producer.on(producer.events.DISCONNECT, () => seen.push('disconnect'));
    made[0]!.failure = lostSession();
    const realProducer = kafka.producer.bind(kafka);
    let refuse = true;
    (kafka as { producer: unknown }).producer = () => {
      const p = realProducer();
      const connect = p.connect;
      p.connect = async () => {
        if (refuse) throw new Error('Connection error: broker away');
        return connect();
      };
      return p;
    };
    await expect(producer.send({ topic: 't', messages: [] })).rejects.toThrow();
    expect(made).toHaveLength(2);
    expect(made[0]!.connected).toBe(true);
    expect(seen).toEqual([]);
    refuse = false;
    await expect(producer.send({ topic: 't', messages: [] })).rejects.toThrow();
    expect(made).toHaveLength(3);
    await producer.send({ topic: 't', messages: [] });
    expect(made[2]!.sends).toBe(1);
    expect(seen).toEqual([]);
  });

  it('recognises a lost session in the error or any error it wraps', () => {
    expect(lostProducerSession(lostSession('INVALID_PRODUCER_EPOCH'))).toBe(true);
    expect(lostProducerSession(Object.assign(new Error('x'), { type: 'NOT_LEADER_FOR_PARTITION' }))).toBe(false);
    expect(lostProducerSession(null)).toBe(false);
  });
});
