// Issue 15 item 3 in the fleet: a `delete` erasure (replaceId by default) through the collector,
// Kafka and the compactor service; the sink service reads `replaced_ids`. The stored history
// takes one new id; events received before the request but still in Kafka when it was verified
// (the sink was stopped) take random ids of their own — never the clear id — and the clear id is
// in no table and no mutation text. On real Kafka, Redis and ClickHouse.
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { toNumber } from '../../libs/clickhouse/client.js';
import { eventually } from '../support/poll.js';
import { sendBatch, startFleet, type Fleet } from '../support/fleet.js';
import { grepEveryColumn } from '../support/grep-tables.js';
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

async function q<T = Record<string, unknown>>(sql: string, params: Record<string, unknown> = {}): Promise<T[]> {
  return (await ch.query({ query: sql, query_params: params, format: 'JSONEachRow' })).json<T>();
}

describe('fleet: erasure that leaves no linkable id (issue 15, check 3)', () => {
  it('delete without deleteEvents: history under one new id, stragglers under random ids, the clear id nowhere', async () => {
    fleet = await startFleet({ partitions: 2, services: ['collector', 'enricher', 'anonymizer', 'sink', 'compactor'], env: { LOG_LEVEL: 'info' } });
    const f = fleet;
    const tag = f.prefix.slice(1, 9);
    const tenantId = `rp-${tag}`;
    const ERIN = `erin.replaced-${tag}@corp.example`;
    const created = await f.admin<{ writeKey: string }>('PUT', `/v1/admin/tenants/${tenantId}`);
    expect(created.status).toBe(201);
    const writeKey = created.body.writeKey;
    expect(await sendBatch(f.collectorUrl(), writeKey, [
      { type: 'identify', messageId: 'h-1', userId: ERIN, traits: { email: ERIN, firstName: `Erinna${tag}` } },
      { type: 'track', messageId: 'h-2', userId: ERIN, event: 'Exported' },
      { type: 'track', messageId: 'h-3', userId: 'gus', event: 'Exported' },
    ])).toBe(200);
    const stored = (sql: string, n: number, what: string) => eventually(async () => toNumber((await q<{ n: unknown }>(sql, { t: tenantId }))[0]?.n) === n, 60_000, what);
    await stored('SELECT count() AS n FROM events WHERE tenant_id = {t:String}', 3, 'history stored');

    // in flight: received before the request, sunk only after it was verified
    const sink = f.processes.get('sink');
    sink?.kill('SIGTERM');
    expect((await sink?.exited)?.code).toBe(0);
    expect(await sendBatch(f.collectorUrl(), writeKey, [
      { type: 'track', messageId: 'f-1', userId: ERIN, event: 'Shared' },
      { type: 'track', messageId: 'f-2', userId: ERIN, event: 'Shared' },
    ])).toBe(200);
    await new Promise((r) => setTimeout(r, 50)); // received before the request

    const erased = await f.admin<{ requestId: string; replaceId: boolean }>('POST', `/v1/admin/tenants/${tenantId}/erasures`, { userIds: [ERIN], mode: 'delete' });
    expect(erased).toMatchObject({ status: 202, body: { replaceId: true } });
    const receipt = await eventually(async () => {
      const r = await f.admin('GET', `/v1/admin/requests/${erased.body.requestId}`);
      if (r.body['status'] === 'failed') throw new Error(`request failed: ${String(r.body['reason'])}`);
      return r.body['status'] === 'verified' ? r.body : undefined;
    }, 180_000, 'a verified erasure');
    expect(receipt).toMatchObject({ rowsRewritten: { ids_replaced: 2, users: 1 } });

    await f.start('sink');
    await stored('SELECT uniqExact(event_id) AS n FROM events WHERE tenant_id = {t:String}', 5, 'in-flight events stored');
    const ids = await q<{ event_id: string; user_id: string }>('SELECT event_id, user_id FROM events FINAL WHERE tenant_id = {t:String} ORDER BY event_id', { t: tenantId });
    const newId = ids.find((e) => e.event_id === 'h-1')?.user_id ?? '';
    expect(newId).toMatch(/^anon-[0-9a-f-]{36}$/);
    expect(ids.filter((e) => e.event_id.startsWith('h-'))).toEqual([
      { event_id: 'h-1', user_id: newId },
      { event_id: 'h-2', user_id: newId },
      { event_id: 'h-3', user_id: 'gus' },
    ]);
    const stragglers = ids.filter((e) => e.event_id.startsWith('f-')).map((e) => e.user_id);
    expect(stragglers).toEqual([expect.stringMatching(/^anon-/), expect.stringMatching(/^anon-/)]);
    expect(new Set([newId, ...stragglers]).size).toBe(3);
    // the new id's link to the old one is gone: the sealed copy the sinks read was emptied
    expect(await q('SELECT sealed FROM replaced_ids FINAL WHERE tenant_id = {t:String}', { t: tenantId })).toEqual([{ sealed: '' }]);
    expect(await grepEveryColumn(q, [ERIN, `Erinna${tag}`])).toEqual([]);
    const mutations = await q<{ n: unknown }>(`SELECT count() AS n FROM system.mutations WHERE position(command, {needle:String}) > 0`, { needle: ERIN });
    expect(toNumber(mutations[0]?.n)).toBe(0);
  }, 400_000);
});
