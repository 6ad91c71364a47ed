import { describe, expect, it } from 'vitest';
import { toDeadLetterRow } from './dead-letters.js';

describe('toDeadLetterRow', () => {
  it.each([
    { name: 'object payload as JSON', input: { payload: { a: 1 } }, want: { payload: '{"a":1}', error: null } },
    { name: 'string payload verbatim', input: { payload: 'not json' }, want: { payload: 'not json' } },
    { name: 'buffer payload as utf8', input: { payload: Buffer.from('{"x"') }, want: { payload: '{"x"' } },
    { name: 'error message', input: { payload: 1, error: new TypeError('bad') }, want: { error: 'TypeError: bad' } },
  ])('$name', ({ input, want }) => {
    const row = toDeadLetterRow({ tenant_id: 't', stage: 'sink', reason: 'r', ...input }, 99);
    expect(row).toMatchObject({ tenant_id: 't', stage: 'sink', reason: 'r', received_at: 99, event_id: null, ...want });
  });
});
