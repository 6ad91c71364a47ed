import { describe, expect, it } from 'vitest';
import { DEFAULT_FLAGS } from './flags.js';
import {
  decodeFlags,
  decodeTenant,
  DEFAULT_MAX_CLOCK_SKEW_MS,
  DEFAULT_PROPAGATION_WINDOW_MS,
  DEFAULT_RECONCILE_INTERVAL_MS,
  DEFAULT_STALE_AFTER_MS,
  writeKeyHash,
  writeSlackMs,
} from './redis-tenant-store.js';
import { legacyWriteKeyId } from './tenant-keys.js';
import { TenantStoreError } from './tenant-store.js';

const defaults = {
  propagationWindowMs: DEFAULT_PROPAGATION_WINDOW_MS,
  staleAfterMs: DEFAULT_STALE_AFTER_MS,
  maxClockSkewMs: DEFAULT_MAX_CLOCK_SKEW_MS,
  reconcileIntervalMs: DEFAULT_RECONCILE_INTERVAL_MS,
};

describe('timing budget', () => {
  it.each([
    { name: 'defaults', budget: defaults, slack: 500 },
    { name: 'longer window', budget: { ...defaults, propagationWindowMs: 5_000 }, slack: 3_500 },
    { name: 'no skew', budget: { ...defaults, maxClockSkewMs: 0 }, slack: 1_000 },
  ])('$name leaves $slack ms for the write to land', ({ budget, slack }) => {
    expect(writeSlackMs(budget)).toBe(slack);
  });

  it.each([
    { name: 'staleness as long as the window', budget: { ...defaults, staleAfterMs: 2_000, reconcileIntervalMs: 500 } },
    { name: 'skew eating the slack', budget: { ...defaults, maxClockSkewMs: 480 } },
    { name: 'poll slower than half the staleness', budget: { ...defaults, reconcileIntervalMs: 600 } },
    { name: 'no poll', budget: { ...defaults, reconcileIntervalMs: 0 } },
  ])('rejects $name', ({ budget }) => {
    expect(() => writeSlackMs(budget)).toThrow(TenantStoreError);
  });
});

describe('decoding tenant records', () => {
  const hash = writeKeyHash('tl_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa');
  const good = { createdAt: '1000', writeKeyHash: hash, flags: JSON.stringify(DEFAULT_FLAGS), rev: '7', keys: '' };

  it('hashes write keys as sha256 hex', () => {
    expect(writeKeyHash('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('decodes a valid record into a frozen tenant without a clear key', () => {
    const d = decodeTenant('acme', good);
    expect(d).toMatchObject({
      ok: true,
      rev: 7,
      tenant: { tenantId: 'acme', createdAt: 1000, flags: DEFAULT_FLAGS, keys: { writeKeys: [{ keyId: legacyWriteKeyId(hash), hash, createdAt: 1000 }], apiKeys: [] } },
    });
    if (d.ok) {
      expect(Object.isFrozen(d.tenant)).toBe(true);
      expect(Object.isFrozen(d.tenant.flags.piiTraits)).toBe(true);
    }
  });

  it.each([
    { name: 'flags not JSON', fields: { ...good, flags: '{"anonymizeIdentity": tl_secretvalue' }, problem: /not valid JSON/ },
    { name: 'flags of the wrong shape', fields: { ...good, flags: JSON.stringify({ ...DEFAULT_FLAGS, ipPolicy: 'tl_secretvalue' }) }, problem: /flags\.ipPolicy/ },
    { name: 'missing flags', fields: { ...good, flags: '' }, problem: /not valid JSON/ },
    { name: 'bad rev', fields: { ...good, rev: 'x' }, problem: /rev/ },
    { name: 'bad createdAt', fields: { ...good, createdAt: '' }, problem: /createdAt/ },
    { name: 'bad hash', fields: { ...good, writeKeyHash: 'tl_secretvalue' }, problem: /writeKeyHash/ },
  ])('reports $name without quoting values', ({ fields, problem }) => {
    const d = decodeTenant('acme', fields);
    expect(d.ok).toBe(false);
    if (!d.ok) {
      expect(d.problem).toMatch(problem);
      expect(d.problem).not.toContain('secretvalue');
    }
  });

  it('rejects flags that fail the schema', () => {
    expect(decodeFlags(JSON.stringify({ ...DEFAULT_FLAGS, keyVersion: 0 })).ok).toBe(false);
    expect(decodeFlags(JSON.stringify(DEFAULT_FLAGS))).toEqual({ ok: true, flags: DEFAULT_FLAGS });
  });
});
