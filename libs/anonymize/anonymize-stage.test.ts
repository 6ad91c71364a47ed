import { createSecretKey, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Result } from '../core/result.js';
import { cleanEventSchema, type CleanEvent, type EnrichedEvent } from '../events/envelope.js';
import { DEFAULT_FLAGS, type FlagSource, type TenantFlags } from '../tenants/flags.js';
import { createAnonymizeStage } from './anonymize-stage.js';
import { createKeyRing } from './key-ring.js';
import { parseMasterKey } from './master-key.js';

const SINCE = 1_700_000_000_000;
const keys = createKeyRing(parseMasterKey('hex:' + '42'.repeat(32)));

function event(over: Partial<EnrichedEvent> = {}): EnrichedEvent {
  return {
    event_id: 'node-next-1',
    tenant_id: 'acme',
    type: 'identify',
    name: null,
    user_id: 'user-42',
    anonymous_id: 'anon-1',
    previous_id: null,
    session_id: 'sess-1',
    account_id: 'acct-9',
    occurred_at: SINCE,
    sent_at: SINCE,
    received_at: SINCE,
    timestamp_clamped: false,
    ip: '203.0.113.0',
    user_agent: 'Mozilla/5.0',
    context: {
      url: 'https://app.example.com/x', path: '/x', referrer: null, title: 'X', search: null, locale: 'en-US',
      timezone: 'Europe/Paris', screen_width: 1440, screen_height: 900, library_name: 'tracklane.js', library_version: '1.0.0',
    },
    element: null,
    properties: { plan: '"pro"' },
    traits: { email: '"jane@example.com"', firstName: '"Jane"', phone: '"+33 6 12"', age: '41', nick: 'null' },
    account_traits: { name: '"Example Inc"' },
    geo: { country: 'FR', region: null, city: 'Paris', lat: null, lon: null, timezone: 'Europe/Paris' },
    ip_org: null,
    ua: null,
    inferred_account: { account_id: 'example.com', domain: 'example.com', source: 'email_domain', confidence: 0.8 },
    ...over,
  };
}

const on: TenantFlags = { ...DEFAULT_FLAGS, anonymizeIdentity: true, anonymizeSince: SINCE, keyVersion: 1 };
function source(byTenant: Record<string, TenantFlags>): FlagSource {
  return { get: (t) => byTenant[t] };
}

function deepFreeze<T>(o: T): T {
  if (o !== null && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}

/** The ok value, checked against the CleanEvent schema (the check itself works on a copy). */
function value(r: Result<CleanEvent>): CleanEvent {
  if (r.kind !== 'ok') throw new Error(`expected ok, got ${r.kind}: ${r.reason}`);
  cleanEventSchema.parse(r.value);
  return r.value;
}

const stage = createAnonymizeStage({
  flags: source({
    acme: on,
    globex: { ...on, anonymizeSince: SINCE - 1 },
    acme2: { ...on, keyVersion: 2 },
    off: DEFAULT_FLAGS,
    pii: { ...on, piiTraits: ['email', 'phone', 'age', 'nick', 'missing'] },
    nosince: { ...on, anonymizeSince: null },
  }),
  keys,
});

describe('anonymize stage', () => {
  const clear: Array<[string, Partial<EnrichedEvent>]> = [
    ['flag off', { tenant_id: 'off', received_at: SINCE + 10 }],
    ['received 1 ms before anonymizeSince', { received_at: SINCE - 1 }],
    ['received long before (occurred_at after)', { received_at: SINCE - 86_400_000, occurred_at: SINCE + 5 }],
  ];
  it.each(clear)('passes in clear: %s', (_n, over) => {
    const input = deepFreeze(event(over));
    const out = value(stage(input));
    expect(out).toEqual({ ...input, identity_anonymized: false, key_version: 0 });
    expect(out.user_id).toBe('user-42');
  });

  it('pseudonymizes events received at or after anonymizeSince, forward only', () => {
    const at = value(stage(deepFreeze(event({ received_at: SINCE }))));
    const later = value(stage(deepFreeze(event({ received_at: SINCE + 1000, occurred_at: SINCE - 5000 }))));
    for (const out of [at, later]) {
      expect(out.user_id).toMatch(/^v1:[0-9a-f]{64}$/);
      expect(out.user_id).toBe(keys.pseudonym('acme', 1, 'user-42'));
      expect(out.identity_anonymized).toBe(true);
      expect(out.key_version).toBe(1);
    }
  });

  it('flags with anonymizeIdentity on and no anonymizeSince fail closed (anonymize)', () => {
    const out = value(stage(deepFreeze(event({ tenant_id: 'nosince', received_at: 0 }))));
    expect(out.user_id).toMatch(/^v1:/);
  });

  it('same id → same pseudonym within a tenant, unrelated in another tenant', () => {
    const a1 = value(stage(event({ event_id: 'e1' }))).user_id;
    const a2 = value(stage(event({ event_id: 'e2', type: 'track', received_at: SINCE + 99 }))).user_id;
    const g = value(stage(event({ tenant_id: 'globex' }))).user_id;
    expect(a1).toBe(a2);
    expect(g).toMatch(/^v1:/);
    expect(g).not.toBe(a1);
  });

  it('a new key version gives a different pseudonym prefixed v2:', () => {
    const v1 = value(stage(event())).user_id;
    const v2 = value(stage(event({ tenant_id: 'acme2' })));
    expect(v2.user_id).toMatch(/^v2:[0-9a-f]{64}$/);
    expect(v2.key_version).toBe(2);
    expect(v2.user_id?.slice(3)).not.toBe(v1?.slice(3));
  });

  it('leaves account data, anonymous id and non-PII traits untouched', () => {
    const input = deepFreeze(event());
    const out = value(stage(input));
    expect(out.account_id).toBe(input.account_id);
    expect(out.account_traits).toEqual(input.account_traits);
    expect(out.inferred_account).toEqual(input.inferred_account);
    expect(out.anonymous_id).toBe('anon-1');
    // NOTE: only the identify id is hashed unless the tenant lists traits in piiTraits.
    expect(out.traits).toEqual(input.traits);
    const { user_id: _u, identity_anonymized: _i, key_version: _k, ...rest } = out;
    const { user_id: _u2, ...restIn } = input;
    expect(rest).toEqual(restIn);
  });

  it('hashes an alias previous_id', () => {
    const out = value(stage(deepFreeze(event({ type: 'alias', user_id: 'new-id', previous_id: 'old-id' }))));
    expect(out.user_id).toBe(keys.pseudonym('acme', 1, 'new-id'));
    expect(out.previous_id).toBe(keys.pseudonym('acme', 1, 'old-id'));
  });

  it('keeps a null user_id null but marks the event as covered', () => {
    const out = value(stage(deepFreeze(event({ type: 'page', user_id: null }))));
    expect(out.user_id).toBeNull();
    expect(out.identity_anonymized).toBe(true);
    expect(out.key_version).toBe(1);
  });

  it('hashes piiTraits as JSON-encoded pseudonyms and leaves the others', () => {
    const input = deepFreeze(event({ tenant_id: 'pii' }));
    const out = value(stage(input));
    expect(out.traits).toEqual({
      email: JSON.stringify(keys.pseudonym('pii', 1, 'jane@example.com')),
      firstName: '"Jane"',
      phone: JSON.stringify(keys.pseudonym('pii', 1, '+33 6 12')),
      age: JSON.stringify(keys.pseudonym('pii', 1, '41')), // non-string JSON hashed as its text
      nick: 'null', // null carries nothing to hash
    });
    expect(out.traits).not.toHaveProperty('missing');
    // a trait equal to the user id hashes to the user's pseudonym
    const same = value(stage(event({ tenant_id: 'pii', user_id: 'jane@example.com' })));
    expect(same.traits.email).toBe(JSON.stringify(same.user_id));
  });

  it('does not hash piiTraits on events received before anonymizeSince', () => {
    const input = deepFreeze(event({ tenant_id: 'pii', received_at: SINCE - 1 }));
    expect(value(stage(input)).traits).toBe(input.traits);
  });

  it('treats a trait named __proto__ as data', () => {
    const traits = JSON.parse('{"__proto__":"\\"x\\""}') as Record<string, string>;
    const s = createAnonymizeStage({ flags: source({ acme: { ...on, piiTraits: ['__proto__'] } }), keys });
    const out = value(s(deepFreeze(event({ traits }))));
    expect(Object.getPrototypeOf(out.traits)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(out.traits, '__proto__')?.value).toBe(JSON.stringify(keys.pseudonym('acme', 1, 'x')));
  });

  const retries: Array<[string, Parameters<typeof createAnonymizeStage>[0], Partial<EnrichedEvent>, string]> = [
    ['flags unknown (tenant missing)', { flags: source({}), keys }, {}, 'tenant flags unavailable'],
    ['flags unknown even for old events', { flags: source({}), keys }, { received_at: 0 }, 'tenant flags unavailable'],
    ['no master key but flag applies', { flags: source({ acme: on }), keys: null }, {}, 'master key not configured'],
  ];
  it.each(retries)('retries (fail closed): %s', (_n, deps, over, reason) => {
    const r = createAnonymizeStage(deps)(deepFreeze(event(over)));
    expect(r).toEqual({ kind: 'retry', reason });
    expect(JSON.stringify(r)).not.toContain('user-42');
  });

  it('needs no master key when the flag does not apply', () => {
    const s = createAnonymizeStage({ flags: source({ acme: on, off: DEFAULT_FLAGS }), keys: null });
    expect(value(s(event({ tenant_id: 'off' }))).user_id).toBe('user-42');
    expect(value(s(event({ received_at: SINCE - 1 }))).user_id).toBe('user-42');
  });

  it('returns a new object and never mutates the input', () => {
    const input = event({ tenant_id: 'pii', type: 'alias', previous_id: 'p' });
    const snapshot = structuredClone(input);
    const out = value(stage(deepFreeze(input)));
    expect(out).not.toBe(input);
    expect(input).toEqual(snapshot);
    const outClear = stage(deepFreeze(event({ tenant_id: 'off' })));
    expect(outClear.kind === 'ok' && outClear.value).not.toBe(input);
  });

  it('emits exactly the CleanEvent fields (guards the field-by-field copy)', () => {
    const expected = Object.keys(cleanEventSchema.shape).sort();
    for (const t of ['acme', 'off', 'pii']) {
      const r = stage(event({ tenant_id: t }));
      expect(r.kind === 'ok' && Object.keys(r.value).sort()).toEqual(expected);
    }
  });

  it('is a named function', () => {
    expect(stage.name).toBe('anonymizeStage');
  });
});

describe('anonymize stage over stored key versions', () => {
  const master = parseMasterKey('hex:' + '42'.repeat(32));
  const rotating: TenantFlags = { ...on, keyVersion: 2, keyVersionSince: SINCE + 1_000, storedKeysFrom: 1 };
  const flags = source({ acme: rotating, shred: { ...rotating, shreddedKeyVersions: [1] } });
  const held = new Map<string, ReturnType<typeof createSecretKey>>([['1:acme', createSecretKey(randomBytes(32))]]);
  const ring = createKeyRing(master, {
    keys: {
      resolve: (t, v) => {
        if (flags.get(t)?.shreddedKeyVersions.includes(v)) return 'shredded';
        return held.get(`${v}:${t}`) ?? 'missing';
      },
    },
  });
  const stored = createAnonymizeStage({ flags, keys: ring });

  it('during a rotation window, events received before the stamp take the previous version', () => {
    expect(value(stored(event({ received_at: SINCE + 999 })))).toMatchObject({ key_version: 1, user_id: ring.pseudonym('acme', 1, 'user-42') });
  });

  it('an event whose version has no key loaded waits (retry), never leaves in clear', () => {
    const r = stored(event({ received_at: SINCE + 1_000 }));
    expect(r).toMatchObject({ kind: 'retry', reason: expect.stringMatching(/version 2 not loaded/) });
    held.set('2:acme', createSecretKey(randomBytes(32)));
    expect(value(stored(event({ received_at: SINCE + 1_000 })))).toMatchObject({ key_version: 2, user_id: ring.pseudonym('acme', 2, 'user-42') });
  });

  it('a late event of a shredded previous version takes the current one', () => {
    held.set('2:shred', createSecretKey(randomBytes(32)));
    expect(value(stored(event({ tenant_id: 'shred', received_at: SINCE + 10 })))).toMatchObject({ key_version: 2 });
  });
});
