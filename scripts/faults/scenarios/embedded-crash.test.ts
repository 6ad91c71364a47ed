// The embedded-crash scenario's pure parts: the ledger diff and the printed schedule.
import { describe, expect, it } from 'vitest';
import { diffLedger, scheduleOf } from './embedded-crash.js';

describe('diffLedger', () => {
  it.each([
    { name: 'all stored once', acked: ['a', 'b'], stored: [['a', 1], ['b', 1]], lost: [], duplicated: [], extra: 0 },
    { name: 'one lost', acked: ['a', 'b', 'c'], stored: [['a', 1], ['c', 1]], lost: ['b'], duplicated: [], extra: 0 },
    { name: 'stored twice through FINAL', acked: ['a'], stored: [['a', 2]], lost: [], duplicated: ['a'], extra: 0 },
    { name: 'in flight at a kill: stored, never acknowledged (allowed)', acked: ['a'], stored: [['a', 1], ['z', 1]], lost: [], duplicated: [], extra: 1 },
    { name: 'an id acknowledged twice counts once', acked: ['a', 'a'], stored: [], lost: ['a'], duplicated: [], extra: 0 },
  ] as const)('$name', ({ acked, stored, lost, duplicated, extra }) => {
    const d = diffLedger(acked, new Map(stored.map(([id, n]) => [id, n])));
    expect(d).toEqual({ lost, duplicated, storedNotAcknowledged: extra });
  });
});

describe('scheduleOf', () => {
  it('lists every cycle with its kill lead, and the rate', () => {
    const s = scheduleOf({ cycles: 3, upMs: 8_000, measureMs: 2_000, tailMs: 2_000, settleMs: 30_000, verifyMs: 45_000 }, 400);
    expect(s.split('\n').filter((l) => l.startsWith('  cycle '))).toHaveLength(3);
    expect(s).toContain('400 events/s');
    expect(s).toMatch(/cycle 2: .* 250 ms after its 202/);
  });
});
