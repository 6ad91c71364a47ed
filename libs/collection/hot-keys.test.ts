// The per-(tenant, user) bucket that marks a hot user's events as overflowed (an injected clock).
import { describe, expect, it } from 'vitest';
import type { EventType } from '../events/envelope.js';
import { createHotKeyRule } from './hot-keys.js';

const ev = (user: string | null, type: EventType = 'track', tenant = 'acme', anonymous: string | null = null) => ({ tenant_id: tenant, user_id: user, anonymous_id: anonymous, type });

describe('hot-key rule', () => {
  it('overflows a user above its rate and only that user; refills at the rate', () => {
    let overflows = 0;
    const rule = createHotKeyRule({ eventsPerSecond: 10, burst: 20, onOverflow: () => void overflows++ });
    const hot = Array.from({ length: 30 }, () => rule.overflowed(ev('hot'), 0));
    expect(hot.filter(Boolean)).toHaveLength(10);
    expect(hot.slice(0, 20).some(Boolean)).toBe(false);
    expect(overflows).toBe(10);
    // another user, another tenant's user of the same id: their own buckets
    expect(rule.overflowed(ev('calm'), 0)).toBe(false);
    expect(rule.overflowed(ev('hot', 'track', 'other'), 0)).toBe(false);
    // 100 ms: one token back
    expect(rule.overflowed(ev('hot'), 100)).toBe(false);
    expect(rule.overflowed(ev('hot'), 100)).toBe(true);
  });

  it('keys anonymous users by anonymous id, and never overflows an event without ids', () => {
    const rule = createHotKeyRule({ eventsPerSecond: 1 });
    expect(rule.overflowed(ev(null, 'page', 'acme', 'anon-1'), 0)).toBe(false);
    expect(rule.overflowed(ev(null, 'page', 'acme', 'anon-1'), 0)).toBe(true);
    expect(rule.overflowed(ev(null, 'page', 'acme', null), 0)).toBe(false);
    expect(rule.overflowed(ev(null, 'page', 'acme', null), 0)).toBe(false);
  });

  it.each(['identify', 'group', 'alias'] as const)('never overflows %s (users rows keep one writer per user)', (type) => {
    const rule = createHotKeyRule({ eventsPerSecond: 1 });
    expect(rule.overflowed(ev('u'), 0)).toBe(false);
    expect(rule.overflowed(ev('u'), 0)).toBe(true);
    expect(rule.overflowed(ev('u', type), 0)).toBe(false);
  });

  it('holds at most maxKeys buckets: idle (full) ones go first, then the oldest', () => {
    const rule = createHotKeyRule({ eventsPerSecond: 1, burst: 2, maxKeys: 100 });
    for (let i = 0; i < 100; i++) rule.overflowed(ev(`u${i}`), 0);
    expect(rule.size()).toBe(100);
    // 10 s later every bucket is full again: all of them are dropped to make room
    rule.overflowed(ev('late'), 10_000);
    expect(rule.size()).toBe(1);
    for (let i = 0; i < 200; i++) rule.overflowed(ev(`v${i}`), 10_000);
    expect(rule.size()).toBeLessThanOrEqual(100);
    // the newest user's bucket survived the eviction: its second event within burst is kept, third overflows
    expect(rule.overflowed(ev('v199'), 10_000)).toBe(false);
    expect(rule.overflowed(ev('v199'), 10_000)).toBe(true);
  });
});
