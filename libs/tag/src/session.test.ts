import { beforeEach, describe, expect, it } from 'vitest';
import { fakeClock, type FakeClock } from './fake-clock.js';
import { createSession, type Session } from './session.js';
import { memoryStore, type KeyValueStore } from './storage.js';

const TIMEOUT = 30 * 60_000;

let clock: FakeClock;
let store: KeyValueStore;
let log: string[];
let ids: number;

function session(timeoutMs = TIMEOUT): Session {
  return createSession({
    store,
    timeoutMs,
    now: clock.now,
    newId: () => `s${++ids}`,
    setTimer: clock.setTimer,
    clearTimer: clock.clearTimer,
    onStart: (id, at) => log.push(`start ${id} @${at - start}`),
    onEnd: (id, at, reason) => log.push(`end ${id} @${at - start} ${reason}`),
  });
}
let start: number;

beforeEach(() => {
  clock = fakeClock();
  start = clock.now();
  store = memoryStore();
  log = [];
  ids = 0;
});

describe('session', () => {
  it('starts on the first activity and keeps its id while active', () => {
    const s = session();
    expect(s.touch()).toBe('s1');
    clock.advance(TIMEOUT - 1);
    expect(s.touch()).toBe('s1');
    clock.advance(TIMEOUT - 1);
    expect(s.touch()).toBe('s1');
    expect(log).toEqual(['start s1 @0']);
  });

  it('ends after the inactivity timeout, stamped at the last activity, by timer', () => {
    const s = session(1000);
    s.touch();
    clock.advance(400);
    s.touch();
    clock.advance(999);
    expect(log).toEqual(['start s1 @0']);
    clock.advance(1);
    expect(log).toEqual(['start s1 @0', 'end s1 @400 timeout']);
    expect(clock.pending()).toBe(0);
    // the next activity starts a new session
    clock.advance(5000);
    expect(s.touch()).toBe('s2');
    expect(log.at(-1)).toBe('start s2 @6400');
  });

  it('ends an expired session on the next activity when the timer never ran (suspended tab)', () => {
    const s = session(1000);
    s.touch();
    s.stop();
    clock.advance(5000);
    expect(s.touch()).toBe('s2');
    expect(log).toEqual(['start s1 @0', 'end s1 @0 timeout', 'start s2 @5000']);
  });

  it('page hide ends the session; activity within the timeout resumes it (next page of the site)', () => {
    const s = session(1000);
    s.touch();
    clock.advance(300);
    s.hide();
    s.hide();
    expect(log).toEqual(['start s1 @0', 'end s1 @300 page_hide']);
    const next = session(1000); // the next page load, same storage
    clock.advance(200);
    expect(next.touch()).toBe('s1');
    clock.advance(2000);
    expect(log).toEqual(['start s1 @0', 'end s1 @300 page_hide', 'end s1 @500 timeout']);
  });

  it('activity in another tab postpones this tab’s timer', () => {
    const a = session(1000);
    const b = session(1000);
    a.touch();
    clock.advance(800);
    b.touch();
    clock.advance(500); // a's timer fires at 1000: b was active at 800
    expect(log).toEqual(['start s1 @0']);
    clock.advance(500);
    expect(log).toEqual(['start s1 @0', 'end s1 @800 timeout']);
  });

  it('survives garbage in storage', () => {
    store.set('session', '{not json');
    expect(session().touch()).toBe('s1');
  });
});
