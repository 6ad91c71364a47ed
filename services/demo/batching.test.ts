// Cutting drafts into /v1/batch payloads (message and byte limits, each batch's first time) and
// choosing the batch at which the second tenant switches anonymization on.
import { describe, expect, it } from 'vitest';
import { MAX_BATCH_BYTES, MAX_BATCH_MESSAGES, chooseSwitchIndex, chunkIntoBatches } from './batching.js';
import type { TrafficBatch } from './segment-types.js';
import type { Draft } from './session-messages.js';
import { demoTrack } from '../../test/support/demo-messages.js';

function draft(seq: number, padBytes = 0): Draft {
  const message = demoTrack({ messageId: `m-${seq}`, anonymousId: 'anon', timestamp: new Date(seq * 1000).toISOString(), event: 'Padded', properties: { pad: 'x'.repeat(padBytes) } });
  return { ms: 1_000 + seq, seq, message };
}

function drafts(n: number, padBytes = 0): Draft[] {
  return Array.from({ length: n }, (_, i) => draft(i, padBytes));
}

function batch(tenant: string, size: number): TrafficBatch {
  return { tenant, messages: drafts(size).map((d) => d.message) };
}

describe('chunkIntoBatches', () => {
  it.each([
    { name: 'nothing', input: [], sizes: [] },
    { name: 'one message', input: drafts(1), sizes: [1] },
    { name: 'exactly the message limit', input: drafts(MAX_BATCH_MESSAGES), sizes: [MAX_BATCH_MESSAGES] },
    { name: 'past the message limit', input: drafts(250), sizes: [100, 100, 50] },
    // 200 kB each: two fit under 500 kB with the envelope, a third does not
    { name: 'past the byte limit', input: drafts(5, 200_000), sizes: [2, 2, 1] },
    { name: 'a message larger than the byte limit', input: drafts(2, MAX_BATCH_BYTES), sizes: [1, 1] },
  ])('$name → batches of $sizes', ({ input, sizes }) => {
    const out = chunkIntoBatches('t', input);
    expect(out.map((c) => c.batch.messages.length)).toEqual(sizes);
    expect(out.flatMap((c) => c.batch.messages)).toEqual(input.map((d) => d.message));
    let next = 0;
    for (const c of out) {
      expect(c.batch.tenant).toBe('t');
      expect(c.firstMs).toBe(input[next]?.ms);
      next += c.batch.messages.length;
    }
  });

  it('keeps every batch of several messages within the byte limit', () => {
    for (const c of chunkIntoBatches('t', drafts(40, 30_000))) {
      const body = JSON.stringify({ batch: c.batch.messages, sentAt: new Date(0).toISOString() });
      expect(Buffer.byteLength(body)).toBeLessThanOrEqual(MAX_BATCH_BYTES);
    }
  });
});

describe('chooseSwitchIndex', () => {
  it.each([
    { name: 'no switching tenant', batches: [batch('a', 10), batch('b', 10)], tenant: undefined, index: 2 },
    { name: 'a tenant without batches', batches: [batch('a', 10)], tenant: 'b', index: 1 },
    { name: "the tenant's only batch", batches: [batch('a', 10), batch('b', 10)], tenant: 'b', index: 2 },
    { name: 'interleaved, half sent', batches: [batch('a', 10), batch('b', 10), batch('a', 10), batch('b', 10)], tenant: 'b', index: 3 },
    { name: 'odd total, first batch past half', batches: [batch('b', 1), batch('b', 1), batch('b', 1)], tenant: 'b', index: 2 },
    { name: 'a large first batch', batches: [batch('b', 30), batch('b', 5), batch('b', 5)], tenant: 'b', index: 1 },
  ])('$name → $index', ({ batches, tenant, index }) => {
    expect(chooseSwitchIndex(batches, tenant)).toBe(index);
  });
});
