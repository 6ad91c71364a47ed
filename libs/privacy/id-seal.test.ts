import { createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createIdSeal, ID_SEAL_INFO } from './id-seal.js';

const key = randomBytes(32);
const seal = createIdSeal(key);
const owner = { request_id: 'req-1/0', tenant_id: 'acme', id_hash: 'a'.repeat(64) };
const NEW_ID = 'anon-7c1e4a52-9b0d-4f3e-8a21-6d5c4b3a2f10';

describe('id seal', () => {
  it('opens what it sealed for the same owner; the sealed text does not hold the id', () => {
    const sealed = seal.seal(NEW_ID, owner);
    expect(Buffer.from(sealed, 'base64').includes(Buffer.from('anon-'))).toBe(false);
    expect(sealed).not.toBe(seal.seal(NEW_ID, owner)); // a fresh nonce each time
    expect(seal.open(sealed, owner)).toBe(NEW_ID);
  });

  it.each([
    ['another request', { ...owner, request_id: 'req-2/0' }],
    ['another tenant', { ...owner, tenant_id: 'other' }],
    ['another subject', { ...owner, id_hash: 'b'.repeat(64) }],
  ])('does not open for %s (a row moved to another subject)', (_name, other) => {
    expect(seal.open(seal.seal(NEW_ID, owner), other)).toBeNull();
  });

  it('does not open under another key, altered, truncated or empty', () => {
    const sealed = seal.seal(NEW_ID, owner);
    expect(createIdSeal(randomBytes(32)).open(sealed, owner)).toBeNull();
    const bytes = Buffer.from(sealed, 'base64');
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 1;
    expect(seal.open(bytes.toString('base64'), owner)).toBeNull();
    expect(seal.open(sealed.slice(0, 20), owner)).toBeNull();
    expect(seal.open('', owner)).toBeNull();
  });

  it('is AES-256-GCM under HKDF-SHA256(key, its own info), not under the hash key itself', () => {
    const bytes = Buffer.from(seal.seal(NEW_ID, owner), 'base64');
    const openWith = (k: Buffer): string => {
      const d = createDecipheriv('aes-256-gcm', k, bytes.subarray(1, 13));
      d.setAAD(Buffer.from(JSON.stringify([1, owner.request_id, owner.tenant_id, owner.id_hash])));
      d.setAuthTag(bytes.subarray(bytes.length - 16));
      return Buffer.concat([d.update(bytes.subarray(13, bytes.length - 16)), d.final()]).toString('utf8');
    };
    expect(openWith(Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), ID_SEAL_INFO, 32)))).toBe(NEW_ID);
    expect(() => openWith(key)).toThrow();
  });
});
