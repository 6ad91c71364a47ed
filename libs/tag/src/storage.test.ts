import { describe, expect, it } from 'vitest';
import { deferredStore, localStore } from './storage.js';

function fakeStorage(opts: { throwOnAccess?: boolean; quota?: number } = {}): Storage {
  const m = new Map<string, string>();
  return {
    get length() {
      return m.size;
    },
    clear: () => m.clear(),
    key: (i) => [...m.keys()][i] ?? null,
    getItem: (k) => m.get(k) ?? null,
    setItem(k, v) {
      if (opts.quota !== undefined && m.size >= opts.quota) throw new DOMException('full', 'QuotaExceededError');
      m.set(k, v);
    },
    removeItem: (k) => void m.delete(k),
  };
}

describe('localStore', () => {
  it('stores under its prefix', () => {
    const area = fakeStorage();
    const s = localStore('tl_', () => area);
    s.set('aid', 'x');
    expect(area.getItem('tl_aid')).toBe('x');
    expect(s.get('aid')).toBe('x');
    s.remove('aid');
    expect(s.get('aid')).toBeNull();
  });

  it('falls back to memory when storage cannot be reached (sandboxed frame, blocked site data)', () => {
    const s = localStore('tl_', () => {
      throw new DOMException('denied', 'SecurityError');
    });
    s.set('aid', 'x');
    expect(s.get('aid')).toBe('x');
  });

  it('keeps a value in memory when a write hits the quota', () => {
    const area = fakeStorage({ quota: 1 });
    const s = localStore('tl_', () => area);
    s.set('a', '1');
    s.set('b', '2');
    expect([s.get('a'), s.get('b')]).toEqual(['1', '2']);
  });
});

describe('deferredStore', () => {
  it('keeps everything in memory, never touching the browser storage, until persist()', () => {
    const area = fakeStorage();
    let opened = 0;
    const s = deferredStore(() => {
      opened++;
      return localStore('tl_', () => area);
    });
    s.set('aid', 'a1');
    s.set('session', 's1');
    s.remove('session');
    expect(s.get('aid')).toBe('a1');
    expect([opened, area.length]).toEqual([0, 0]);

    s.persist();
    s.persist();
    expect(opened).toBe(1);
    expect(area.getItem('tl_aid')).toBe('a1');
    expect(area.length).toBe(1);
    s.set('uid', 'u1');
    expect(area.getItem('tl_uid')).toBe('u1');
    s.remove('aid');
    expect([s.get('aid'), area.getItem('tl_aid')]).toEqual([null, null]);
  });

  it('what memory held wins over what the browser had stored', () => {
    const area = fakeStorage();
    area.setItem('tl_aid', 'old');
    const s = deferredStore(() => localStore('tl_', () => area));
    expect(s.get('aid')).toBeNull(); // nothing stored is read before persist()
    s.set('aid', 'new');
    s.persist();
    expect(area.getItem('tl_aid')).toBe('new');
  });

  it('replays removals on persist(): an optIn before consent lifts the stored opt-out', () => {
    const area = fakeStorage();
    area.setItem('tl_optout', '1');
    const s = deferredStore(() => localStore('tl_', () => area));
    s.set('optout', '1'); // what the tracker seeds from the stored choice
    s.remove('optout');
    expect(s.get('optout')).toBeNull();
    expect(area.getItem('tl_optout')).toBe('1');
    s.persist();
    expect(area.getItem('tl_optout')).toBeNull();
  });

  it('without a target (cookieless) it stays memory for good', () => {
    const s = deferredStore(null);
    s.set('aid', 'a1');
    s.persist();
    expect(s.get('aid')).toBe('a1');
  });
});
