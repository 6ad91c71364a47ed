// The table modules the sink writes with (libs/clickhouse/tables) against a real engine
// (chDB): a row inserted with a module's insert helper reads back, through its SELECT list and
// parse, as the same typed row.
import { describe, expect, it } from 'vitest';
import { ACCOUNT_SELECT, insertAccounts, parseAccountRow, type AccountRow } from '../../libs/clickhouse/tables/accounts.js';
import { AUDIT_COLUMNS, insertAuditRows, type AuditRow } from '../../libs/clickhouse/tables/audit-log.js';
import { DEAD_LETTER_SELECT, insertDeadLetters, parseDeadLetterRow, toDeadLetterRow } from '../../libs/clickhouse/tables/dead-letters.js';
import { EVENT_SELECT, eventTuple, insertEventTuples, parseEventRow } from '../../libs/clickhouse/tables/events.js';
import { OVERWRITE_REQUEST_SELECT, insertOverwriteRequests, parseOverwriteRequestRow, parseReceipt, type OverwriteRequestRow } from '../../libs/clickhouse/tables/overwrite-requests.js';
import { insertOverwriteValues, overwriteValueGroupsQuery, parseOverwriteValueGroup, type OverwriteValueRow } from '../../libs/clickhouse/tables/overwrite-values.js';
import { selectList, type JsonRow } from '../../libs/clickhouse/tables/row-values.js';
import { SUPPRESSED_EVENTS_COLUMNS, insertSuppressedEvents } from '../../libs/clickhouse/tables/suppressed-events.js';
import { SUPPRESSION_SELECT, earliestSuppressionsQuery, insertSuppressions, parseEarliestSuppression, parseSuppressionRow } from '../../libs/clickhouse/tables/suppressions.js';
import { USER_SELECT, insertUsers, parseUserRow, type UserRow } from '../../libs/clickhouse/tables/users.js';
import { toEventRow, toEventTuple } from '../../libs/sink/event-rows.js';
import { cleanEvent, identifyEvent } from '../support/clickhouse-fixtures.js';
import { queryRows, uniqueTenant, useTestClickHouse } from '../support/chdb.js';

const ch = useTestClickHouse();
const T = Date.UTC(2026, 5, 1, 8, 30, 0, 250);

function select(query: string, tenant: string): Promise<JsonRow[]> {
  return queryRows<JsonRow>(ch().client, query, { t: tenant });
}

describe('table modules round-trip', () => {
  it('events: tuples from the sink’s mapping and from a row read back as the rows', async () => {
    const tenant = uniqueTenant();
    const a = cleanEvent({ tenant_id: tenant, event_id: 'a', received_at: T, element: { tag: 'a', id: 'x', classes: ['c1', 'c2'], label: 'Go', href: '/go' } });
    const b = identifyEvent({
      tenant_id: tenant,
      event_id: 'b',
      user_id: 'v1:abc',
      received_at: T + 1,
      sent_at: null,
      geo: null,
      traits: { email: '"a@acme.com"' },
      inferred_account: { account_id: 'acme.com', domain: 'acme.com', source: 'email_domain', confidence: 0.8 },
      identity_anonymized: true,
      key_version: 2,
    });
    await insertEventTuples(ch().client, [toEventTuple(a)]);
    await insertEventTuples(ch().client, [eventTuple(toEventRow(b))]);
    const rows = (await select(`SELECT ${EVENT_SELECT} FROM events FINAL WHERE tenant_id = {t:String} ORDER BY event_id`, tenant)).map(parseEventRow);
    expect(rows).toEqual([toEventRow(a), toEventRow(b)]);
  });

  it('users and accounts: whole snapshots', async () => {
    const tenant = uniqueTenant();
    const user: UserRow = {
      tenant_id: tenant,
      user_id: 'u1',
      email: 'a@acme.com',
      first_name: 'Ada',
      last_name: null,
      name: null,
      phone: '+44',
      title: null,
      company: 'Acme',
      account_id: 'acct-42',
      traits: { plan: '"pro"' },
      first_seen: T,
      last_seen: T + 5,
      identity_anonymized: 0,
      version: T + 5,
      is_deleted: 0,
      updated_at: T + 9,
    };
    const account: AccountRow = { tenant_id: tenant, account_id: 'acct-42', domain: 'acme.com', source: 'explicit', name: 'Acme', traits: { seats: '9' }, version: T, is_deleted: 0, updated_at: T + 1 };
    await insertUsers(ch().client, [user]);
    await insertAccounts(ch().client, [account]);
    expect((await select(`SELECT ${USER_SELECT} FROM users FINAL WHERE tenant_id = {t:String}`, tenant)).map(parseUserRow)).toEqual([user]);
    expect((await select(`SELECT ${ACCOUNT_SELECT} FROM accounts FINAL WHERE tenant_id = {t:String}`, tenant)).map(parseAccountRow)).toEqual([account]);
    // the raw DateTime64 text reads as the same ms
    expect((await select('SELECT * FROM users FINAL WHERE tenant_id = {t:String}', tenant)).map(parseUserRow)).toEqual([user]);
  });

  it('dead_letters', async () => {
    const tenant = uniqueTenant();
    // NOTE: recent: the table's 30-day TTL removes older rows at the next merge
    const row = toDeadLetterRow({ tenantId: tenant, stage: 'enricher', reason: 'schema', eventId: 'e1', input: { bad: true }, error: 'Error: boom', attempts: 1, failedAt: Date.now() - 60_000 });
    await insertDeadLetters(ch().client, [row]);
    expect((await select(`SELECT ${DEAD_LETTER_SELECT} FROM dead_letters WHERE tenant_id = {t:String}`, tenant)).map(parseDeadLetterRow)).toEqual([row]);
  });

  it('overwrite_requests: the latest version of a receipt', async () => {
    const tenant = uniqueTenant();
    const pending: OverwriteRequestRow = {
      request_id: `${tenant}/0`,
      tenant_id: tenant,
      subject: 'user',
      subject_id_hash: 'h',
      mode: 'anonymize',
      status: 'pending',
      rows_rewritten: {},
      reason: null,
      attempts: 0,
      requested_at: T,
      applied_at: null,
      verified_at: null,
      version: 0,
    };
    const verified: OverwriteRequestRow = { ...pending, status: 'verified', rows_rewritten: { events: 3, users: 1 }, attempts: 1, applied_at: T + 7, verified_at: T + 9, version: T + 9 };
    await insertOverwriteRequests(ch().client, [pending, verified]);
    const rows = await select(`SELECT ${OVERWRITE_REQUEST_SELECT} FROM overwrite_requests FINAL WHERE tenant_id = {t:String}`, tenant);
    expect(rows.map(parseOverwriteRequestRow)).toEqual([verified]);
    const { version, ...receipt } = verified;
    expect(rows.map(parseReceipt)).toEqual([receipt]);
    expect(version).toBe(T + 9);
  });

  it('overwrite_values: a request’s rows read back per request, the id only as its hash', async () => {
    const tenant = uniqueTenant();
    // NOTE: recent: the table's 30-day TTL removes older rows at the next merge
    const at = Date.now() - 60_000;
    const base: Omit<OverwriteValueRow, 'attr' | 'new_value'> = { request_id: 'r1', tenant_id: tenant, subject: 'user', id: '', id_hash: 'h1', mode: 'delete', delete_events: 1, requested_at: at };
    await insertOverwriteValues(ch().client, [
      { ...base, attr: 'plan', new_value: '"free"' },
      { ...base, attr: 'email', new_value: null },
    ]);
    const groups = (await select(overwriteValueGroupsQuery('tenant_id = {t:String}'), tenant)).map(parseOverwriteValueGroup);
    expect(groups.map((g) => ({ ...g, attrs: [...g.attrs].sort() }))).toEqual([
      { request_id: 'r1', tenant_id: tenant, subject: 'user', id_hash: 'h1', delete_events: 1, requested_at: at, attrs: [['email', null], ['plan', '"free"']] },
    ]);
    const [registered] = await select('SELECT id, id_hash, registered_at > now64(3) - INTERVAL 1 MINUTE AS fresh FROM overwrite_values WHERE tenant_id = {t:String} LIMIT 1', tenant);
    expect(registered).toEqual({ id: '', id_hash: 'h1', fresh: 1 });
  });

  it('suppressions: the rows, and each user’s earliest', async () => {
    const tenant = uniqueTenant();
    const first = { tenant_id: tenant, subject_id_hash: 'h1', request_id: 'r1', requested_at: T };
    const later = { ...first, request_id: 'r2', requested_at: T + 1_000 };
    await insertSuppressions(ch().client, [later, first]);
    expect((await select(`SELECT ${SUPPRESSION_SELECT} FROM suppressions WHERE tenant_id = {t:String} ORDER BY request_id`, tenant)).map(parseSuppressionRow)).toEqual([first, later]);
    expect((await select(earliestSuppressionsQuery('tenant_id = {t:String}'), tenant)).map(parseEarliestSuppression)).toEqual([first]);
  });

  it('suppressed_events: counts of a request and day add up', async () => {
    const tenant = uniqueTenant();
    const row = { tenant_id: tenant, request_id: 'r1', day: '2026-06-01', events: 2 };
    await insertSuppressedEvents(ch().client, [row, { ...row, events: 3 }]);
    const query = `SELECT ${SUPPRESSED_EVENTS_COLUMNS.filter((c) => c !== 'events').join(', ')}, sum(events) AS events FROM suppressed_events WHERE tenant_id = {t:String} GROUP BY tenant_id, request_id, day`;
    expect(await select(query, tenant)).toEqual([{ ...row, events: 5 }]);
  });

  it('audit_log', async () => {
    const tenant = uniqueTenant();
    // NOTE: recent: the table's 400-day TTL removes older rows at the next merge
    const row: AuditRow = { at: Date.now() - 60_000, tenant_id: tenant, credential_kind: 'api_key', key_id: 'k1', action: 'erasure.create', request_id: 'q1', outcome: 'denied', status: 403, source: '203.0.113.0', details: { users: '2' } };
    await insertAuditRows(ch().client, [row]);
    expect(await select(`SELECT ${selectList(AUDIT_COLUMNS, new Set(['at']))} FROM audit_log WHERE tenant_id = {t:String}`, tenant)).toEqual([row]);
  });

  it('an insert of no rows sends nothing', async () => {
    await insertEventTuples(ch().client, [], { table: 'no_such_table' });
    await insertUsers(ch().client, [], 'no_such_table');
    await insertAccounts(ch().client, [], 'no_such_table');
    await insertDeadLetters(ch().client, [], 'no_such_table');
    await insertOverwriteRequests(ch().client, [], 'no_such_table');
    await insertOverwriteValues(ch().client, [], 'no_such_table');
    await insertSuppressions(ch().client, [], 'no_such_table');
    await insertSuppressedEvents(ch().client, [], 'no_such_table');
    await insertAuditRows(ch().client, [], 'no_such_table');
  });
});
