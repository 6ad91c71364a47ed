// The ClickHouse sink against a real engine (chDB): rows and columns, users/accounts merge,
// idempotence, group commit and failure propagation.
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../libs/core/logger.js';
import { createClickHouse, toNumber } from '../../libs/clickhouse/client.js';
import { createClickHouseSink } from '../../libs/sink/clickhouse-sink.js';
import { cleanEvent, identifyEvent } from '../support/clickhouse-fixtures.js';
import { queryRows, uniqueTenant, useTestClickHouse } from '../support/chdb.js';

const ch = useTestClickHouse();
const logger = createLogger({ level: 'silent' });

async function count(query: string, params: Record<string, unknown>): Promise<number> {
  const [row] = await queryRows<{ n: unknown }>(ch().client, query, params);
  return toNumber(row?.n);
}

describe('ClickHouse sink', () => {
  it('writes events with the analysts’ columns', async () => {
    const tenant = uniqueTenant();
    const sink = createClickHouseSink({ client: ch().client, logger });
    const t = Date.UTC(2026, 2, 3, 10, 0, 0, 123);
    await sink.write([
      cleanEvent({ tenant_id: tenant, event_id: 'e1', name: 'Signed Up', user_id: 'u1', received_at: t, occurred_at: t - 500, sent_at: t - 100 }),
      cleanEvent({
        tenant_id: tenant,
        event_id: 'e2',
        type: 'click',
        name: null,
        element: { tag: 'button', id: 'go', classes: ['a', 'b'], label: 'Go', href: null },
        identity_anonymized: true,
        key_version: 3,
        user_id: 'v3:abcd',
        account_id: 'acc-1',
      }),
    ]);
    const rows = await queryRows<Record<string, unknown>>(
      ch().client,
      `SELECT tenant_id, event_id, type, event, user_id, anonymous_id, account_id, account_source, timestamp, received_at, client_ts,
              ip, geo_country, geo_city, identity_anonymized, key_version, element_classes, properties, path, ua_browser, ip_asn
       FROM events FINAL WHERE tenant_id = {t:String} ORDER BY event_id`,
      { t: tenant },
    );
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatchObject({
      tenant_id: tenant,
      event_id: 'e1',
      type: 'track',
      event: 'Signed Up',
      user_id: 'u1',
      anonymous_id: 'anon-1',
      account_id: null,
      timestamp: '2026-03-03 09:59:59.623',
      received_at: '2026-03-03 10:00:00.123',
      client_ts: '2026-03-03 09:59:59.523',
      ip: '81.2.69.0',
      geo_country: 'GB',
      geo_city: 'London',
      identity_anonymized: 0,
      properties: { plan: '"pro"', seats: '5' },
      path: '/pricing',
      ua_browser: 'Firefox',
    });
    expect(toNumber(rows[0]?.ip_asn)).toBe(20712);
    expect(rows[1]).toMatchObject({
      event_id: 'e2',
      type: 'click',
      event: null,
      user_id: 'v3:abcd',
      account_id: 'acc-1',
      account_source: 'explicit',
      identity_anonymized: 1,
      key_version: 3,
      element_classes: ['a', 'b'],
    });
    await sink.stop();
  });

  it('the same batch written twice is one row per event_id through FINAL, even across months', async () => {
    const tenant = uniqueTenant();
    const sink = createClickHouseSink({ client: ch().client, logger });
    const clientTs = Date.UTC(2026, 0, 31, 23, 59, 59, 900);
    const batch = Array.from({ length: 50 }, (_, i) =>
      cleanEvent({ tenant_id: tenant, event_id: `dup-${i}`, occurred_at: clientTs, sent_at: clientTs + 10, received_at: clientTs + 20 }),
    );
    await sink.write(batch);
    await sink.write(batch); // redelivery of the same records
    // a client retry: new sent_at/received_at, so a different corrected timestamp, in February
    const retried = batch.map((e) => ({ ...e, sent_at: clientTs + 5_000, received_at: clientTs + 5_100, occurred_at: clientTs + 100 }));
    await sink.write(retried);
    // a clamped copy whose partition month differs from the original's
    await sink.write([{ ...batch[0]!, timestamp_clamped: true, occurred_at: clientTs + 86_400_000, received_at: clientTs + 86_400_000 }]);

    // (without FINAL the count is anything from 50 to 151, depending on background merges)
    expect(await count('SELECT count() AS n FROM events FINAL WHERE tenant_id = {t:String}', { t: tenant })).toBe(50);
    expect(await count('SELECT uniqExact(event_id) AS n FROM events FINAL WHERE tenant_id = {t:String}', { t: tenant })).toBe(50);
    // the retry's client_ts is unchanged, so it shares the original's partition and merges collapse it
    expect(
      await count("SELECT uniqExact(_partition_id) AS n FROM events WHERE tenant_id = {t:String} AND event_id != 'dup-0'", { t: tenant }),
    ).toBe(1);
    // latest delivery wins (version = received_at)
    const [latest] = await queryRows<{ received_at: string }>(
      ch().client,
      "SELECT received_at FROM events FINAL WHERE tenant_id = {t:String} AND event_id = 'dup-1'",
      { t: tenant },
    );
    expect(latest?.received_at).toBe('2026-02-01 00:00:05.000');
    await sink.stop();
  });

  it('merges identifies into users: a later email-only identify keeps the first name', async () => {
    const tenant = uniqueTenant();
    const sink = createClickHouseSink({ client: ch().client, logger });
    const t = Date.UTC(2026, 3, 1);
    await sink.write([
      identifyEvent({
        tenant_id: tenant,
        event_id: 'i1',
        user_id: 'u1',
        received_at: t,
        traits: { email: '"ada@acme.com"', firstName: '"Ada"', last_name: '"Lovelace"', plan: '"free"' },
        inferred_account: { account_id: 'acme.com', domain: 'acme.com', source: 'email_domain', confidence: 0.8 },
      }),
    ]);
    // later flush, only email + a trait; plus an older event that must not win
    await sink.write([
      identifyEvent({ tenant_id: tenant, event_id: 'i2', user_id: 'u1', received_at: t + 1000, traits: { email: '"ada@newco.io"', plan: '"pro"' } }),
    ]);
    await sink.write([identifyEvent({ tenant_id: tenant, event_id: 'i0', user_id: 'u1', received_at: t - 1000, traits: { firstName: '"Old"' } })]);

    const users = await queryRows<Record<string, unknown>>(
      ch().client,
      `SELECT user_id, email, first_name, last_name, account_id, traits, first_seen, last_seen, version, is_deleted
       FROM users FINAL WHERE tenant_id = {t:String}`,
      { t: tenant },
    );
    expect(users).toHaveLength(1);
    expect(users[0]).toMatchObject({
      user_id: 'u1',
      email: 'ada@newco.io',
      first_name: 'Ada',
      last_name: 'Lovelace',
      account_id: 'acme.com',
      traits: { plan: '"pro"' },
      first_seen: '2026-03-31 23:59:59.000',
      last_seen: '2026-04-01 00:00:01.000',
      is_deleted: 0,
    });
    expect(toNumber(users[0]?.version)).toBe(t + 1000);
    await sink.stop();
  });

  it('can run users/accounts on a second client (connection) of the same engine', async () => {
    const tenant = uniqueTenant();
    const dimensionClient = createClickHouse({ dataDir: ch().dataDir });
    try {
      const sink = createClickHouseSink({ client: ch().client, dimensionClient, logger });
      const t = Date.UTC(2026, 3, 5);
      await sink.write([identifyEvent({ tenant_id: tenant, event_id: 'd1', user_id: 'u9', received_at: t, traits: { firstName: '"Grace"' } })]);
      await sink.write([identifyEvent({ tenant_id: tenant, event_id: 'd2', user_id: 'u9', received_at: t + 1, traits: { email: '"g@navy.mil"' } })]);
      await sink.stop();
      const users = await queryRows(ch().client, 'SELECT first_name, email FROM users FINAL WHERE tenant_id = {t:String}', { t: tenant });
      expect(users).toEqual([{ first_name: 'Grace', email: 'g@navy.mil' }]);
    } finally {
      await dimensionClient.close();
    }
  });

  it('writes accounts: group traits, email-domain inference, explicit wins', async () => {
    const tenant = uniqueTenant();
    const sink = createClickHouseSink({ client: ch().client, logger });
    const t = Date.UTC(2026, 3, 2);
    await sink.write([
      cleanEvent({ tenant_id: tenant, event_id: 'g1', type: 'group', account_id: 'acme.com', received_at: t, traits: { name: '"Acme"', employees: '120' } }),
      identifyEvent({
        tenant_id: tenant,
        event_id: 'i1',
        user_id: 'u1',
        received_at: t + 10,
        traits: { email: '"bob@acme.com"' },
        inferred_account: { account_id: 'acme.com', domain: 'acme.com', source: 'email_domain', confidence: 0.8 },
      }),
      identifyEvent({
        tenant_id: tenant,
        event_id: 'i2',
        user_id: 'u2',
        received_at: t + 20,
        traits: { email: '"eve@globex.org"' },
        inferred_account: { account_id: 'globex.org', domain: 'globex.org', source: 'email_domain', confidence: 0.8 },
      }),
    ]);
    const accounts = await queryRows<Record<string, unknown>>(
      ch().client,
      'SELECT account_id, domain, source, name, traits FROM accounts FINAL WHERE tenant_id = {t:String} ORDER BY account_id',
      { t: tenant },
    );
    expect(accounts).toEqual([
      { account_id: 'acme.com', domain: 'acme.com', source: 'explicit', name: 'Acme', traits: { employees: '120' } },
      { account_id: 'globex.org', domain: 'globex.org', source: 'email_domain', name: null, traits: {} },
    ]);
    // unchanged accounts are not rewritten on every event
    const before = sink.stats().accountRows;
    await sink.write([cleanEvent({ tenant_id: tenant, event_id: 't1', account_id: 'acme.com', received_at: t + 30 })]);
    expect(sink.stats().accountRows).toBe(before);
    await sink.stop();
  });

  it('group-commits concurrent writes into few inserts and resolves each after its flush', async () => {
    const tenant = uniqueTenant();
    const sink = createClickHouseSink({ client: ch().client, logger, maxRows: 10_000, maxAgeMs: 30, maxConcurrentFlushes: 1 });
    const writes = Array.from({ length: 40 }, (_, w) =>
      sink.write(Array.from({ length: 25 }, (_, i) => cleanEvent({ tenant_id: tenant, event_id: `gc-${w}-${i}` }))),
    );
    // each write, once resolved, is readable: check it for the first one as soon as it resolves
    await writes[0];
    expect(await count("SELECT count() AS n FROM events WHERE tenant_id = {t:String} AND event_id LIKE 'gc-0-%'", { t: tenant })).toBe(25);
    await Promise.all(writes);
    const stats = sink.stats();
    expect(stats.eventRows).toBe(1000);
    expect(stats.flushes).toBeLessThanOrEqual(3);
    expect(stats.maxFlushRows).toBeGreaterThanOrEqual(500);
    expect(await count('SELECT count() AS n FROM events FINAL WHERE tenant_id = {t:String}', { t: tenant })).toBe(1000);
    await sink.stop();
  });

  it('splits on maxRows and a big write waits for all its flushes', async () => {
    const tenant = uniqueTenant();
    const sink = createClickHouseSink({ client: ch().client, logger, maxRows: 100, maxAgeMs: 200 });
    await sink.write(Array.from({ length: 350 }, (_, i) => cleanEvent({ tenant_id: tenant, event_id: `big-${i}` })));
    expect(await count('SELECT count() AS n FROM events WHERE tenant_id = {t:String}', { t: tenant })).toBe(350);
    const stats = sink.stats();
    expect(stats.flushes).toBe(4);
    expect(stats.maxFlushRows).toBe(100);
    await sink.stop();
  });

  it('a flush failing for every write rejects each of them; flush() and stop() report it', async () => {
    const tenant = uniqueTenant();
    const sink = createClickHouseSink({ client: ch().client, logger, tables: { events: 'no_such_table' }, maxAgeMs: 20 });
    const results = await Promise.allSettled([
      sink.write([cleanEvent({ tenant_id: tenant, event_id: 'f1' })]),
      sink.write([cleanEvent({ tenant_id: tenant, event_id: 'f2' })]),
    ]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(String((results[0] as PromiseRejectedResult).reason)).toMatch(/no_such_table/);
    expect(sink.stats()).toMatchObject({ failedFlushes: 1, failedWrites: 2, eventRows: 0 });
    const pending = sink.write([cleanEvent({ tenant_id: tenant, event_id: 'f3' })]);
    await expect(sink.stop()).rejects.toThrow(/no_such_table/);
    await expect(pending).rejects.toThrow(/no_such_table/);
  });

  it('stop flushes what is buffered, is idempotent and refuses later writes', async () => {
    const tenant = uniqueTenant();
    const sink = createClickHouseSink({ client: ch().client, logger, maxAgeMs: 60_000 });
    const w = sink.write([cleanEvent({ tenant_id: tenant, event_id: 's1' })]);
    await Promise.all([sink.stop(), sink.stop(), w]);
    expect(await count('SELECT count() AS n FROM events WHERE tenant_id = {t:String}', { t: tenant })).toBe(1);
    await expect(sink.write([cleanEvent({ tenant_id: tenant, event_id: 's2' })])).rejects.toThrow(/stopped/);
    await sink.stop();
  });

  it('writes dead letters', async () => {
    const tenant = uniqueTenant();
    const sink = createClickHouseSink({ client: ch().client, logger });
    await sink.writeDeadLetters([
      { tenantId: tenant, stage: 'enricher', reason: 'schema', eventId: 'x1', input: { bad: true }, error: 'Error: boom', attempts: 1, failedAt: Date.now() },
      { tenantId: tenant, stage: 'decode', reason: 'record cannot be decoded', eventId: null, unreadable: Buffer.from('{not json'), error: null, attempts: 1, failedAt: Date.now() },
    ]);
    const rows = await queryRows<Record<string, unknown>>(
      ch().client,
      'SELECT stage, reason, event_id, payload, error FROM dead_letters WHERE tenant_id = {t:String} ORDER BY stage',
      { t: tenant },
    );
    expect(rows).toEqual([
      { stage: 'decode', reason: 'record cannot be decoded', event_id: null, payload: JSON.stringify({ unreadable_base64: Buffer.from('{not json').toString('base64') }), error: null },
      { stage: 'enricher', reason: 'schema', event_id: 'x1', payload: '{"input":{"bad":true}}', error: 'Error: boom' },
    ]);
    await sink.stop();
  });
});
