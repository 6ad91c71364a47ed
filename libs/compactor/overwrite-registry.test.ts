import { describe, expect, it } from 'vitest';
import { cleanEvent, identifyEvent } from '../../test/support/clickhouse-fixtures.js';
import { randomBytes } from 'node:crypto';
import type { CleanEvent } from '../events/envelope.js';
import { createOverwriteRegistry, type OverwriteRegistry } from './overwrite-registry.js';
import { subjectHasher } from '../privacy/subject-hash.js';

const T = Date.UTC(2026, 10, 1, 12);

const subjectHash = subjectHasher(randomBytes(32));
const h = (id: string) => subjectHash('t', id);

/** The events the registry keeps, as the sink stage would store them. */
function kept(r: OverwriteRegistry, events: readonly CleanEvent[]): CleanEvent[] {
  return events.flatMap((e) => {
    const out = r.applyPending(e);
    return out.kind === 'ok' ? [out.value] : [];
  });
}

function registry() {
  const r = createOverwriteRegistry({ subjectHash });
  r.record([
    { request_id: 'r1', tenant_id: 't', subject: 'user', id_hash: h('u1'), requested_at: T, rewrite: { repl: { email: '"new@x.io"' }, drop: ['lastName'] }, delete_events: false },
    { request_id: 'r2', tenant_id: 't', subject: 'user', id_hash: h('gone'), requested_at: T, rewrite: { repl: {}, drop: [] }, delete_events: true },
    { request_id: 'r3', tenant_id: 't', subject: 'account', id_hash: h('acme'), requested_at: T, rewrite: { repl: { name: '"Acme Ltd"' }, drop: [] }, delete_events: false },
  ]);
  r.recordSuppressions([{ tenant_id: 't', subject_id_hash: h('quiet'), request_id: 'r4', requested_at: T }]);
  return r;
}

describe('overwrite registry', () => {
  it.each<{ name: string; at: number; user: string; traits: Record<string, string>; want: Record<string, string> }>([
    { name: 'rewrites traits of an event received before the request', at: T - 1, user: 'u1', traits: { email: '"old@x.io"', lastName: '"Old"', plan: '"pro"' }, want: { email: '"new@x.io"', plan: '"pro"' } },
    { name: 'at the request instant counts as before', at: T, user: 'u1', traits: { email: '"old@x.io"' }, want: { email: '"new@x.io"' } },
    { name: 'leaves events received after the request alone', at: T + 1, user: 'u1', traits: { email: '"later@x.io"' }, want: { email: '"later@x.io"' } },
    { name: 'leaves other users alone', at: T - 1, user: 'u2', traits: { email: '"old@x.io"' }, want: { email: '"old@x.io"' } },
  ])('$name', ({ at, user, traits, want }) => {
    const [out] = kept(registry(), [identifyEvent({ tenant_id: 't', user_id: user, received_at: at, traits })]);
    expect(out?.traits).toEqual(want);
  });

  it('drops earlier events of a user whose events were deleted, keeps later ones', () => {
    const r = registry();
    const before = cleanEvent({ tenant_id: 't', user_id: 'gone', event_id: 'b', received_at: T - 5 });
    const after = cleanEvent({ tenant_id: 't', user_id: 'gone', event_id: 'a', received_at: T + 5 });
    expect(kept(r, [before, after]).map((e) => e.event_id)).toEqual(['a']);
  });

  it('rewrites account traits, and a group call’s traits, of an account', () => {
    const group = cleanEvent({ tenant_id: 't', type: 'group', account_id: 'acme', received_at: T - 1, traits: { name: '"Acme Old"' }, account_traits: { name: '"Acme Old"' } });
    const [out] = kept(registry(), [group]);
    expect(out?.traits).toEqual({ name: '"Acme Ltd"' });
    expect(out?.account_traits).toEqual({ name: '"Acme Ltd"' });
  });

  it('drops and counts later events of a suppressed user; earlier ones and other tenants pass', async () => {
    const r = registry();
    const events = [
      cleanEvent({ tenant_id: 't', user_id: 'quiet', event_id: 'late-1', received_at: T + 1 }),
      cleanEvent({ tenant_id: 't', user_id: 'quiet', event_id: 'late-2', received_at: T + 86_400_000 }),
      cleanEvent({ tenant_id: 't', user_id: 'quiet', event_id: 'early', received_at: T - 1 }),
      cleanEvent({ tenant_id: 'other', user_id: 'quiet', event_id: 'elsewhere', received_at: T + 1 }),
    ];
    expect(kept(r, events).map((e) => e.event_id)).toEqual(['early', 'elsewhere']);
    // without a client the counts are only taken (and logged), one per request and day
    expect(await r.flushSuppressedCounts()).toBe(2);
    expect(await r.flushSuppressedCounts()).toBe(0);
  });

  it('leaves a group call’s traits (the account’s) alone when rewriting its user', () => {
    const group = cleanEvent({ tenant_id: 't', type: 'group', user_id: 'u1', account_id: 'other', received_at: T - 1, traits: { email: '"billing@acme.io"' } });
    expect(kept(registry(), [group])[0]).toBe(group);
  });

  it('returns the same objects when nothing applies', () => {
    const e = cleanEvent({ tenant_id: 't', user_id: 'u9' });
    expect(kept(registry(), [e])[0]).toBe(e);
  });

  describe('replaced ids (replaceId)', () => {
    const NEW_ID = 'anon-0e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b';
    function replacing() {
      const r = registry();
      r.record([{ request_id: 'r5', tenant_id: 't', subject: 'user', id_hash: h('erin@x.io'), requested_at: T, rewrite: { repl: {}, drop: ['firstName'] }, delete_events: false }]);
      r.recordReplacements([{ request_id: 'r5', tenant_id: 't', id_hash: h('erin@x.io'), new_id: NEW_ID }]);
      return r;
    }

    it('gives an event received before the request the new id, after it its own, and an alias naming the user as previous id the new one', () => {
      const r = replacing();
      const events = [
        identifyEvent({ tenant_id: 't', user_id: 'erin@x.io', event_id: 'before', received_at: T - 1, traits: { firstName: '"Erin"', plan: '"pro"' } }),
        cleanEvent({ tenant_id: 't', user_id: 'erin@x.io', event_id: 'after', received_at: T + 1 }),
        cleanEvent({ tenant_id: 't', type: 'alias', user_id: 'someone', previous_id: 'erin@x.io', event_id: 'alias', received_at: T - 1 }),
        cleanEvent({ tenant_id: 't', user_id: 'u2', event_id: 'other', received_at: T - 1 }),
      ];
      expect(kept(r, events).map((e) => [e.event_id, e.user_id, e.previous_id, e.traits])).toEqual([
        ['before', NEW_ID, null, { plan: '"pro"' }],
        ['after', 'erin@x.io', null, {}],
        ['alias', 'someone', NEW_ID, {}],
        ['other', 'u2', null, {}],
      ]);
    });

    it('once forgotten (verified), a straggler takes a random id of its own: never the old one, never the forgotten one', () => {
      const r = replacing();
      r.forgetReplacements(['r5']);
      // a stale read of replaced_ids does not bring it back
      r.recordReplacements([{ request_id: 'r5', tenant_id: 't', id_hash: h('erin@x.io'), new_id: NEW_ID }]);
      const straggler = () => kept(r, [cleanEvent({ tenant_id: 't', user_id: 'erin@x.io', received_at: T - 1 })])[0]?.user_id;
      const [a, b] = [straggler(), straggler()];
      expect(a).toMatch(/^anon-[0-9a-f-]{36}$/);
      expect([NEW_ID, 'erin@x.io', b]).not.toContain(a);
    });
  });
});
