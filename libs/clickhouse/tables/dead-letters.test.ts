import { describe, expect, it } from 'vitest';
import type { DeadLetter } from '../../events/dead-letter.js';
import { deadLetterPayload, parseDeadLetterPayload, toDeadLetterRow } from './dead-letters.js';

const letter: DeadLetter = { stage: 'enrich', reason: 'unknown tenant', error: null, attempts: 1, tenantId: 't', eventId: 'e1', failedAt: 99, input: { b: 1, a: { d: [2, 1], c: null } } };

describe('dead_letters payload', () => {
  it('is the stage input with sorted keys, whatever order the runner built it in', () => {
    const reordered = { ...letter, input: { a: { c: null, d: [2, 1] }, b: 1 } };
    expect(deadLetterPayload(letter)).toBe('{"input":{"a":{"c":null,"d":[2,1]},"b":1}}');
    expect(deadLetterPayload(reordered)).toBe(deadLetterPayload(letter));
  });

  it('keeps the bytes of an unreadable record, base64', () => {
    const p = deadLetterPayload({ unreadable: Buffer.from('definitely not avro') });
    expect(JSON.parse(p)).toEqual({ unreadable_base64: Buffer.from('definitely not avro').toString('base64') });
    expect(parseDeadLetterPayload(p)).toEqual({ unreadable: Buffer.from('definitely not avro') });
  });

  it.each([
    { name: 'the current input format', payload: '{"input":{"x":"y"}}', want: { input: { x: 'y' } } },
    { name: 'an input that is itself a scalar', payload: '{"input":"text"}', want: { input: 'text' } },
    { name: "the fleet's earlier base64 of the record", payload: '{"topic":"raw","value_base64":"AAE="}', want: { unreadable: Buffer.from([0, 1]) } },
    { name: "the embedded runner's earlier bare event", payload: '{"event_id":"e","input":1}', want: { input: { event_id: 'e', input: 1 } } },
    { name: 'text that is not JSON', payload: '{not json', want: { unreadable: Buffer.from('{not json') } },
  ])('reads $name', ({ payload, want }) => {
    expect(parseDeadLetterPayload(payload)).toEqual(want);
  });

  it('round-trips the input through the row', () => {
    const row = toDeadLetterRow(letter);
    expect(row).toEqual({ tenant_id: 't', received_at: 99, stage: 'enrich', reason: 'unknown tenant', event_id: 'e1', payload: deadLetterPayload(letter), error: null });
    expect(parseDeadLetterPayload(row.payload)).toEqual({ input: letter.input });
  });

  it('names no tenant as the empty tenant id', () => {
    expect(toDeadLetterRow({ ...letter, tenantId: null, eventId: null }).tenant_id).toBe('');
  });
});
