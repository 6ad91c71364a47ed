// The compactor against a real engine (chDB): data loaded through the real sink, then
// overwrites / anonymizations / deletions applied, verified and checked from the outside.
import { createHash, randomBytes } from 'node:crypto';
import type { ClickHouseClient } from '@clickhouse/client';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../libs/core/logger.js';
import { toNumber } from '../../libs/clickhouse/client.js';
import { createClickHouseSink } from '../../libs/sink/clickhouse-sink.js';
import { createCompactor, RoundAbortedError, type Compactor } from '../../libs/compactor/compactor.js';
import { anonymousEmail } from '../../libs/compactor/overwrite-plan.js';
import { createIdSeal } from '../../libs/privacy/id-seal.js';
import { subjectHasher } from '../../libs/privacy/subject-hash.js';
import { createOverwriteRegistry } from '../../libs/compactor/overwrite-registry.js';
import type { OverwriteCommand } from '../../libs/events/overwrite-command.js';
import type { CleanEvent } from '../../libs/events/envelope.js';
import { cleanEvent, identifyEvent } from '../support/clickhouse-fixtures.js';
import { queryRows, uniqueTenant, useTestClickHouse } from '../support/chdb.js';
import { grepEveryColumn } from '../support/grep-tables.js';

const ch = useTestClickHouse();
const logger = createLogger({ level: 'silent' });
const idHashKey = randomBytes(32);
const subjectHash = subjectHasher(idHashKey);
const T0 = Date.UTC(2026, 5, 15, 12, 0, 0);
// NOTE: the PII differs per user so one test's deliberate leftovers (e.g. a phone an
// overwrite keeps) never match another test's grep.
const oldPii = (user: string): { email: string; first: string; last: string; phone: string } => ({
  email: `ada.${user}@example.org`,
  first: `Adaline${user}`,
  last: `Lovelacey${user}`,
  phone: `+44 20 7946 ${user}`,
});

/** identify snapshots with PII at three times, tracks in between, and a bystander user. */
function history(tenant: string, user: string): CleanEvent[] {
  const OLD = oldPii(user);
  const traits = { email: JSON.stringify(OLD.email), firstName: JSON.stringify(OLD.first), lastName: JSON.stringify(OLD.last), phone: JSON.stringify(OLD.phone), plan: '"pro"' };
  return [
    identifyEvent({ tenant_id: tenant, event_id: `${user}-i1`, user_id: user, received_at: T0, traits }),
    cleanEvent({ tenant_id: tenant, event_id: `${user}-t1`, user_id: user, received_at: T0 + 1000 }),
    identifyEvent({ tenant_id: tenant, event_id: `${user}-i2`, user_id: user, received_at: T0 + 2000, traits: { email: traits.email, first_name: traits.firstName } }),
    identifyEvent({ tenant_id: tenant, event_id: `${user}-i3`, user_id: user, received_at: Date.UTC(2026, 4, 2), traits }),
    identifyEvent({ tenant_id: tenant, event_id: 'other-i1', user_id: 'bystander', received_at: T0, traits: { email: '"grace@example.org"', firstName: '"Grace"' } }),
  ];
}

async function load(events: CleanEvent[]): Promise<void> {
  const sink = createClickHouseSink({ client: ch().client, logger });
  await sink.write(events);
  await sink.stop();
}

function command(tenant: string, user: string, over: Partial<OverwriteCommand> = {}): OverwriteCommand {
  return {
    request_id: `req-${uniqueTenant('r')}`,
    tenant_id: tenant,
    subject: 'user',
    id: user,
    set: {},
    mode: 'overwrite',
    delete_events: false,
    suppress: false,
    requested_at: Date.now(),
    insert_missing: null,
    ...over,
  };
}

/** Every column of every table holding one of the needles. */
const grepAllTables = (needles: string[]) => grepEveryColumn((sql) => queryRows(ch().client, sql), needles);

async function mutationTexts(): Promise<string[]> {
  const rows = await queryRows<{ command: string }>(ch().client, `SELECT command FROM system.mutations WHERE database = 'default'`);
  return rows.map((r) => r.command);
}

async function userRows(tenant: string, user: string, final: boolean): Promise<Record<string, unknown>[]> {
  return queryRows(ch().client, `SELECT * FROM users ${final ? 'FINAL' : ''} WHERE tenant_id = {t:String} AND user_id = {u:String}`, { t: tenant, u: user });
}

/** The client, with every command `refuse` picks failing as the server would (fault injection around the real engine). */
function refusing(client: ClickHouseClient, refuse: (query: string) => boolean, message: string): ClickHouseClient {
  return new Proxy(client, {
    get(target, prop, receiver) {
      if (prop === 'command') {
        return async (params: { query: string }) => {
          if (refuse(params.query)) throw new Error(`Code: 999. DB::Exception: ${message}`);
          return target.command(params as Parameters<typeof target.command>[0]);
        };
      }
      return Reflect.get(target, prop, receiver) as unknown;
    },
  });
}

describe('compactor', () => {
  let compactor: Compactor;
  const getCompactor = (): Compactor => (compactor ??= createCompactor({ client: ch().client, subjectHash, logger, piiTraits: () => ['phone', 'title'] }));

  it('overwrites email, first and last name everywhere, verifies, and a redelivery does nothing new', async () => {
    const tenant = uniqueTenant();
    await load(history(tenant, 'u1'));
    const OLD = oldPii('u1');
    const NEW = { email: 'ada@new.example', first_name: 'Ada', last_name: 'King' };
    const cmd = command(tenant, 'u1', { set: NEW });
    const t0 = Date.now();
    const [receipt] = await getCompactor().apply([cmd]);
    const ms = Date.now() - t0;
    expect(receipt).toMatchObject({ status: 'verified', request_id: cmd.request_id, reason: null });
    expect(receipt?.rows_rewritten).toEqual({ events: 3, users: 1 });
    // the id is kept only as a keyed hash: not the plain SHA-256 a list of ids would reverse
    expect(receipt?.subject_id_hash).toBe(subjectHash(tenant, 'u1'));
    expect(receipt?.subject_id_hash).not.toBe(createHash('sha256').update('u1').digest('hex'));
    console.info(`overwrite of 1 user verified in ${ms} ms`, getCompactor().lastTimings());

    const final = await userRows(tenant, 'u1', true);
    expect(final).toHaveLength(1);
    expect(final[0]).toMatchObject({ email: NEW.email, first_name: NEW.first_name, last_name: NEW.last_name, phone: OLD.phone, is_deleted: 0 });
    expect(await userRows(tenant, 'u1', false)).toHaveLength(1);

    const traits = await queryRows<{ event_id: string; traits: Record<string, string> }>(
      ch().client,
      `SELECT event_id, traits FROM identify_snapshots WHERE tenant_id = {t:String} AND type = 'identify' ORDER BY event_id`,
      { t: tenant },
    );
    expect(traits.find((r) => r.event_id === 'u1-i1')?.traits).toEqual({
      email: JSON.stringify(NEW.email), firstName: '"Ada"', lastName: '"King"', phone: JSON.stringify(OLD.phone), plan: '"pro"',
    });
    expect(traits.find((r) => r.event_id === 'u1-i2')?.traits).toEqual({ email: JSON.stringify(NEW.email), first_name: '"Ada"' });
    expect(traits.find((r) => r.event_id === 'other-i1')?.traits).toEqual({ email: '"grace@example.org"', firstName: '"Grace"' });

    // acceptance check 1: no old email or name anywhere (every row, not only older ones)
    expect(await grepAllTables([OLD.email, OLD.first, OLD.last])).toEqual([]);
    const texts = (await mutationTexts()).join('\n');
    expect(texts).toContain('joinGet');
    for (const v of [OLD.email, OLD.first, OLD.last, NEW.email, NEW.first_name, NEW.last_name, 'u1', tenant, OLD.phone]) expect(texts).not.toContain(v);

    const stored = await queryRows<Record<string, unknown>>(ch().client, `SELECT * FROM overwrite_requests FINAL WHERE request_id = {r:String}`, { r: cmd.request_id });
    expect(stored[0]).toMatchObject({ status: 'verified', tenant_id: tenant });
    expect(JSON.stringify(stored)).not.toContain('u1');
    // the registry's durable half keeps the id only hashed
    const registered = await queryRows<Record<string, unknown>>(ch().client, `SELECT * FROM overwrite_values WHERE tenant_id = {t:String}`, { t: tenant });
    expect(registered.length).toBeGreaterThan(0);
    expect(JSON.stringify(registered)).not.toContain('"u1"');

    // redelivery: same receipt, no new mutation
    const before = (await mutationTexts()).length;
    const [again] = await getCompactor().apply([cmd]);
    expect(again).toEqual(receipt);
    expect((await mutationTexts()).length).toBe(before);
  });

  it('anonymize replaces the PII attributes and the tenant PII traits with anonymous values', async () => {
    const tenant = uniqueTenant();
    await load(history(tenant, 'u2'));
    const OLD = oldPii('u2');
    const [receipt] = await getCompactor().apply([command(tenant, 'u2', { mode: 'anonymize' })]);
    expect(receipt?.status).toBe('verified');
    const anon = anonymousEmail(tenant, 'u2');
    const final = await userRows(tenant, 'u2', true);
    expect(final[0]).toMatchObject({ email: anon, first_name: null, last_name: null, name: null, phone: null, is_deleted: 0 });
    expect(await userRows(tenant, 'u2', false)).toHaveLength(1);
    const [i1] = await queryRows<{ traits: Record<string, string> }>(ch().client, `SELECT traits FROM identify_snapshots WHERE tenant_id = {t:String} AND event_id = 'u2-i1'`, { t: tenant });
    expect(i1?.traits).toEqual({ email: JSON.stringify(anon), plan: '"pro"' });
    expect(await grepAllTables([OLD.email, OLD.first, OLD.last, OLD.phone])).toEqual([]);
  });

  it('delete removes the user row entirely (no tombstone left) and keeps the events, scrubbed, unless delete_events', async () => {
    const tenant = uniqueTenant();
    await load([...history(tenant, 'keep'), ...history(tenant, 'gone')]);
    const OLD = oldPii('gone');
    const KEPT = oldPii('keep');
    const [a, b] = await getCompactor().apply([
      command(tenant, 'keep', { mode: 'delete' }),
      command(tenant, 'gone', { mode: 'delete', delete_events: true }),
    ]);
    expect(a).toMatchObject({ status: 'verified', rows_rewritten: { events: 3, users: 1 } });
    expect(b).toMatchObject({ status: 'verified', rows_rewritten: { events: 0, events_deleted: 4, users: 1 } }); // the track event too
    for (const u of ['keep', 'gone']) {
      expect(await userRows(tenant, u, true)).toHaveLength(0);
      expect(await userRows(tenant, u, false)).toHaveLength(0); // not even a scrubbed tombstone with the id
    }
    // the kept events hold the anonymous email instead of the old one
    const [kept] = await queryRows<{ email: string }>(ch().client, `SELECT traits['email'] AS email FROM identify_snapshots WHERE tenant_id = {t:String} AND event_id = 'keep-i1'`, { t: tenant });
    expect(kept?.email).toBe(JSON.stringify(anonymousEmail(tenant, 'keep')));
    const counts = await queryRows<{ user_id: string; n: unknown }>(
      ch().client,
      `SELECT user_id, count() AS n FROM events WHERE tenant_id = {t:String} GROUP BY user_id`,
      { t: tenant },
    );
    const n = Object.fromEntries(counts.map((r) => [r.user_id, toNumber(r.n)]));
    expect(n).toEqual({ keep: 4, bystander: 1 });
    expect(await grepAllTables([OLD.email, OLD.first, OLD.last, OLD.phone, KEPT.email, KEPT.first, KEPT.last, KEPT.phone])).toEqual([]);
  });

  it('the registry rewrites a late event received before the request', async () => {
    const tenant = uniqueTenant();
    await load(history(tenant, 'u3'));
    const OLD = oldPii('u3');
    const cmd = command(tenant, 'u3', { set: { email: 'new@u3.example', last_name: null } });
    await getCompactor().apply([cmd]);
    const late = identifyEvent({ tenant_id: tenant, event_id: 'late', user_id: 'u3', received_at: cmd.requested_at - 10, traits: { email: JSON.stringify(OLD.email), lastName: '"X"', plan: '"pro"' } });
    const after = identifyEvent({ tenant_id: tenant, event_id: 'after', user_id: 'u3', received_at: cmd.requested_at + 10, traits: { email: '"later@u3.example"' } });
    const [l, a] = [late, after].map((e) => {
      const r = getCompactor().registry.applyPending(e);
      return r.kind === 'ok' ? r.value : undefined;
    });
    expect(l?.traits).toEqual({ email: '"new@u3.example"', plan: '"pro"' });
    expect(a).toBe(after);
    // the sink stores the rewritten late event; the users row keeps the overwrite
    await load([l as CleanEvent]);
    expect(await grepAllTables([OLD.email])).toEqual([]);
    expect((await userRows(tenant, 'u3', true))[0]).toMatchObject({ email: 'new@u3.example', last_name: null });
  });

  it('replaceId: a sink loading replaced_ids gives a late event the new id until verified, a random one after; a round retried after the ids moved verifies', async () => {
    const tenant = uniqueTenant();
    const USER = 'erin.u8@example.org';
    await load(history(tenant, USER));
    const OLD = oldPii(USER);
    // a dead letter naming the user by id only, and one of someone else
    const sink = createClickHouseSink({ client: ch().client, logger });
    const failed = { error: null, attempts: 1, tenantId: tenant, failedAt: Date.now() - 60_000, stage: 'enrich', reason: 'poison' };
    await sink.writeDeadLetters([
      { ...failed, eventId: 'd1', input: { type: 'track', user_id: USER } },
      { ...failed, eventId: 'd2', input: { type: 'track', user_id: 'someone-else' } },
    ]);
    await sink.stop();
    const idSeal = createIdSeal(idHashKey);
    // fault injection around the real engine: the first erasure of the user's rows (after its
    // history took the new id) is refused once, so the round runs again from the start
    const real = ch().client;
    let refused = 0;
    const failing = refusing(real, (query) => query.startsWith('ALTER TABLE default.users DELETE') && refused++ === 0, 'refused once');
    const NEW_ID = 'anon-3d9c1b2a-5e4f-4a6b-9c8d-7e6f5a4b3c2d';
    const cmd = command(tenant, USER, { mode: 'delete', replacement_id: NEW_ID });
    const late = cleanEvent({ tenant_id: tenant, event_id: 'late', user_id: USER, received_at: cmd.requested_at - 10 });
    // a fleet sink: its own registry, loaded from ClickHouse while the round waits for it
    const sinkRegistry = createOverwriteRegistry({ client: real, subjectHash, idSeal });
    const whileInFlight: (string | null)[] = [];
    const compactor = createCompactor({
      client: failing,
      subjectHash,
      idSeal,
      logger,
      afterRegister: async () => {
        await sinkRegistry.load(0);
        const r = sinkRegistry.applyPending(late);
        whileInFlight.push(r.kind === 'ok' ? r.value.user_id : null);
      },
    });
    const [receipt] = await compactor.apply([cmd]);
    expect(receipt).toMatchObject({ status: 'verified', attempts: 2, rows_rewritten: { ids_replaced: 4, dead_letters_deleted: 1 } });
    expect(whileInFlight).toEqual([NEW_ID, NEW_ID]);
    expect(await queryRows(real, `SELECT event_id, user_id FROM events FINAL WHERE tenant_id = {t:String} ORDER BY event_id`, { t: tenant })).toEqual([
      ...['i1', 'i2', 'i3', 't1'].map((e) => ({ event_id: `${USER}-${e}`, user_id: NEW_ID })),
      { event_id: 'other-i1', user_id: 'bystander' },
    ]);
    await sinkRegistry.refresh();
    const straggler = sinkRegistry.applyPending(late);
    expect(straggler.kind === 'ok' ? straggler.value.user_id : null).toMatch(/^anon-/);
    expect(straggler.kind === 'ok' ? straggler.value.user_id : null).not.toBe(NEW_ID);
    expect(await queryRows(real, `SELECT sealed FROM replaced_ids FINAL WHERE request_id = {r:String}`, { r: cmd.request_id })).toEqual([{ sealed: '' }]);
    // the new id is what the kept history carries, and nothing else holds it; the old PII is gone
    expect((await grepAllTables([NEW_ID])).sort()).toEqual(['events.user_id', 'identify_snapshots.user_id']);
    expect(await grepAllTables([OLD.email, OLD.first])).toEqual([]);
    // the old id: only in the event ids this fixture builds from it, no longer in any id or dead letter
    expect(await grepAllTables([USER])).toEqual(['events.event_id', 'identify_snapshots.event_id']);
    expect(await queryRows(real, `SELECT event_id FROM dead_letters WHERE tenant_id = {t:String}`, { t: tenant })).toEqual([{ event_id: 'd2' }]);
    expect((await mutationTexts()).some((m) => m.includes(USER) || m.includes(NEW_ID))).toBe(false);
  });

  it('a step that keeps failing is retried, then its receipt says failed with a PII-free reason; a redelivery then applies it', async () => {
    const tenant = uniqueTenant();
    await load(history(tenant, 'u5'));
    const OLD = oldPii('u5');
    // fault injection around the real engine: every history rewrite of the trait snapshots is refused
    const real = ch().client;
    let refused = 0;
    const failing = refusing(real, (query) => query.startsWith('ALTER TABLE default.identify_snapshots UPDATE') && ++refused > 0, `refused while reading '${OLD.email}'`);
    const broken = createCompactor({ client: failing, subjectHash, logger, maxAttempts: 2 });
    const cmd = command(tenant, 'u5', { set: { email: 'new@u5.example' } });
    const [failed] = await broken.apply([cmd]);
    expect(refused).toBe(2);
    expect(failed).toMatchObject({ status: 'failed', attempts: 2 });
    expect(failed?.reason).toMatch(/^step failed: /);
    expect(failed?.reason).not.toContain(OLD.email);
    const stored = await queryRows<{ status: string; reason: string }>(real, `SELECT status, reason FROM overwrite_requests FINAL WHERE request_id = {r:String}`, { r: cmd.request_id });
    expect(stored).toEqual([{ status: 'failed', reason: failed?.reason }]);

    // the same command again (a redelivery or a retry by the operator) on a healthy engine
    const [ok] = await getCompactor().apply([cmd]);
    expect(ok).toMatchObject({ status: 'verified', attempts: 3 });
    expect(await grepAllTables([OLD.email])).toEqual([]);
  });

  it('insert_missing creates the row of a user with no stored row; without it nothing is written', async () => {
    const tenant = uniqueTenant();
    const [skipped, inserted] = await getCompactor().apply([
      command(tenant, 'ghost', { set: { email: 'ghost@new.example' } }),
      command(tenant, 'newbie', { set: { email: 'newbie@new.example', first_name: 'New', plan: 'trial' }, insert_missing: true }),
    ]);
    expect(skipped).toMatchObject({ status: 'verified', rows_rewritten: { events: 0, users: 0 } });
    expect(inserted).toMatchObject({ status: 'verified', rows_rewritten: { events: 0, users: 1 } });
    expect(await userRows(tenant, 'ghost', true)).toEqual([]);
    expect(await userRows(tenant, 'newbie', true)).toEqual([
      expect.objectContaining({ email: 'newbie@new.example', first_name: 'New', last_name: null, traits: { plan: '"trial"' }, is_deleted: 0 }),
    ]);
  });

  it('deletes the dead letters that hold an old value (in the input or in the unreadable record bytes) and keeps the others', async () => {
    const tenant = uniqueTenant();
    await load(history(tenant, 'u6'));
    const OLD = oldPii('u6');
    const sink = createClickHouseSink({ client: ch().client, logger });
    // NOTE: recent: dead letters older than 30 days are gone by TTL anyway
    const failed = { error: null, attempts: 1, tenantId: tenant, failedAt: Date.now() - 60_000 };
    await sink.writeDeadLetters([
      // the stage's input, as read (traits values are JSON text inside it)
      { ...failed, stage: 'enrich', reason: 'poison', eventId: 'd1', input: { type: 'identify', user_id: 'u6', traits: { email: JSON.stringify(OLD.email) } } },
      // a record that could not be read keeps its bytes
      { ...failed, stage: 'decode', reason: 'undecodable', eventId: null, unreadable: Buffer.from(`\u0000\u0012${OLD.first}\u0002`) },
      { ...failed, stage: 'enrich', reason: 'unknown tenant', eventId: 'd3', input: { type: 'track', user_id: 'someone-else' } },
    ]);
    await sink.stop();
    const cmd = command(tenant, 'u6', { set: { email: 'new@u6.example', first_name: 'Ada' } });
    const [receipt] = await getCompactor().apply([cmd]);
    expect(receipt).toMatchObject({ status: 'verified', rows_rewritten: { dead_letters_deleted: 2 } });
    const left = await queryRows<{ event_id: string | null }>(ch().client, `SELECT event_id FROM dead_letters WHERE tenant_id = {t:String}`, { t: tenant });
    expect(left).toEqual([{ event_id: 'd3' }]);
    expect(await grepAllTables([OLD.email, OLD.first])).toEqual([]);
    expect((await mutationTexts()).join('\n')).not.toContain(OLD.first);
  });

  it('user and account overwrites keep to their own traits on group calls; a deleted user can be deleted again', async () => {
    const tenant = uniqueTenant();
    await load([
      identifyEvent({ tenant_id: tenant, event_id: 'g-i1', user_id: 'u7', account_id: 'acme', received_at: T0, traits: { name: '"Robert Old7"', title: '"CTO7"' } }),
      cleanEvent({ tenant_id: tenant, event_id: 'g-g1', type: 'group', name: null, user_id: 'u7', account_id: 'acme', received_at: T0 + 1, traits: { name: '"Acme Inc7"' }, account_traits: { name: '"Acme Inc7"' } }),
    ]);
    // the user's name: the identify changes, the group call (the account's name) does not
    const [user] = await getCompactor().apply([command(tenant, 'u7', { set: { name: 'Robert New7' } })]);
    expect(user?.status).toBe('verified');
    const traitsOf = async (id: string) =>
      (await queryRows<{ traits: Record<string, string>; account_traits: Record<string, string> }>(ch().client, `SELECT traits, account_traits FROM identify_snapshots WHERE tenant_id = {t:String} AND event_id = {e:String}`, { t: tenant, e: id }))[0];
    expect((await traitsOf('g-g1'))?.traits).toEqual({ name: '"Acme Inc7"' });
    expect((await traitsOf('g-i1'))?.traits['name']).toBe('"Robert New7"');

    // the account's name: the group call's traits and account traits change, the user's identify does not
    const [account] = await getCompactor().apply([command(tenant, 'acme', { subject: 'account', set: { name: 'Acme Ltd7' } })]);
    expect(account?.status).toBe('verified');
    expect(await traitsOf('g-g1')).toEqual({ traits: { name: '"Acme Ltd7"' }, account_traits: { name: '"Acme Ltd7"' } });
    expect((await traitsOf('g-i1'))?.traits['name']).toBe('"Robert New7"');

    // a PII trait the tenant marked that lives in a column (title) is scrubbed by anonymize
    const [anon] = await getCompactor().apply([command(tenant, 'u7', { mode: 'anonymize' })]);
    expect(anon?.status).toBe('verified');
    expect(await grepAllTables(['CTO7', 'Robert Old7', 'Acme Inc7'])).toEqual([]);

    // deleting twice (a redelivery after a crash, or a second erasure): both verified
    const [first] = await getCompactor().apply([command(tenant, 'u7', { mode: 'delete' })]);
    const [second] = await getCompactor().apply([command(tenant, 'u7', { mode: 'delete', delete_events: true })]);
    expect([first?.status, second?.status]).toEqual(['verified', 'verified']);
    expect(await userRows(tenant, 'u7', true)).toEqual([]);
  }, 180_000);

  it('a guard that aborts (the fleet lost its lease) stops the batch with no receipt beyond pending', async () => {
    const tenant = uniqueTenant();
    const aborting = createCompactor({ client: ch().client, subjectHash, logger, guard: () => {
      throw new RoundAbortedError('lease lost');
    } });
    const cmd = command(tenant, 'u8', { set: { email: 'x@u8.example' } });
    await expect(aborting.apply([cmd])).rejects.toBeInstanceOf(RoundAbortedError);
    const stored = await queryRows<{ status: string }>(ch().client, `SELECT status FROM overwrite_requests FINAL WHERE request_id = {r:String}`, { r: cmd.request_id });
    expect(stored).toEqual([{ status: 'pending' }]);
  });
});
