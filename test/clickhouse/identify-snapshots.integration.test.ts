// The trait snapshots' own table (schemas/clickhouse/0010_identify_snapshots.sql) on a real engine
// (chDB): the sink writes it and leaves the maps in `events` empty; events_with_traits and the
// shipped views answer as `events` did when it held the maps; an attribute overwrite rewrites
// identify_snapshots, users and accounts and leaves every part of `events` as it was; erasures
// remove the snapshots too; rows written before 0010 (maps in `events`) are moved out by a round.
// NOTE: the tests run in order and share one engine: the ones that write maps into `events` the
// old way come last, as from then on every round rewrites `events` too.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { toNumber } from '../../libs/clickhouse/client.js';
import { eventTuple, insertEventTuples } from '../../libs/clickhouse/tables/events.js';
import { IDENTIFY_SNAPSHOT_SELECT, parseIdentifySnapshotRow } from '../../libs/clickhouse/tables/identify-snapshots.js';
import { createCompactor, type Compactor } from '../../libs/compactor/compactor.js';
import { eventsHoldSnapshots } from '../../libs/compactor/history-scans.js';
import { createLogger } from '../../libs/core/logger.js';
import type { CleanEvent } from '../../libs/events/envelope.js';
import type { OverwriteCommand } from '../../libs/events/overwrite-command.js';
import { subjectHasher } from '../../libs/privacy/subject-hash.js';
import { createClickHouseSink } from '../../libs/sink/clickhouse-sink.js';
import { toEventRow } from '../../libs/sink/event-rows.js';
import { cleanEvent, identifyEvent } from '../support/clickhouse-fixtures.js';
import { queryRows, uniqueTenant, useTestClickHouse } from '../support/chdb.js';
import { grepEveryColumn } from '../support/grep-tables.js';

const ch = useTestClickHouse();
const logger = createLogger({ level: 'silent' });
const subjectHash = subjectHasher(randomBytes(32));
const T0 = Date.UTC(2026, 5, 15, 12, 0, 0);
const VIEWS = ['daily_active_users', 'sessions', 'top_pages', 'events_by_account', 'events_by_country'];

const pii = (tag: string) => ({ email: `snap.${tag}@example.org`, first: `Snapfirst${tag}`, last: `Snaplast${tag}`, account: `Snapcorp${tag}` });

/** A user's history: two identifies (one redelivered later), page views, a track, a group call. */
function history(tenant: string, tag: string): CleanEvent[] {
  const OLD = pii(tag);
  const traits = { email: JSON.stringify(OLD.email), firstName: JSON.stringify(OLD.first), lastName: JSON.stringify(OLD.last), plan: '"pro"' };
  const ctx = cleanEvent().context;
  const user = `u-${tag}`;
  const i1 = identifyEvent({ tenant_id: tenant, event_id: `${tag}-i1`, user_id: user, account_id: 'acc-1', session_id: 's1', received_at: T0, traits });
  return [
    cleanEvent({ tenant_id: tenant, event_id: `${tag}-p1`, type: 'page', anonymous_id: `anon-${tag}`, session_id: 's1', received_at: T0 - 60_000, context: { ...ctx, path: '/' } }),
    i1,
    cleanEvent({ tenant_id: tenant, event_id: `${tag}-t1`, user_id: user, account_id: 'acc-1', session_id: 's1', received_at: T0 + 1000 }),
    cleanEvent({ tenant_id: tenant, event_id: `${tag}-p2`, type: 'page', user_id: user, session_id: 's2', received_at: T0 + 86_400_000, context: { ...ctx, path: '/pricing' }, geo: null }),
    identifyEvent({ tenant_id: tenant, event_id: `${tag}-i2`, user_id: user, received_at: T0 + 2000, traits: { email: traits.email } }),
    cleanEvent({ tenant_id: tenant, event_id: `${tag}-g1`, type: 'group', name: null, user_id: user, account_id: 'acc-1', received_at: T0 + 3000, account_traits: { name: JSON.stringify(OLD.account) } }),
    // a redelivery of the first identify, received later
    { ...i1, received_at: T0 + 5000, sent_at: T0 + 4950, occurred_at: T0 + 4750 },
  ];
}

async function sinkWrite(events: CleanEvent[]): Promise<void> {
  const sink = createClickHouseSink({ client: ch().client, logger });
  await sink.write(events);
  await sink.stop();
}

/** Events as a sink before migration 0010 wrote them: the trait maps in `events`. */
async function legacyWrite(events: CleanEvent[]): Promise<void> {
  await insertEventTuples(ch().client, events.map((e) => eventTuple({ ...toEventRow(e), traits: e.traits, account_traits: e.account_traits })));
}

function command(tenant: string, over: Partial<OverwriteCommand> & Pick<OverwriteCommand, 'id'>): OverwriteCommand {
  return {
    request_id: `req-${uniqueTenant('r')}`,
    tenant_id: tenant,
    subject: 'user',
    set: {},
    mode: 'overwrite',
    delete_events: false,
    suppress: false,
    requested_at: Date.now(),
    insert_missing: null,
    ...over,
  };
}

/** A tenant's rows of a table or view, without the tenant column, in a stable order. */
async function rowsOf(from: string, tenant: string, order = 'ALL'): Promise<Record<string, unknown>[]> {
  return queryRows(ch().client, `SELECT * EXCEPT tenant_id FROM ${from} WHERE tenant_id = {t:String} ORDER BY ${order}`, { t: tenant });
}

async function viewResults(tenant: string): Promise<Record<string, Record<string, unknown>[]>> {
  const out: Record<string, Record<string, unknown>[]> = {};
  for (const v of VIEWS) out[v] = await rowsOf(v, tenant);
  return out;
}

/** Active parts of `events`, with what would change if a mutation or merge touched them. */
async function eventsParts(): Promise<string[]> {
  const rows = await queryRows<{ p: string }>(
    ch().client,
    `SELECT concat(name, ' ', toString(modification_time), ' ', toString(bytes_on_disk)) AS p FROM system.parts
     WHERE database = 'default' AND table = 'events' AND active ORDER BY name`,
  );
  return rows.map((r) => r.p);
}

async function mutationsPerTable(): Promise<Record<string, number>> {
  const rows = await queryRows<{ table: string; n: unknown }>(ch().client, `SELECT table, count() AS n FROM system.mutations WHERE database = 'default' GROUP BY table`);
  return Object.fromEntries(rows.map((r) => [r.table, toNumber(r.n)]));
}

const grepAllTables = (needles: string[]) => grepEveryColumn((sql) => queryRows(ch().client, sql), needles);

describe('identify_snapshots', () => {
  let compactor: Compactor;
  const getCompactor = (): Compactor => (compactor ??= createCompactor({ client: ch().client, subjectHash, logger }));

  it('the sink writes the trait maps there, once per event, and leaves them empty in events', async () => {
    const tenant = uniqueTenant('sink');
    const events = history(tenant, 'a');
    await sinkWrite(events);
    await sinkWrite(events); // redelivered: collapses in both tables

    const inEvents = await queryRows<{ n: unknown }>(ch().client, `SELECT countIf(notEmpty(traits) OR notEmpty(account_traits)) AS n FROM events WHERE tenant_id = {t:String}`, { t: tenant });
    expect(toNumber(inEvents[0]?.n)).toBe(0);
    expect(await eventsHoldSnapshots(ch().client)).toBe(false);

    const snapshots = (
      await queryRows(ch().client, `SELECT ${IDENTIFY_SNAPSHOT_SELECT} FROM identify_snapshots FINAL WHERE tenant_id = {t:String} ORDER BY event_id`, { t: tenant })
    ).map(parseIdentifySnapshotRow);
    // the events that carried traits, the latest copy of each (the redelivered identify's received_at)
    expect(snapshots.map((s) => [s.event_id, s.type, s.user_id, s.received_at])).toEqual([
      ['a-g1', 'group', 'u-a', T0 + 3000],
      ['a-i1', 'identify', 'u-a', T0 + 5000],
      ['a-i2', 'identify', 'u-a', T0 + 2000],
    ]);
    expect(snapshots[0]).toMatchObject({ traits: {}, account_traits: { name: '"Snapcorpa"' }, account_id: 'acc-1' });
    expect(snapshots[1]?.traits).toEqual(events[1]?.traits);
    expect(snapshots[1]?.account_id).toBe('acc-1');
    const physical = await queryRows<{ n: unknown }>(ch().client, 'SELECT count() AS n FROM identify_snapshots WHERE tenant_id = {t:String}', { t: tenant });
    expect(toNumber(physical[0]?.n)).toBeGreaterThanOrEqual(3);
  });

  it('an attribute overwrite rewrites identify_snapshots, users and accounts, never a part of events; the value is gone everywhere', async () => {
    const tenant = uniqueTenant('ow');
    await sinkWrite(history(tenant, 'b'));
    const OLD = pii('b');
    await ch().client.command({ query: 'OPTIMIZE TABLE events FINAL' });
    await ch().client.command({ query: 'OPTIMIZE TABLE identify_snapshots FINAL' });
    const partsBefore = await eventsParts();
    const mutationsBefore = await mutationsPerTable();
    const viewsBefore = await viewResults(tenant);

    const receipts = await getCompactor().apply([
      command(tenant, { id: 'u-b', set: { email: 'new.b@example.net', first_name: 'Newfirst', last_name: null } }),
      command(tenant, { id: 'acc-1', subject: 'account', set: { name: 'Newcorp' } }),
    ]);
    expect(receipts.map((r) => r.status)).toEqual(['verified', 'verified']);
    expect(receipts[0]?.rows_rewritten).toMatchObject({ events: 2 });
    expect(receipts[1]?.rows_rewritten).toMatchObject({ events: 1 });

    // events: no mutation, every part as it was (name, modification time, size)
    const mutationsAfter = await mutationsPerTable();
    expect(mutationsAfter['events'] ?? 0).toBe(mutationsBefore['events'] ?? 0);
    expect((mutationsAfter['identify_snapshots'] ?? 0) - (mutationsBefore['identify_snapshots'] ?? 0)).toBe(2);
    expect(await eventsParts()).toEqual(partsBefore);

    expect(await grepAllTables([OLD.email, OLD.first, OLD.last, OLD.account])).toEqual([]);
    const traits = await queryRows<{ event_id: string; traits: Record<string, string>; account_traits: Record<string, string> }>(
      ch().client,
      `SELECT event_id, traits, account_traits FROM events_with_traits WHERE tenant_id = {t:String} AND (notEmpty(traits) OR notEmpty(account_traits)) ORDER BY event_id`,
      { t: tenant },
    );
    expect(traits).toEqual([
      { event_id: 'b-g1', traits: {}, account_traits: { name: '"Newcorp"' } },
      { event_id: 'b-i1', traits: { email: '"new.b@example.net"', firstName: '"Newfirst"', plan: '"pro"' }, account_traits: {} },
      { event_id: 'b-i2', traits: { email: '"new.b@example.net"' }, account_traits: {} },
    ]);
    // the analysts' views never read the trait maps: the same answers before and after
    expect(await viewResults(tenant)).toEqual(viewsBefore);
  });

  it('an erasure with deleteEvents, and suppression, remove the snapshot rows with the events', async () => {
    const tenant = uniqueTenant('del');
    await sinkWrite([...history(tenant, 'c'), ...history(tenant, 'd')]);
    const requestedAt = Date.now();
    // u-d's late identify: received after the request, stored before any sink knew of it
    await sinkWrite([identifyEvent({ tenant_id: tenant, event_id: 'd-late', user_id: 'u-d', received_at: requestedAt + 1000, traits: { email: '"late.d@example.org"' } })]);
    const receipts = await getCompactor().apply([
      command(tenant, { id: 'u-c', mode: 'delete', delete_events: true, requested_at: requestedAt }),
      command(tenant, { id: 'u-d', mode: 'anonymize', suppress: true, requested_at: requestedAt }),
    ]);
    expect(receipts.map((r) => r.status)).toEqual(['verified', 'verified']);
    const left = await queryRows<{ t: string; user_id: string; n: unknown }>(
      ch().client,
      `SELECT * FROM (SELECT 'events' AS t, user_id, count() AS n FROM events FINAL WHERE tenant_id = {t:String} GROUP BY user_id
       UNION ALL SELECT 'snapshots' AS t, user_id, count() AS n FROM identify_snapshots FINAL WHERE tenant_id = {t:String} GROUP BY user_id)
       ORDER BY t, user_id NULLS FIRST`,
      { t: tenant },
    );
    // u-c: nothing at all; u-d: the history kept (anonymized), the late event and its snapshot gone
    expect(left.map((r) => [r.t, r.user_id, toNumber(r.n)])).toEqual([
      ['events', null, 2], // the anonymous page views of both
      ['events', 'u-d', 5],
      ['snapshots', 'u-d', 3],
    ]);
    const physical = await queryRows<{ n: unknown }>(
      ch().client,
      `SELECT (SELECT count() FROM events WHERE tenant_id = {t:String} AND (user_id = 'u-c' OR event_id = 'd-late'))
            + (SELECT count() FROM identify_snapshots WHERE tenant_id = {t:String} AND (user_id = 'u-c' OR event_id = 'd-late')) AS n`,
      { t: tenant },
    );
    expect(toNumber(physical[0]?.n)).toBe(0);
    expect(await grepAllTables([pii('c').email, pii('d').email, 'late.d@example.org'])).toEqual([]);
  });

  it('events_with_traits and the shipped views answer as events FINAL did when it held the maps', async () => {
    const now = uniqueTenant('new');
    const old = uniqueTenant('old');
    await sinkWrite(history(now, 'e'));
    await legacyWrite(history(old, 'e'));
    expect(await rowsOf('events_with_traits', now, 'event_id')).toEqual(await rowsOf('events FINAL', old, 'event_id'));
    const traitsRead = await rowsOf('events_with_traits', now, 'event_id');
    expect(traitsRead.filter((r) => Object.keys(r['traits'] as object).length > 0)).toHaveLength(2);
    expect(await viewResults(now)).toEqual(await viewResults(old));
    // a mixed history (an install upgraded past 0010) reads each event's maps from wherever they are
    expect(await rowsOf('events_with_traits', old, 'event_id')).toEqual(await rowsOf('events FINAL', old, 'event_id'));
  });

  it('rows written before 0010 hold their maps in events: the next round moves them to identify_snapshots, later rounds leave events alone', async () => {
    const tenant = uniqueTenant('legacy');
    const OLD = pii('f');
    // NOTE: without the redelivered f-i1: a merge of `events` may keep only its later copy (empty maps)
    const [before, after] = [history(tenant, 'f').slice(0, 3), history(tenant, 'f').slice(3, 6)];
    await legacyWrite(before);
    await sinkWrite(after);
    expect(await eventsHoldSnapshots(ch().client)).toBe(true);
    // the tenant of the test before: all of its maps are in events
    const earlier = await queryRows<{ tenant_id: string }>(ch().client, `SELECT DISTINCT tenant_id FROM events WHERE notEmpty(traits) AND tenant_id != {t:String}`, { t: tenant });
    const readBefore = await Promise.all([tenant, ...earlier.map((r) => r.tenant_id)].map((t) => rowsOf('events_with_traits', t, 'event_id')));
    const mutationsBefore = await mutationsPerTable();

    const [receipt] = await getCompactor().apply([command(tenant, { id: 'u-f', set: { email: 'new.f@example.net', first_name: 'Newf', last_name: 'Newl' } })]);
    // f-i1 (moved) and f-i2, both in identify_snapshots
    expect(receipt).toMatchObject({ status: 'verified', rows_rewritten: { events: 2, users: 1 } });
    expect(getCompactor().lastTimings()['legacy_move']).toBeGreaterThan(0);
    expect(await eventsHoldSnapshots(ch().client)).toBe(false);
    // one mutation of events: the maps emptied once copied
    expect((await mutationsPerTable())['events'] ?? 0).toBe((mutationsBefore['events'] ?? 0) + 1);
    expect(await grepAllTables([OLD.email, OLD.first, OLD.last])).toEqual([]);
    const [i1] = await queryRows<{ traits: Record<string, string> }>(ch().client, `SELECT traits FROM events_with_traits WHERE tenant_id = {t:String} AND event_id = 'f-i1'`, { t: tenant });
    expect(i1?.traits).toEqual({ email: '"new.f@example.net"', firstName: '"Newf"', lastName: '"Newl"', plan: '"pro"' });
    // the other tenants' events read as before the move
    const readAfter = await Promise.all(earlier.map((r) => rowsOf('events_with_traits', r.tenant_id, 'event_id')));
    expect(readAfter).toEqual(readBefore.slice(1));

    // the next round: no move, no mutation of events, not one of its parts changed
    await ch().client.command({ query: 'OPTIMIZE TABLE events FINAL' });
    const partsBefore = await eventsParts();
    const mutationsBetween = await mutationsPerTable();
    const [next] = await getCompactor().apply([command(tenant, { id: 'u-f', set: { first_name: 'Newer' } })]);
    expect(next?.status).toBe('verified');
    expect(getCompactor().lastTimings()['legacy_move']).toBeUndefined();
    expect((await mutationsPerTable())['events'] ?? 0).toBe(mutationsBetween['events'] ?? 0);
    expect(await eventsParts()).toEqual(partsBefore);
  });
});
