import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dataDirIdHashKey, ID_HASH_KEY_FILE, parseIdHashKey, subjectHasher } from './subject-hash.js';

describe('subjectHasher', () => {
  const key = randomBytes(32);
  const hash = subjectHasher(key);

  it('is a stable keyed hash of tenant and id, never the plain SHA-256 of the id', () => {
    expect(hash('acme', 'ada@example.org')).toMatch(/^[0-9a-f]{64}$/);
    expect(hash('acme', 'ada@example.org')).toBe(subjectHasher(Buffer.from(key))('acme', 'ada@example.org'));
    expect(hash('acme', 'ada@example.org')).not.toBe(createHash('sha256').update('ada@example.org').digest('hex'));
    expect(hash('acme', 'ada@example.org')).not.toBe(hash('globex', 'ada@example.org'));
    expect(hash('acme', 'ada@example.org')).not.toBe(subjectHasher(randomBytes(32))('acme', 'ada@example.org'));
    // the separator keeps (tenant, id) pairs apart
    expect(hash('a', 'bc')).not.toBe(hash('ab', 'c'));
  });

  it('keeps its own copy of the key (the caller may zero it)', () => {
    const mine = randomBytes(32);
    const h = subjectHasher(mine);
    const before = h('t', 'u');
    mine.fill(0);
    expect(h('t', 'u')).toBe(before);
  });

  it('refuses a short key', () => {
    expect(() => subjectHasher(randomBytes(16))).toThrow(/at least 32 bytes/);
  });
});

describe('parseIdHashKey', () => {
  it('takes the master key encodings and names its own variable, never the value', () => {
    expect(parseIdHashKey(`hex:${'ab'.repeat(32)}`)).toEqual(Buffer.alloc(32, 0xab));
    expect(() => parseIdHashKey(undefined)).toThrow('TRACKLANE_ID_HASH_KEY is not set');
    expect(() => parseIdHashKey('short-secret-value')).toThrow(/^TRACKLANE_ID_HASH_KEY must be at least 32 bytes/);
    expect(() => parseIdHashKey('short-secret-value')).not.toThrow(/short-secret-value/);
  });
});

describe('dataDirIdHashKey', () => {
  it('creates a random key in the data dir once (mode 0600) and returns the same key after', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tl-idkey-'));
    const first = dataDirIdHashKey(dir);
    expect(first.length).toBe(32);
    const file = join(dir, ID_HASH_KEY_FILE);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8')).toMatch(/^hex:[0-9a-f]{64}\n$/);
    expect(dataDirIdHashKey(dir)).toEqual(first);
    expect(dataDirIdHashKey(mkdtempSync(join(tmpdir(), 'tl-idkey-')))).not.toEqual(first);
  });
});
