// The user's account link through the real sink and engine, as a suite run on chDB in process
// and over the HTTP interface: an explicit account (a group call, identify's account) wins over
// the email-inferred one whatever the order, within one flush and across flushes, and an
// inferred account still fills a user without one.
import type { ClickHouseClient } from '@clickhouse/client';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../libs/core/logger.js';
import { inferAccount } from '../../libs/enrich/email-account.js';
import type { CleanEvent } from '../../libs/events/envelope.js';
import { createClickHouseSink } from '../../libs/sink/clickhouse-sink.js';
import { cleanEvent, identifyEvent } from '../support/clickhouse-fixtures.js';
import { queryRows, uniqueTenant } from '../support/chdb.js';

const logger = createLogger({ level: 'silent' });
const T = Date.UTC(2026, 4, 20);

type Make = (tenant: string, at: number) => CleanEvent;
let seq = 0;
const id = (kind: string): string => `${kind}-${++seq}`;

/** a group call: user u1 → an explicit account */
const group =
  (account = 'acct-42'): Make =>
  (tenant, at) =>
    cleanEvent({ tenant_id: tenant, event_id: id('g'), type: 'group', name: null, user_id: 'u1', account_id: account, received_at: at, traits: { name: '"Acme Ltd"' } });
/** an identify with only a company email: the enricher infers the domain's account */
const emailOnly =
  (email = 'bob@acme.com'): Make =>
  (tenant, at) =>
    identifyEvent({ tenant_id: tenant, event_id: id('i'), user_id: 'u1', received_at: at, traits: { email: JSON.stringify(email) }, inferred_account: inferAccount({ explicitAccountId: null, email }) });
/** an identify naming its account and carrying a company email, as the enricher attributes it */
const identifyWithAccount =
  (account = 'acct-42'): Make =>
  (tenant, at) =>
    identifyEvent({
      tenant_id: tenant,
      event_id: id('ia'),
      user_id: 'u1',
      account_id: account,
      received_at: at,
      traits: { email: '"bob@acme.com"' },
      inferred_account: inferAccount({ explicitAccountId: account, email: 'bob@acme.com' }),
    });

interface Step {
  make: Make;
  /** ms after T: the event's received_at, which is the row version */
  at: number;
}
/** writes: each inner list is one write(); `flushes` separates writes awaited one by one from writes made at once */
interface Case {
  name: string;
  flushes: Step[][][];
  want: string | null;
}

const cases: Case[] = [
  { name: 'explicit then inferred, one write', flushes: [[[{ make: group(), at: 0 }, { make: emailOnly(), at: 10 }]]], want: 'acct-42' },
  { name: 'inferred then explicit, one write', flushes: [[[{ make: emailOnly(), at: 0 }, { make: group(), at: 10 }]]], want: 'acct-42' },
  { name: 'both in one event', flushes: [[[{ make: identifyWithAccount(), at: 0 }]]], want: 'acct-42' },
  { name: 'both in one event, then an email-only identify', flushes: [[[{ make: identifyWithAccount(), at: 0 }]], [[{ make: emailOnly(), at: 10 }]]], want: 'acct-42' },
  { name: 'explicit then inferred, two writes of one flush', flushes: [[[{ make: group(), at: 0 }], [{ make: emailOnly(), at: 10 }]]], want: 'acct-42' },
  { name: 'inferred then explicit, two writes of one flush', flushes: [[[{ make: emailOnly(), at: 0 }], [{ make: group(), at: 10 }]]], want: 'acct-42' },
  { name: 'explicit then inferred, across flushes', flushes: [[[{ make: group(), at: 0 }]], [[{ make: emailOnly(), at: 10 }]]], want: 'acct-42' },
  { name: 'inferred then explicit, across flushes', flushes: [[[{ make: emailOnly(), at: 0 }]], [[{ make: group(), at: 10 }]]], want: 'acct-42' },
  { name: 'explicit received first, flushed last', flushes: [[[{ make: emailOnly(), at: 10 }]], [[{ make: group(), at: 0 }]]], want: 'acct-42' },
  { name: 'inferred received first, flushed last', flushes: [[[{ make: group(), at: 10 }]], [[{ make: emailOnly(), at: 0 }]]], want: 'acct-42' },
  { name: 'identify’s account, then inferred across flushes', flushes: [[[{ make: identifyWithAccount(), at: 0 }]], [[{ make: emailOnly('bob@globex.org'), at: 10 }]]], want: 'acct-42' },
  {
    name: 'explicit, then inferred in each of three later flushes',
    flushes: [[[{ make: group(), at: 0 }]], [[{ make: emailOnly(), at: 10 }]], [[{ make: emailOnly('bob@globex.org'), at: 20 }]], [[{ make: emailOnly(), at: 30 }]]],
    want: 'acct-42',
  },
  { name: 'a later explicit account replaces an earlier one', flushes: [[[{ make: group(), at: 0 }]], [[{ make: group('acct-7'), at: 10 }, { make: emailOnly(), at: 20 }]]], want: 'acct-7' },
  { name: 'inferred only: fills the user', flushes: [[[{ make: emailOnly(), at: 0 }]]], want: 'acme.com' },
  { name: 'inferred, then a newer inferred moves it', flushes: [[[{ make: emailOnly(), at: 0 }]], [[{ make: emailOnly('bob@globex.org'), at: 10 }]]], want: 'globex.org' },
];

/** Registers the suite; `client` is called inside the tests. */
export function describeAccountLink(engine: string, client: () => ClickHouseClient): void {
  async function userAccount(tenant: string): Promise<string | null | undefined> {
    const rows = await queryRows<{ account_id: string | null }>(client(), 'SELECT account_id FROM users FINAL WHERE tenant_id = {t:String} AND user_id = {u:String}', {
      t: tenant,
      u: 'u1',
    });
    expect(rows.length).toBeLessThanOrEqual(1);
    return rows[0]?.account_id;
  }

  describe(`ClickHouse sink on ${engine}: the user’s account link`, () => {
    it.each(cases)('$name → $want', async ({ flushes, want }) => {
      const tenant = uniqueTenant();
      const sink = createClickHouseSink({ client: client(), logger, maxAgeMs: 20 });
      for (const writes of flushes) {
        // writes made at once share a flush; each flush is awaited before the next
        await Promise.all(writes.map((steps) => sink.write(steps.map((s) => s.make(tenant, T + s.at)))));
      }
      await sink.stop();
      expect(await userAccount(tenant)).toBe(want);
    });

    it('writes made at once share one flush (the within-batch cases above test one batch)', async () => {
      const tenant = uniqueTenant();
      const sink = createClickHouseSink({ client: client(), logger, maxAgeMs: 20 });
      await Promise.all([sink.write([group()(tenant, T)]), sink.write([emailOnly()(tenant, T + 10)])]);
      expect(sink.stats().flushes).toBe(1);
      await sink.stop();
    });

    it('events keep their own attribution: the email-only identify is attributed to the domain', async () => {
      const tenant = uniqueTenant();
      const sink = createClickHouseSink({ client: client(), logger });
      const identify = emailOnly()(tenant, T + 10);
      await sink.write([group()(tenant, T), identify]);
      await sink.stop();
      const rows = await queryRows(client(), 'SELECT account_id, account_source FROM events FINAL WHERE tenant_id = {t:String} AND event_id = {e:String}', {
        t: tenant,
        e: identify.event_id,
      });
      expect(rows).toEqual([{ account_id: 'acme.com', account_source: 'email_domain' }]);
      expect(await userAccount(tenant)).toBe('acct-42');
    });
  });
}
