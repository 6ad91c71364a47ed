import { createHmac, hkdfSync } from 'node:crypto';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../core/logger.js';
import { createKeyRing, masterKeyRing, PSEUDONYM_KEY_SALT } from './key-ring.js';
import { MasterKeyError, parseMasterKey } from './master-key.js';

const MASTER_TEXT = 'MASTER-CANARY-unit-test-master-key-0123456789abcdef';
const master = parseMasterKey(MASTER_TEXT);

/** Independent reference: HKDF-SHA256 → HMAC-SHA256, spelled out without the module's helpers. */
function reference(tenantId: string, version: number, id: string): string {
  const key = Buffer.from(hkdfSync('sha256', Buffer.from(MASTER_TEXT, 'utf8'), 'tracklane/pseudonym', `tenant:${tenantId}:v${version}`, 32));
  return `v${version}:` + createHmac('sha256', key).update(id, 'utf8').digest('hex');
}

describe.each([
  ['with pseudonym cache', 1000],
  ['without pseudonym cache', 0],
])('createKeyRing %s', (_name, cacheSize) => {
  const ring = createKeyRing(master, { cacheSize });

  it('matches the HKDF/HMAC reference derivation', () => {
    expect(PSEUDONYM_KEY_SALT).toBe('tracklane/pseudonym');
    for (const [t, v, id] of [
      ['acme', 1, 'user-42'],
      ['acme', 2, 'user-42'],
      ['globex', 1, 'user-42'],
      ['acme', 1, 'jane@example.com'],
      ['acme', 1, 'ünïcødé ✓'],
    ] as const) {
      expect(ring.pseudonym(t, v, id)).toBe(reference(t, v, id));
      expect(ring.pseudonym(t, v, id)).toBe(reference(t, v, id)); // second call: cached path
    }
  });

  it('pinned vector (computed outside Node with Python hmac/hashlib per RFC 5869)', () => {
    // NOTE: a change here re-keys every pseudonym ever written: that needs a key-version bump.
    expect(ring.pseudonym('acme', 1, 'user-42')).toBe('v1:56d7ee08aa3db4b8fca9d901d8337aac2e33c37b060c9cbb6e8833b705fbe72d');
  });

  const table: Array<[string, [string, number, string], [string, number, string], boolean]> = [
    ['same tenant, version, id', ['acme', 1, 'u1'], ['acme', 1, 'u1'], true],
    ['other tenant', ['acme', 1, 'u1'], ['globex', 1, 'u1'], false],
    ['other version', ['acme', 1, 'u1'], ['acme', 2, 'u1'], false],
    ['other id', ['acme', 1, 'u1'], ['acme', 1, 'u2'], false],
    // cache-key framing: tenant+id concatenations that coincide must not collide
    ['tenant/id boundary', ['ab', 1, 'c'], ['a', 1, 'bc'], false],
  ];
  it.each(table)('%s', (_n, a, b, same) => {
    expect(ring.pseudonym(...a) === ring.pseudonym(...b)).toBe(same);
  });

  it('prefixes the key version', () => {
    expect(ring.pseudonym('acme', 2, 'u1')).toMatch(/^v2:[0-9a-f]{64}$/);
    expect(ring.pseudonym('acme', 17, 'u1')).toMatch(/^v17:/);
  });

  it.each([0, -1, 1.5, Number.NaN])('rejects key version %s', (v) => {
    expect(() => ring.pseudonym('acme', v, 'u1')).toThrow(RangeError);
  });

  it('never prints the master key', () => {
    const masterHex = master.toString('hex');
    const lines: string[] = [];
    const logger = createLogger({ destination: { write: (s: string) => void lines.push(s) } });
    logger.info({ ring, nested: { ring } }, 'ring');
    const printed = [
      inspect(ring, { showHidden: true, depth: 10 }),
      JSON.stringify(ring),
      JSON.stringify({ ring }),
      String(ring),
      `${ring}`,
      ...lines,
    ].join('\n');
    expect(printed).toContain('[KeyRing]');
    expect(printed).not.toContain('CANARY');
    expect(printed).not.toContain(masterHex.slice(0, 16));
    expect(Object.keys(ring)).toEqual(['pseudonym', 'toJSON', 'toString']);
  });

  it('does not depend on the caller keeping the master buffer', () => {
    const copy = Buffer.from(master);
    const r = createKeyRing(copy, { cacheSize });
    copy.fill(0);
    expect(r.pseudonym('acme', 1, 'u1')).toBe(reference('acme', 1, 'u1'));
  });
});

describe('masterKeyRing', () => {
  it('derives the same pseudonyms as a ring over the parsed key', () => {
    expect(masterKeyRing(MASTER_TEXT).pseudonym('acme', 1, 'user-42')).toBe(reference('acme', 1, 'user-42'));
  });
  it.each([undefined, 'too-short', 'hex:zz'])('refuses %j with a MasterKeyError that never quotes the value', (raw) => {
    const refuse = () => masterKeyRing(raw);
    expect(refuse).toThrow(MasterKeyError);
    expect(refuse).toThrow(/^TRACKLANE_MASTER_KEY /);
    if (raw) expect(refuse).not.toThrow(raw);
  });
});
