import { describe, expect, it } from 'vitest';
import {
  addApiKey,
  addWriteKey,
  API_KEY_RE,
  apiKeyRequestSchema,
  EMPTY_KEYS,
  generateApiKey,
  generateWriteKey,
  keyHash,
  KeyLimitError,
  legacyWriteKeyId,
  MAX_API_KEYS,
  MAX_WRITE_KEYS,
  newKeyId,
  removeKey,
  tenantKeysSchema,
  WRITE_KEY_RE,
  type ApiKeyEntry,
  type WriteKeyEntry,
} from './tenant-keys.js';

const wk = (n: number): WriteKeyEntry => ({ keyId: newKeyId('wk'), hash: keyHash(`w${n}`), createdAt: n });
const ak = (n: number): ApiKeyEntry => ({ keyId: newKeyId('ak'), name: `k${n}`, scopes: ['read'], hash: keyHash(`a${n}`), createdAt: n });

describe('tenant keys', () => {
  it('generates 192-bit secrets of distinct, recognisable forms', () => {
    const w = generateWriteKey();
    const a = generateApiKey();
    expect(w).toMatch(WRITE_KEY_RE);
    expect(a).toMatch(API_KEY_RE);
    expect(WRITE_KEY_RE.test(a)).toBe(false);
    expect(API_KEY_RE.test(w)).toBe(false);
    expect(Buffer.from(a.slice(4), 'base64url')).toHaveLength(24);
    expect(keyHash(a)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('derives a stable id for a legacy write key from its hash alone', () => {
    const h = keyHash('tl_legacy');
    expect(legacyWriteKeyId(h)).toBe(legacyWriteKeyId(h));
    expect(legacyWriteKeyId(h)).toMatch(/^wk_[0-9a-f]{16}$/);
    expect(legacyWriteKeyId(keyHash('tl_other'))).not.toBe(legacyWriteKeyId(h));
  });

  it('adds, removes by id of either kind, and refuses more than the bounds', () => {
    let keys = EMPTY_KEYS;
    for (let i = 0; i < MAX_WRITE_KEYS; i++) keys = addWriteKey(keys, wk(i));
    expect(() => addWriteKey(keys, wk(99))).toThrow(KeyLimitError);
    for (let i = 0; i < MAX_API_KEYS; i++) keys = addApiKey(keys, ak(i));
    expect(() => addApiKey(keys, ak(99))).toThrow(KeyLimitError);
    expect(tenantKeysSchema.safeParse(keys).success).toBe(true);
    const w = keys.writeKeys[3]?.keyId ?? '';
    const a = keys.apiKeys[7]?.keyId ?? '';
    const less = removeKey(removeKey(keys, w) ?? keys, a);
    expect(less?.writeKeys.map((k) => k.keyId)).not.toContain(w);
    expect(less?.apiKeys.map((k) => k.keyId)).not.toContain(a);
    expect(less?.writeKeys).toHaveLength(MAX_WRITE_KEYS - 1);
    expect(removeKey(keys, 'ak_0000000000000000')).toBeUndefined();
  });

  it.each([
    [{ name: 'BI', scopes: ['read', 'admin', 'read'] }, { name: 'BI', scopes: ['read', 'admin'] }],
    [{ name: '  ops team  ', scopes: ['admin'] }, { name: 'ops team', scopes: ['admin'] }],
  ])('normalises a key request %j', (input, output) => {
    expect(apiKeyRequestSchema.parse(input)).toEqual(output);
  });

  it.each([[{ name: 'x', scopes: [] }], [{ name: 'x', scopes: ['owner'] }], [{ name: 'a\nb', scopes: ['read'] }], [{ scopes: ['read'] }]])('refuses %j', (input) => {
    expect(apiKeyRequestSchema.safeParse(input).success).toBe(false);
  });
});
