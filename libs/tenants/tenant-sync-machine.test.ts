import { describe, expect, it } from 'vitest';
import { DEFAULT_FLAGS } from './flags.js';
import type { TenantRecord } from './tenant-cache.js';
import { freezeTenant } from './tenant-store.js';
import { createTenantSyncMachine, type SyncEffect, type SyncPlan, type SyncReply, type TenantSyncMachine, type TenantSyncOptions } from './tenant-sync-machine.js';

const STALE = 1_000;
const err = { name: 'Error', message: 'connect ECONNREFUSED' };

function rec(tenantId: string, rev: number, keyVersion = 1): TenantRecord {
  return { tenantId, decoded: { ok: true, rev, tenant: freezeTenant({ tenantId, createdAt: 1, flags: { ...DEFAULT_FLAGS, keyVersion }, keys: { writeKeys: [], apiKeys: [] } }) } };
}
function bad(tenantId: string, rev: number): TenantRecord {
  return { tenantId, decoded: { ok: false, rev, problem: 'flags: not valid JSON' } };
}
const full = (counter: number, records: TenantRecord[]): SyncReply => ({ counter, full: true, records });
const delta = (counter: number, records: TenantRecord[]): SyncReply => ({ counter, full: false, records });
const kinds = (effects: readonly SyncEffect[]): string[] => effects.map((e) => e.kind);

function machine(overrides: Partial<TenantSyncOptions> = {}): TenantSyncMachine {
  return createTenantSyncMachine({ staleAfterMs: STALE, mainReady: true, subscriber: false, ...overrides });
}

/** Runs one round of the sync loop as the adapter does; returns the plan and the reply's effects. */
function round(m: TenantSyncMachine, now: number, reply: SyncReply | undefined): { plan: SyncPlan | undefined; effects: SyncEffect[] } {
  const plan = m.beginRound(now);
  return { plan, effects: plan === undefined ? [] : m.syncReplied(plan, reply, now) };
}

/** A machine that has completed its first full load at t = 0 with `records`. */
function loaded(records: TenantRecord[] = [rec('acme', 1)], counter = 1, overrides: Partial<TenantSyncOptions> = {}): TenantSyncMachine {
  const m = machine(overrides);
  m.start();
  if (overrides.subscriber) m.subscribed();
  round(m, 0, full(counter, records));
  m.shouldRunAgain();
  m.syncsEnded();
  return m;
}

describe('tenant sync machine: first load', () => {
  it('starts a full load when the main connection is ready, and is unavailable until it lands', () => {
    const m = machine();
    expect(m.available(0)).toBe(false);
    expect(kinds(m.start())).toEqual(['start-syncing']);
    const plan = m.beginRound(10);
    expect(plan).toEqual({ from: -1, startedAt: 10, epoch: 0 });
    expect(m.available(10)).toBe(false);
    if (plan === undefined) return;
    expect(kinds(m.syncReplied(plan, full(3, [rec('acme', 3)]), 20))).toEqual(['loaded', 'available']);
    expect(m.available(20)).toBe(true);
    expect(m.cache.tenant('acme')?.flags).toEqual(DEFAULT_FLAGS);
    expect(m.shouldRunAgain()).toBe(false);
  });

  it('waits for the main connection when it is not ready yet', () => {
    const m = machine({ mainReady: false });
    expect(m.start()).toEqual([]);
    expect(kinds(m.mainReady())).toEqual(['start-syncing']);
    expect(m.beginRound(0)).toEqual({ from: -1, startedAt: 0, epoch: 1 });
  });

  it('plans no sync while the main connection is down', () => {
    const m = machine({ mainReady: false });
    m.pollTick();
    expect(m.beginRound(0)).toBeUndefined();
    expect(m.shouldRunAgain()).toBe(false);
  });

  it('with a subscriber, is unavailable until subscribed, and subscribing discards a load already running', () => {
    const m = machine({ subscriber: true });
    m.start();
    const early = m.beginRound(0);
    if (early === undefined) throw new Error('no plan');
    expect(m.subscribed()).toEqual([]); // folded into the running loop
    expect(kinds(m.syncReplied(early, full(1, [rec('acme', 1)]), 5))).toEqual([]);
    expect(m.available(5)).toBe(false);
    expect(m.shouldRunAgain()).toBe(true);
    const { plan, effects } = round(m, 6, full(1, [rec('acme', 1)]));
    expect(plan).toEqual({ from: -1, startedAt: 6, epoch: 1 });
    expect(kinds(effects)).toEqual(['loaded', 'available']);
    expect(m.available(6)).toBe(true);
  });

  it('an unexpected reply applies nothing and leaves it unavailable', () => {
    const m = machine();
    m.start();
    const { effects } = round(m, 0, undefined);
    expect(kinds(effects)).toEqual(['unexpected-reply']);
    expect(m.available(0)).toBe(false);
    expect(m.cache.size).toBe(0);
    // the next round still asks for a full load
    expect(m.beginRound(1)?.from).toBe(-1);
  });
});

describe('tenant sync machine: freshness (fail closed when stale)', () => {
  it('answers until staleAfterMs after the start of the last confirmed sync, not its end', () => {
    const m = machine();
    m.start();
    const plan = m.beginRound(0);
    if (plan === undefined) throw new Error('no plan');
    m.syncReplied(plan, full(1, [rec('acme', 1)]), 900);
    expect(m.available(STALE)).toBe(true);
    expect(m.available(STALE + 1)).toBe(false);
  });

  it('an incremental sync within the epoch makes a stale store available again', () => {
    const m = loaded();
    expect(m.available(STALE + 500)).toBe(false);
    expect(kinds(m.pollTick())).toEqual(['start-syncing']);
    const { plan, effects } = round(m, STALE + 500, delta(1, []));
    expect(plan?.from).toBe(1);
    expect(kinds(effects)).toEqual(['available']);
    expect(m.available(STALE + 500)).toBe(true);
  });

  it('a reply that lands after staleAfterMs is applied but does not wake waiters', () => {
    const m = loaded();
    m.pollTick();
    const plan = m.beginRound(100);
    if (plan === undefined) throw new Error('no plan');
    expect(kinds(m.syncReplied(plan, delta(2, [rec('acme', 2, 9)]), 100 + STALE + 1))).toEqual([]);
    expect(m.cache.tenant('acme')?.flags.keyVersion).toBe(9);
    expect(m.available(100 + STALE + 1)).toBe(false);
  });

  it('a failing sync leaves it stale; the failure is reported once per run, the recovery once', () => {
    const m = loaded();
    m.pollTick();
    expect(m.beginRound(500)?.from).toBe(1);
    expect(m.syncFailed(err)).toEqual([{ kind: 'sync-failing', err }]);
    expect(m.shouldRunAgain()).toBe(false);
    m.syncsEnded();
    m.pollTick();
    m.beginRound(750);
    expect(m.syncFailed(err)).toEqual([]);
    m.syncsEnded();
    expect(m.available(STALE + 1)).toBe(false);
    m.pollTick();
    const { effects } = round(m, 1_250, delta(1, []));
    expect(kinds(effects)).toEqual(['sync-recovered', 'available']);
    m.syncsEnded();
    m.pollTick();
    m.beginRound(1_500);
    expect(kinds(m.syncFailed(err))).toEqual(['sync-failing']);
  });
});

describe('tenant sync machine: one sync at a time', () => {
  it('folds requests made while a sync runs into one more round', () => {
    const m = loaded();
    expect(kinds(m.pollTick())).toEqual(['start-syncing']);
    const plan = m.beginRound(10);
    expect(m.pollTick()).toEqual([]);
    expect(m.message('{"tenantId":"acme","rev":5}')).toEqual([]);
    expect(m.pollTick()).toEqual([]);
    if (plan === undefined) throw new Error('no plan');
    m.syncReplied(plan, delta(5, [rec('acme', 5)]), 11);
    expect(m.shouldRunAgain()).toBe(true);
    expect(m.beginRound(12)?.from).toBe(5);
    m.syncReplied(plan, delta(5, []), 13);
    expect(m.shouldRunAgain()).toBe(false);
    m.syncsEnded();
    expect(kinds(m.pollTick())).toEqual(['start-syncing']);
  });

  it('a full request made while an incremental sync runs makes the next round full', () => {
    const m = loaded();
    m.pollTick();
    const plan = m.beginRound(10);
    m.mainReady(); // a reconnect of main: new epoch, full wanted
    if (plan === undefined) throw new Error('no plan');
    expect(m.syncReplied(plan, delta(1, []), 11)).toEqual([]);
    expect(m.shouldRunAgain()).toBe(true);
    expect(m.beginRound(12)?.from).toBe(-1);
  });
});

describe('tenant sync machine: connection loss and resync', () => {
  it.each([
    { connection: 'main' as const, event: 'close' as const },
    { connection: 'main' as const, event: 'reconnecting' as const },
    { connection: 'subscriber' as const, event: 'close' as const },
    { connection: 'subscriber' as const, event: 'reconnecting' as const },
  ])('$connection $event: fails closed at once, reported once', ({ connection, event }) => {
    const m = loaded([rec('acme', 1)], 1, { subscriber: true });
    expect(m.available(10)).toBe(true);
    expect(m.connectionLost(connection, event, 10)).toEqual([{ kind: 'flags-lost', connection, event }]);
    expect(m.available(10)).toBe(false);
    expect(m.connectionLost(connection, event, 11)).toEqual([]);
    // the cache is kept (write keys keep serving) but flags do not answer
    expect(m.cache.tenant('acme')).toBeDefined();
  });

  it("'end' while open means the client gave up; after close it is silent", () => {
    const m = loaded();
    expect(kinds(m.connectionLost('main', 'end', 10))).toEqual(['flags-lost', 'gave-up']);
    expect(kinds(m.connectionLost('subscriber', 'end', 11))).toEqual(['gave-up']);
    m.close();
    expect(m.connectionLost('main', 'end', 12)).toEqual([]);
  });

  it('discards a sync that started before the connection changed, and retries', () => {
    const m = loaded();
    m.pollTick();
    const plan = m.beginRound(10);
    m.connectionLost('main', 'close', 11);
    if (plan === undefined) throw new Error('no plan');
    expect(m.syncReplied(plan, delta(9, [rec('acme', 9, 9)]), 12)).toEqual([]);
    expect(m.cache.tenant('acme')?.flags.keyVersion).toBe(1);
    expect(m.shouldRunAgain()).toBe(true);
    // main is down: the retried round plans nothing and the loop ends
    expect(m.beginRound(13)).toBeUndefined();
    expect(m.shouldRunAgain()).toBe(false);
    m.syncsEnded();
  });

  it('after main reconnects only a full load started in the new epoch restores it', () => {
    const m = loaded([rec('acme', 1)], 1);
    m.connectionLost('main', 'reconnecting', 10);
    expect(kinds(m.pollTick())).toEqual(['start-syncing']);
    expect(m.beginRound(11)).toBeUndefined(); // main still down
    m.syncsEnded();
    expect(kinds(m.mainReady())).toEqual(['start-syncing']);
    // a reply of the new epoch that is not a full load does not make it healthy
    const plan = m.beginRound(20);
    expect(plan?.from).toBe(-1);
    if (plan === undefined) throw new Error('no plan');
    expect(m.syncReplied(plan, delta(1, []), 21)).toEqual([]);
    expect(m.available(21)).toBe(false);
    // the full load brings the changes missed while away
    const effects = m.syncReplied(plan, full(4, [rec('acme', 4, 4)]), 22);
    expect(kinds(effects)).toEqual(['loaded', 'available']);
    expect(m.available(22)).toBe(true);
    expect(m.cache.tenant('acme')?.flags.keyVersion).toBe(4);
  });

  it('a resubscribe reloads in full although main stayed up', () => {
    const m = loaded([rec('acme', 1)], 1, { subscriber: true });
    m.connectionLost('subscriber', 'reconnecting', 10);
    expect(kinds(m.pollTick())).toEqual(['start-syncing']);
    // polls keep the cache current meanwhile, but it stays closed without the subscription
    const { effects } = round(m, 11, delta(2, [rec('acme', 2, 2)]));
    expect(effects).toEqual([]);
    expect(m.cache.tenant('acme')?.flags.keyVersion).toBe(2);
    expect(m.available(11)).toBe(false);
    m.syncsEnded();
    expect(kinds(m.subscribed())).toEqual(['start-syncing']);
    const resync = round(m, 12, full(2, [rec('acme', 2, 2)]));
    expect(resync.plan?.from).toBe(-1);
    expect(kinds(resync.effects)).toEqual(['loaded', 'available']);
  });

  it('a counter that went back (Redis reset) is answered by a full load, from whose counter polls continue', () => {
    const m = loaded([rec('acme', 7)], 8);
    m.pollTick();
    const { plan, effects } = round(m, 100, full(2, [rec('fresh', 2)]));
    expect(plan?.from).toBe(8);
    expect(kinds(effects)).toEqual(['available']); // same epoch: not a new "loaded"
    expect(m.cache.tenant('fresh')).toBeDefined();
    m.syncsEnded();
    m.pollTick();
    expect(m.beginRound(101)?.from).toBe(2);
  });
});

describe('tenant sync machine: change messages', () => {
  it.each([
    { name: 'a rev after the cursor', text: '{"tenantId":"acme","rev":6}', effects: ['start-syncing'] },
    { name: 'a rev at the cursor', text: '{"tenantId":"acme","rev":5}', effects: [] },
    { name: 'a rev before the cursor', text: '{"tenantId":"acme","rev":2}', effects: [] },
    { name: 'not JSON', text: '{"tenantId":', effects: ['malformed-message', 'start-syncing'] },
    { name: 'the wrong shape', text: '{"tenantId":"acme","rev":"6"}', effects: ['malformed-message', 'start-syncing'] },
  ])('$name → $effects', ({ text, effects }) => {
    const m = loaded([rec('acme', 5)], 5);
    expect(kinds(m.message(text))).toEqual(effects);
    if (effects.includes('start-syncing')) expect(m.beginRound(10)?.from).toBe(5);
  });
});

describe('tenant sync machine: records', () => {
  it('an invalid record fails only its tenant closed and is reported when taken', () => {
    const m = machine();
    m.start();
    const { effects } = round(m, 0, full(2, [rec('acme', 1), bad('broken', 2)]));
    expect(effects).toEqual([{ kind: 'invalid-record', tenantId: 'broken', rev: 2, problem: 'flags: not valid JSON' }, { kind: 'loaded', tenants: 2 }, { kind: 'available' }]);
    expect(m.available(0)).toBe(true);
    expect(m.cache.tenant('broken')).toBeUndefined();
    expect(m.cache.tenant('acme')).toBeDefined();
    m.syncsEnded();
    // an incremental sync reports it again only at a newer rev
    m.pollTick();
    expect(kinds(round(m, 1, delta(3, [bad('broken', 2), bad('acme', 3)])).effects)).toEqual(['invalid-record', 'available']);
    expect(m.cache.tenant('acme')).toBeUndefined();
  });

  it('a local write is read at once; an older one or a later snapshot that predates it leaves it', () => {
    const m = loaded([rec('acme', 1)], 1);
    expect(m.localWrite(rec('acme', 3, 3))).toEqual([]);
    expect(m.cache.tenant('acme')?.flags.keyVersion).toBe(3);
    expect(m.localWrite(rec('acme', 2, 2))).toEqual([]);
    expect(m.cache.tenant('acme')?.flags.keyVersion).toBe(3);
    expect(kinds(m.localWrite(bad('other', 4)))).toEqual(['invalid-record']);
    m.mainReady();
    round(m, 10, full(2, [rec('acme', 2, 2)]));
    expect(m.cache.tenant('acme')?.flags.keyVersion).toBe(3);
  });

  it('absentSince: the last confirmed sync start for an uncached tenant, only while available', () => {
    const m = loaded([rec('acme', 1)], 1);
    expect(m.absentSince('nobody', 10)).toBe(0);
    expect(m.absentSince('acme', 10)).toBeUndefined();
    expect(m.absentSince('nobody', STALE + 1)).toBeUndefined();
    m.pollTick();
    round(m, 600, delta(1, []));
    expect(m.absentSince('nobody', 700)).toBe(600);
  });
});

describe('tenant sync machine: close', () => {
  it('closes for good: unavailable, no new syncs, in-flight replies discarded without retry', () => {
    const m = loaded([rec('acme', 1)], 1, { subscriber: true });
    m.pollTick();
    const plan = m.beginRound(10);
    m.close();
    expect(m.closed).toBe(true);
    expect(m.available(10)).toBe(false);
    if (plan === undefined) throw new Error('no plan');
    expect(m.syncReplied(plan, delta(2, [rec('acme', 2, 2)]), 11)).toEqual([]);
    expect(m.cache.tenant('acme')?.flags.keyVersion).toBe(1);
    expect(m.shouldRunAgain()).toBe(false);
    m.syncsEnded();
    expect(m.pollTick()).toEqual([]);
    expect(m.mainReady()).toEqual([]);
    expect(m.subscribed()).toEqual([]);
    expect(m.message('{"tenantId":"acme","rev":9}')).toEqual([]);
    expect(m.syncFailed(err)).toEqual([]);
  });
});
