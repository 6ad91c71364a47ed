// Issue 15, acceptance 1 in the fleet: the collector changes the flags (it has no master key),
// the compactor's key keeper makes and destroys the keys (Redis + the ClickHouse copy), the
// anonymizers load them from Redis. Rotate, then shred version 1.
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { toNumber } from '../../libs/clickhouse/client.js';
import { redisKeyHash } from '../../libs/privacy/key-stores.js';
import { eventually } from '../support/poll.js';
import { sendBatch, startFleet, type Fleet } from '../support/fleet.js';
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('fleet: pseudonym key rotation and shredding (issue 15, check 1)', () => {
  it('the compactor makes version 2 and destroys every copy of version 1; anonymizers switch; the receipt is verified', async () => {
    fleet = await startFleet({ partitions: 1, services: ['collector', 'enricher', 'anonymizer', 'sink', 'compactor'] });
    const f = fleet;
    const tenantId = `pk-${f.prefix.slice(1, 9)}`;
    const redis = new Redis(f.env['REDIS_URL'] ?? '');
    const hash = redisKeyHash(f.env['TRACKLANE_REDIS_PREFIX'] ?? '', tenantId);
    try {
      const created = await f.admin<{ writeKey: string }>('PUT', `/v1/admin/tenants/${tenantId}`);
      expect(created.status).toBe(201);
      const writeKey = created.body.writeKey;
      const flipped = await f.admin<{ anonymizeSince: number }>('PATCH', `/v1/admin/tenants/${tenantId}/flags`, { anonymizeIdentity: true });
      await sleep(Math.max(0, flipped.body.anonymizeSince - Date.now()) + 100);
      const stored = (eventId: string) =>
        eventually(async () => (await q<{ user_id: string }>('SELECT user_id FROM events FINAL WHERE tenant_id = {t:String} AND event_id = {e:String}', { t: tenantId, e: eventId }))[0]?.user_id, 60_000, `${eventId} stored`);

      expect(await sendBatch(f.collectorUrl(), writeKey, [{ type: 'identify', messageId: 'k1', userId: 'ada@example.com', traits: {} }])).toBe(200);
      expect(await stored('k1')).toMatch(/^v1:[0-9a-f]{64}$/);
      const wrappedV1 = await redis.hget(hash, 'v1');
      expect(wrappedV1).not.toBeNull();
      await eventually(async () => toNumber((await q<{ n: unknown }>('SELECT count() AS n FROM pseudonym_keys WHERE tenant_id = {t:String} AND version = 1', { t: tenantId }))[0]?.n) === 1, 10_000, 'the ClickHouse copy');

      const rotated = await f.admin<{ version: number; since: number }>('POST', `/v1/admin/tenants/${tenantId}/pseudonym-keys`);
      expect(rotated.status).toBe(201);
      expect(rotated.body.version).toBe(2);
      // stamped ahead: within the propagation window, and the keeper made the key inside it
      expect(rotated.body.since - Date.now()).toBeLessThanOrEqual(2_500);
      await sleep(Math.max(0, rotated.body.since - Date.now()) + 100);
      expect(await redis.hexists(hash, 'v2')).toBe(1);
      expect(await sendBatch(f.collectorUrl(), writeKey, [{ type: 'track', messageId: 'k2', userId: 'ada@example.com', event: 'E' }])).toBe(200);
      const v2 = await stored('k2');
      expect(v2).toMatch(/^v2:[0-9a-f]{64}$/);

      const shred = await f.admin('DELETE', `/v1/admin/tenants/${tenantId}/pseudonym-keys/1`, { confirm: 1 });
      expect([200, 202]).toContain(shred.status);
      const receipt = await eventually(async () => {
        const r = await f.admin<{ shred?: { status: string } }>('GET', `/v1/admin/tenants/${tenantId}/pseudonym-keys/1`);
        return r.body.shred?.status === 'verified' ? r.body.shred : undefined;
      }, 60_000, 'a verified shred receipt');
      expect(receipt).toMatchObject({ status: 'verified', destroyed: { redis: 1, clickhouse: 1 }, remaining: [] });
      expect(await redis.hexists(hash, 'v1')).toBe(0);
      expect(toNumber((await q<{ n: unknown }>('SELECT count() AS n FROM pseudonym_keys WHERE tenant_id = {t:String} AND version = 1', { t: tenantId }))[0]?.n)).toBe(0);

      expect(await sendBatch(f.collectorUrl(), writeKey, [{ type: 'track', messageId: 'k3', userId: 'ada@example.com', event: 'E' }])).toBe(200);
      expect(await stored('k3')).toBe(v2);
      // no service ever printed a wrapped key
      for (const p of f.processes.values()) expect(p.output()).not.toContain(String(wrappedV1));
    } finally {
      redis.disconnect();
    }
  }, 300_000);
});
