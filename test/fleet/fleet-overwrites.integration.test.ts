// Issue 4 in the fleet: overwrite requests through the collector onto
// tracklane.overwrites.v1, the compactor as its own service, the sinks applying registered
// overwrites to events still in Kafka, and suppression — on real Kafka, Redis and ClickHouse.
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { toNumber } from '../../libs/clickhouse/client.js';
import { eventually } from '../support/poll.js';
import { sendBatch, startFleet, type Fleet } from '../support/fleet.js';
import { grepEveryColumn } from '../support/grep-tables.js';
import { countsSince, stageCounts } from '../support/stage-counts.js';
import { clickhouseClientOptions } from '../support/services.js';

let ch: ClickHouseClient;
let fleet: Fleet | undefined;

beforeAll(() => {
  ch = createClient(clickhouseClientOptions());
});
afterAll(async () => {
  await ch?.close();
});
afterEach(async () => {
  await fleet?.stopAll();
  fleet = undefined;
});

async function q<T = Record<string, unknown>>(sql: string): Promise<T[]> {
  return (await ch.query({ query: sql, format: 'JSONEachRow' })).json<T>();
}

const grepEverything = (needles: string[]) => grepEveryColumn(q, needles);

async function receipt(f: Fleet, requestId: string, until: (r: Record<string, unknown>) => boolean, what: string) {
  return eventually(async () => {
    const r = await f.admin('GET', `/v1/admin/requests/${requestId}`);
    if (r.body['status'] === 'failed') throw new Error(`request failed: ${String(r.body['reason'])}`);
    return until(r.body) ? r.body : undefined;
  }, 180_000, what);
}

describe('fleet: overwrites and erasures (issue 4, checks 2, 3, 5, 6)', () => {
  it('a PATCH reaches verified through Kafka and the compactor service, also for events still in Kafka; suppression drops and counts', async () => {
    fleet = await startFleet({ partitions: 2, services: ['collector', 'enricher', 'anonymizer', 'sink', 'compactor'], env: { LOG_LEVEL: 'info' } });
    const f = fleet;
    const tenantId = `ow-${f.prefix.slice(1, 9)}`;
    const created = await f.admin<{ writeKey: string }>('PUT', `/v1/admin/tenants/${tenantId}`);
    expect(created.status).toBe(201);
    const writeKey = created.body.writeKey;
    const tag = f.prefix.slice(1, 9);
    const OLD = { email: `erin.old-${tag}@old.example`, firstName: `Erinna${tag}`, lastName: `Oldcastle${tag}` };
    const NEW = { email: `erin-${tag}@new.example`, firstName: 'Erin', lastName: 'Newcastle' };

    expect(await sendBatch(f.collectorUrl(), writeKey, [
      { type: 'identify', messageId: 'h-1', userId: 'erin', traits: OLD },
      { type: 'track', messageId: 'h-2', userId: 'erin', event: 'Exported' },
      { type: 'identify', messageId: 'h-3', userId: 'gus', traits: { email: `gus-${tag}@old.example`, firstName: `Gustav${tag}` } },
    ])).toBe(200);
    await eventually(async () => toNumber((await q<{ n: unknown }>(`SELECT count() AS n FROM events WHERE tenant_id = '${tenantId}'`))[0]?.n) === 3, 60_000, 'history stored');

    // in flight: the sink is stopped, so these wait in Kafka while the request is made and applied
    const sink = f.processes.get('sink');
    sink?.kill('SIGTERM');
    expect((await sink?.exited)?.code).toBe(0);
    expect(await sendBatch(f.collectorUrl(), writeKey, [
      { type: 'identify', messageId: 'f-1', userId: 'erin', traits: { ...OLD, plan: 'pro' } },
      { type: 'track', messageId: 'f-2', userId: 'erin', event: 'Shared' },
    ])).toBe(200);

    const patched = await f.admin<{ requestId: string }>('PATCH', `/v1/admin/tenants/${tenantId}/users/erin`, { set: NEW });
    expect(patched.status).toBe(202);
    const pending = await f.admin('GET', `/v1/admin/requests/${patched.body.requestId}`);
    expect(pending.status).toBe(200); // a receipt exists from the moment the request is accepted
    await receipt(f, patched.body.requestId, (r) => r['status'] === 'verified', 'a verified receipt');

    await f.start('sink');
    // NOTE: distinct ids: the new sink may store again what the stopped one had stored but not
    // committed (at least once; ReplacingMergeTree collapses the copies)
    await eventually(async () => toNumber((await q<{ n: unknown }>(`SELECT uniqExact(event_id) AS n FROM events WHERE tenant_id = '${tenantId}'`))[0]?.n) === 5, 120_000, 'in-flight events stored').catch(
      (err: Error) => {
        throw new Error(`${err.message}\n--- sink output ---\n${f.processes.get('sink')?.output().slice(-4000)}`);
      },
    );
    const identifies = await q<{ event_id: string; email: string }>(
      `SELECT event_id, traits['email'] AS email FROM events_with_traits WHERE tenant_id = '${tenantId}' AND user_id = 'erin' AND type = 'identify' ORDER BY event_id`,
    );
    expect(identifies).toEqual([
      { event_id: 'f-1', email: JSON.stringify(NEW.email) },
      { event_id: 'h-1', email: JSON.stringify(NEW.email) },
    ]);
    expect(await q(`SELECT email, first_name, last_name FROM users FINAL WHERE tenant_id = '${tenantId}' AND user_id = 'erin'`)).toEqual([
      { email: NEW.email, first_name: NEW.firstName, last_name: NEW.lastName },
    ]);
    expect(await grepEverything([OLD.email, OLD.firstName, OLD.lastName])).toEqual([]);

    // erasure with suppress: gus is deleted with his events; his later events are dropped and counted
    const erased = await f.admin<{ requestId: string }>('POST', `/v1/admin/tenants/${tenantId}/erasures`, { userIds: ['gus'], mode: 'delete', deleteEvents: true, suppress: true });
    expect(erased.status).toBe(202);
    await receipt(f, erased.body.requestId, (r) => r['status'] === 'verified', 'a verified erasure');
    const sinkUrl = `http://127.0.0.1:${f.processes.get('sink')?.port}`;
    const before = await stageCounts(sinkUrl);
    expect(await sendBatch(f.collectorUrl(), writeKey, [
      { type: 'track', messageId: 's-1', userId: 'gus', event: 'Back' },
      { type: 'track', messageId: 's-2', userId: 'gus', event: 'Again' },
      { type: 'track', messageId: 's-3', userId: 'erin', event: 'Stayed' },
    ])).toBe(200);
    await receipt(f, erased.body.requestId, (r) => r['suppressedEvents'] === 2, 'two suppressed events counted');
    await eventually(async () => (await q(`SELECT 1 FROM events WHERE tenant_id = '${tenantId}' AND event_id = 's-3'`)).length === 1, 60_000, "erin's later event stored");
    // the sink's /metrics counts gus's two as dropped by its stage, never as handed on
    expect(countsSince(before, await stageCounts(sinkUrl), ['sink']).sink).toEqual({ in: 3, out: 1, dropped: 2, deadLetters: 0, retries: 0 });
    expect(await q(`SELECT event_id FROM events WHERE tenant_id = '${tenantId}' AND user_id = 'gus'`)).toEqual([]);
    expect(await grepEverything([`gus-${tag}@old.example`, `Gustav${tag}`])).toEqual([]);

    // no old value in mutation texts or in any service's log
    const needles = [OLD.email, OLD.firstName, OLD.lastName, `gus-${tag}@old.example`, `Gustav${tag}`];
    const mutations = await q<{ command: string }>(`SELECT command FROM system.mutations WHERE database = currentDatabase()`);
    expect(mutations.length).toBeGreaterThan(0);
    for (const needle of needles) {
      expect(mutations.filter((m) => m.command.includes(needle))).toEqual([]);
      for (const [name, p] of f.processes) expect(p.output().includes(needle), `${name} log`).toBe(false);
    }
    expect(f.processes.get('compactor')?.output()).toMatch(/overwrite batch verified/);
    const metrics = await (await fetch(`http://127.0.0.1:${f.processes.get('compactor')?.port}/metrics`)).text();
    expect(Number(/tracklane_compactor_receipts_total\{[^}]*status="verified"[^}]*\} (\d+)/.exec(metrics)?.[1])).toBeGreaterThanOrEqual(2);
  }, 600_000);
});
