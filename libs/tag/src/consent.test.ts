import { describe, expect, it } from 'vitest';
import { createConsent, grants, parsePreferences, type Preferences } from './consent.js';
import { memoryStore, type KeyValueStore } from './storage.js';

describe('parsePreferences', () => {
  it.each([
    ['booleans kept', { analytics: true, ads: false }, { analytics: true, ads: false }],
    ['other values dropped', { analytics: 'yes', ads: 1, a: null, b: true }, { b: true }],
    ['no boolean at all', { analytics: 'true' }, null],
    ['empty object', {}, null],
    ['an array', [true], null],
    ['a string', 'analytics', null],
    ['null', null, null],
    ['an over-long name dropped', { ['x'.repeat(129)]: true, ok: false }, { ok: false }],
  ])('%s', (_name, input, expected) => {
    expect(parsePreferences(input)).toEqual(expected);
  });

  it('keeps at most 100 categories', () => {
    const many = Object.fromEntries(Array.from({ length: 150 }, (_, i) => [`c${i}`, true]));
    expect(Object.keys(parsePreferences(many)!)).toHaveLength(100);
  });
});

describe('grants', () => {
  it.each<[Preferences, boolean]>([
    [{ analytics: true }, true],
    [{ analytics: true, marketing: false }, true],
    [{ analytics: false, marketing: true }, false], // named: `analytics` decides
    [{ analytics: false }, false],
    [{ statistics: true, marketing: false }, true], // not named: any granted category
    [{ statistics: false, marketing: false }, false],
  ])('%j → %s', (p, expected) => {
    expect(grants(p)).toBe(expected);
  });
});

function consent(store: KeyValueStore, required = true, maxHeld = 10) {
  return createConsent<string>({ store, required, maxHeld });
}

describe('createConsent', () => {
  it('holds while required and undecided; a grant hands the held messages back, in order', () => {
    const store = memoryStore();
    const c = consent(store);
    expect(c.mode()).toBe('hold');
    c.hold('page');
    c.hold('click');
    expect(c.update({ analytics: true, ads: false })).toEqual({ result: 'grant', held: ['page', 'click'] });
    expect(c.mode()).toBe('send');
    expect(c.preferences()).toEqual({ analytics: true, ads: false });
    expect(store.get('consent')).toBe('{"analytics":true,"ads":false}');
  });

  it('sends without a choice when not required, and carries no preferences then', () => {
    const c = consent(memoryStore(), false);
    expect(c.mode()).toBe('send');
    expect(c.preferences()).toBeNull();
  });

  it('a withdrawal discards what is held, required or not, and turns the tag off', () => {
    for (const required of [true, false]) {
      const c = consent(memoryStore(), required);
      c.hold('page');
      expect(c.update({ analytics: false, ads: true })).toEqual({ result: 'withdraw' });
      expect(c.mode()).toBe('off');
      // a later grant finds nothing held from before the withdrawal
      expect(c.update({ analytics: true })).toEqual({ result: 'grant', held: [] });
    }
  });

  it('ignores a call without any category: nothing stored, nothing released', () => {
    const store = memoryStore();
    const c = consent(store);
    c.hold('page');
    expect(c.update({ analytics: 'granted' })).toBeNull();
    expect(c.update(undefined)).toBeNull();
    expect(store.get('consent')).toBeNull();
    expect(c.mode()).toBe('hold');
    expect(c.update({ analytics: true })).toEqual({ result: 'grant', held: ['page'] });
  });

  it('a call replaces the previous preferences (the CMP reports them all)', () => {
    const c = consent(memoryStore());
    c.update({ analytics: true, ads: true });
    c.update({ analytics: true });
    expect(c.preferences()).toEqual({ analytics: true });
  });

  it('keeps the first maxHeld messages (the landing page view matters most)', () => {
    const c = consent(memoryStore(), true, 2);
    for (const m of ['a', 'b', 'c']) c.hold(m);
    expect(c.update({ analytics: true })).toEqual({ result: 'grant', held: ['a', 'b'] });
  });

  it('the choice lasts across page loads (the same store), and a withdrawal in another tab is seen', () => {
    const store = memoryStore();
    consent(store).update({ analytics: true });
    const next = consent(store);
    expect(next.mode()).toBe('send');
    consent(store).update({ analytics: false });
    expect(next.mode()).toBe('off');
  });

  it('treats garbage in storage as no choice', () => {
    const store = memoryStore();
    store.set('consent', '{not json');
    expect(consent(store).mode()).toBe('hold');
    store.set('consent', '"analytics"');
    expect(consent(store, false).preferences()).toBeNull();
  });

  it('discard() forgets the held messages (opt-out)', () => {
    const c = consent(memoryStore());
    c.hold('page');
    c.discard();
    expect(c.update({ analytics: true })).toEqual({ result: 'grant', held: [] });
  });
});
