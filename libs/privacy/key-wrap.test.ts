import { createHmac, randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { KeyUnwrapError, keyWrapper, WRAPPED_LENGTH } from './key-wrap.js';

const master = randomBytes(32);
const hmac = (key: Parameters<typeof createHmac>[1], id: string) => createHmac('sha256', key).update(id).digest('hex');

describe('key wrapping', () => {
  it('opens what it wrapped, under the same id and master key, as the same key', () => {
    const w = keyWrapper(master);
    const key = randomBytes(32);
    const wrapped = w.wrap('tenant:acme:v2', key);
    expect(wrapped).toHaveLength(WRAPPED_LENGTH);
    expect(hmac(w.unwrap('tenant:acme:v2', wrapped), 'user-1')).toBe(hmac(key, 'user-1'));
    // another wrapper over the same master key (another process) opens it too
    expect(hmac(keyWrapper(Buffer.from(master)).unwrap('tenant:acme:v2', wrapped), 'user-1')).toBe(hmac(key, 'user-1'));
  });

  it('never repeats a wrapping (a new IV each time) and never holds the key in clear', () => {
    const w = keyWrapper(master);
    const key = randomBytes(32);
    const a = w.wrap('k', key);
    const b = w.wrap('k', key);
    expect(a.equals(b)).toBe(false);
    expect(a.includes(key)).toBe(false);
  });

  it.each([
    ['another id', (w: Buffer) => ({ id: 'tenant:acme:v3', wrapped: w, master })],
    ['another master key', (w: Buffer) => ({ id: 'tenant:acme:v2', wrapped: w, master: randomBytes(32) })],
    ['a flipped bit in the IV', (w: Buffer) => ({ id: 'tenant:acme:v2', wrapped: flip(w, 3), master })],
    ['a flipped bit in the tag', (w: Buffer) => ({ id: 'tenant:acme:v2', wrapped: flip(w, 20), master })],
    ['a flipped bit in the key', (w: Buffer) => ({ id: 'tenant:acme:v2', wrapped: flip(w, WRAPPED_LENGTH - 1), master })],
    ['another format byte', (w: Buffer) => ({ id: 'tenant:acme:v2', wrapped: flip(w, 0), master })],
    ['a truncated value', (w: Buffer) => ({ id: 'tenant:acme:v2', wrapped: w.subarray(0, WRAPPED_LENGTH - 1), master })],
  ])('refuses %s with a KeyUnwrapError that quotes no key material', (_name, alter) => {
    const key = randomBytes(32);
    const wrapped = keyWrapper(master).wrap('tenant:acme:v2', key);
    const t = alter(wrapped);
    const open = () => keyWrapper(t.master).unwrap(t.id, t.wrapped);
    expect(open).toThrow(KeyUnwrapError);
    expect(open).not.toThrow(key.toString('hex'));
    expect(open).not.toThrow(wrapped.toString('hex'));
  });

  it('generates a random key, hands it to the caller once, and keeps only its wrapping', () => {
    const w = keyWrapper(master);
    let seen: Buffer | undefined;
    const { wrapped, result } = w.generate('tenant:acme:v4', (key) => ((seen = key), hmac(key, 'u')));
    expect(hmac(w.unwrap('tenant:acme:v4', wrapped), 'u')).toBe(result);
    expect(seen?.equals(Buffer.alloc(32))).toBe(true); // zeroed after use
  });

  it('refuses a key that is not 32 bytes', () => {
    expect(() => keyWrapper(master).wrap('k', randomBytes(16))).toThrow(RangeError);
  });

  it('prints as [KeyWrapper] everywhere', () => {
    const w = keyWrapper(master);
    expect(JSON.stringify({ w })).toBe('{"w":"[KeyWrapper]"}');
    expect(inspect(w)).toBe('[KeyWrapper]');
    expect(`${String(w)}`).toBe('[KeyWrapper]');
  });
});

function flip(b: Buffer, at: number): Buffer {
  const c = Buffer.from(b);
  c[at] = (c[at] ?? 0) ^ 0x01;
  return c;
}
