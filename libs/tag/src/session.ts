// Sessions: one starts with the first activity, ends after `timeoutMs` without activity or
// when the page is hidden for good (pagehide). The state lives in first-party storage, so
// the tabs and pages of one site share a session. Pure logic: clock, timers and storage are
// injected.
//
// NOTE: a session ended by a page hide resumes (same id, no new session_start) when activity
// comes back within the timeout: a multi-page site hides a page on every navigation. Such a
// session can have more than one session_end; the last one counts.

import type { KeyValueStore } from './storage.js';

export type SessionEndReason = 'timeout' | 'page_hide';

export interface SessionDeps {
  store: KeyValueStore;
  timeoutMs: number;
  now(): number;
  newId(): string;
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
  onStart(sessionId: string, at: number): void;
  onEnd(sessionId: string, at: number, reason: SessionEndReason): void;
}

export interface Session {
  /** Records activity now; starts a session (after ending an expired one) when needed. Returns its id. */
  touch(): string;
  /** The page is going away: ends the live session (sending is up to the caller). */
  hide(): void;
  /** Stops the inactivity timer (opt-out). */
  stop(): void;
}

interface State {
  id: string;
  /** last activity, ms */
  last: number;
  ended: boolean;
}

const KEY = 'session';

export function createSession(deps: SessionDeps): Session {
  let timer: unknown = null;

  function read(): State | null {
    const raw = deps.store.get(KEY);
    if (!raw) return null;
    try {
      const s = JSON.parse(raw) as Partial<State>;
      return typeof s.id === 'string' && typeof s.last === 'number' ? { id: s.id, last: s.last, ended: s.ended === true } : null;
    } catch {
      return null;
    }
  }
  const write = (s: State) => deps.store.set(KEY, JSON.stringify(s));

  /** Ends the stored session if it expired and nobody ended it yet (another tab may have). */
  function endIfExpired(s: State | null, now: number): State | null {
    if (!s || now - s.last < deps.timeoutMs) return s;
    if (!s.ended) {
      write({ ...s, ended: true });
      // NOTE: the end is stamped at the last activity, so session length is not inflated by the timeout.
      deps.onEnd(s.id, s.last, 'timeout');
    }
    return null;
  }

  function arm(delay: number) {
    if (timer !== null) return;
    timer = deps.setTimer(check, Math.max(delay, 0));
  }

  /** Timer: the stored state is re-read; activity in another tab postpones the end. */
  function check() {
    timer = null;
    const now = deps.now();
    const s = endIfExpired(read(), now);
    if (s && !s.ended) arm(s.last + deps.timeoutMs - now);
  }

  return {
    touch() {
      const now = deps.now();
      const live = endIfExpired(read(), now);
      const s: State = live ? { id: live.id, last: now, ended: false } : { id: deps.newId(), last: now, ended: false };
      write(s);
      if (!live) deps.onStart(s.id, now);
      arm(deps.timeoutMs);
      return s.id;
    },
    hide() {
      const now = deps.now();
      const s = endIfExpired(read(), now);
      if (s && !s.ended) {
        write({ ...s, ended: true });
        deps.onEnd(s.id, now, 'page_hide');
      }
    },
    stop() {
      if (timer !== null) deps.clearTimer(timer);
      timer = null;
    },
  };
}
