import { describe, expect, it } from 'vitest';
import { localStore } from './storage.js';

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
