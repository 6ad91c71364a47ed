// The fleet on a Redis of its own with a password, TLS only and
// the documented ACL user of every service (libs/config/redis-acl.ts): events flow and are
// pseudonymized; a service started without the password stays not ready, names the setting and
// exits on its start timeout; a password changed under the running fleet makes the anonymizer,
// then the enricher, pause (fail closed) — nothing passes them, no identity lands in clear —
// until it is restored.
import { randomBytes } from 'node:crypto';
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { toNumber } from '../../libs/clickhouse/client.js';
import { REDIS_SERVICES, redisAclRules, type RedisService } from '../../libs/config/redis-acl.js';
import { closeRedis, openRedis, redisConnectionOfUrl } from '../../libs/config/redis-connection.js';
import { eventually } from '../support/poll.js';
import { storedKeyRing } from '../support/stored-key-ring.js';
import { readyzCodesUntilExit, sendBatch, startFleet, type Fleet } from '../support/fleet.js';
import { startPrivateRedis, type PrivateRedis } from '../support/private-redis.js';
import { clickhouseClientOptions, serviceEndpoints } from '../support/services.js';
import { stageCounts } from '../support/stage-counts.js';

const secret = (): string => `pw-${randomBytes(12).toString('base64url')}`;
const userOf = (s: RedisService): string => `tracklane-${s}`;
const ADMIN_PASSWORD = secret();
const passwords = Object.fromEntries(REDIS_SERVICES.map((s) => [s, secret()])) as Record<RedisService, string>;

let ch: ClickHouseClient;
let fleet: Fleet | undefined;
let redis: PrivateRedis | undefined;
let admin: Redis | undefined;

beforeAll(() => {
  ch = createClient(clickhouseClientOptions());
});
afterAll(async () => {
  await ch?.close();
});
afterEach(async () => {
  await fleet?.stopAll();
  fleet = undefined;
  if (admin) await closeRedis(admin);
  admin = undefined;
  await redis?.destroy();
  redis = undefined;
});

async function q<T = Record<string, unknown>>(query: string, params: Record<string, unknown>): Promise<T[]> {
  return (await ch.query({ query, query_params: params, format: 'JSONEachRow' })).json<T>();
}

const track = (id: string, userId: string) => ({ type: 'track', event: 'E', messageId: id, userId });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A fleet whose Redis asks every service for its own ACL user, over TLS only. */
async function fleetOnPrivateRedis(): Promise<{ fleet: Fleet; redis: PrivateRedis; admin: Redis }> {
  const f = await startFleet({ services: [], partitions: 2 });
  const scope = { redisPrefix: f.env['TRACKLANE_REDIS_PREFIX'] ?? '', topicPrefix: f.prefix };
  const r = await startPrivateRedis({
    password: ADMIN_PASSWORD,
    tls: true,
    aclUsers: REDIS_SERVICES.map((s) => ({ name: userOf(s), password: passwords[s], rules: redisAclRules(s, scope) })),
  });
  // NOTE: fleet.env is what every process of the fleet is started with
  Object.assign(f.env, { REDIS_URL: r.url, REDIS_TLS_CA_FILE: r.caFile ?? '' });
  for (const s of REDIS_SERVICES) await f.start(s, s, { REDIS_USERNAME: userOf(s), REDIS_PASSWORD: passwords[s] });
  const a = openRedis({ ...redisConnectionOfUrl(`rediss://:${encodeURIComponent(ADMIN_PASSWORD)}@127.0.0.1:${r.port}`), REDIS_TLS_CA_FILE: r.caFile }, 'test-admin');
  await a.ping();
  return { fleet: f, redis: r, admin: a };
}

describe('fleet on Redis with a password, TLS and an ACL user per service (check 3)', () => {
  it('runs, pseudonymizes, and fails closed while a service cannot log in to Redis', async () => {
    ({ fleet, redis, admin } = await fleetOnPrivateRedis());
    const f = fleet;
    const tenantId = `racl-${f.prefix.slice(1, 9)}`;
    const created = await f.admin<{ writeKey: string }>('PUT', `/v1/admin/tenants/${tenantId}`);
    expect(created.status).toBe(201);
    const flipped = await f.admin('PATCH', `/v1/admin/tenants/${tenantId}/flags`, { anonymizeIdentity: true });
    expect(flipped.status).toBe(200);
    // forward only: anonymizeSince lies up to 2 s ahead (the propagation window); send after it
    await sleep(Math.max(0, Number(flipped.body['anonymizeSince']) - Date.now() + 50));
    // NOTE: the tenant's version 1 is a stored key the compactor's keeper made (as its ACL user)
    const keys = await storedKeyRing(admin, f.env['TRACKLANE_REDIS_PREFIX'] ?? '', f.env['TRACKLANE_MASTER_KEY'], [tenantId]);
    const writeKey = created.body.writeKey;
    const stored = async (prefix: string) =>
      toNumber((await q<{ n: string }>('SELECT count() AS n FROM events FINAL WHERE tenant_id = {t:String} AND startsWith(event_id, {p:String})', { t: tenantId, p: prefix }))[0]?.n);
    const send = async (prefix: string, n: number) => {
      const events = Array.from({ length: n }, (_, i) => track(`${prefix}${i}`, `person-${i % 17}@example.com`));
      for (let i = 0; i < n; i += 250) expect(await sendBatch(f.collectorUrl(), writeKey, events.slice(i, i + 250))).toBe(200);
    };
    // events the enricher handed on to tracklane.enriched.v1 (acked; a record there holds many)
    const enrichedCount = async () => (await stageCounts(`http://127.0.0.1:${f.processes.get('enricher')?.port}`)).get('enrich')?.out ?? 0;
    const changePassword = async (s: RedisService, password: string) => {
      await admin!.call('ACL', 'SETUSER', userOf(s), 'resetpass', `>${password}`);
      // NOTE: ACL SETUSER keeps connections that are logged in already: cut them, as a rotation would on restart
      await admin!.call('CLIENT', 'KILL', 'USER', userOf(s));
    };

    // 1. the fleet runs on it: every event once, pseudonymized
    await send('ok-', 1_000);
    await eventually(async () => (await stored('ok-')) === 1_000, 120_000, '1,000 rows through the ACL users').catch(async (err: Error) => {
      throw new Error(`${err.message}\n${await f.diagnostics()}`);
    });

    // 2. started without the password: not ready, names the setting, exits on its start timeout
    const noPassword = await f.start('enricher', 'enricher-no-password', { STARTUP_TIMEOUT_MS: '5000' }, { awaitReady: false });
    const codes = await readyzCodesUntilExit(noPassword);
    expect((await noPassword.exited).code).toBe(1);
    expect(codes).toContain(503);
    expect(codes).not.toContain(200);
    expect(noPassword.output()).toContain('REDIS_PASSWORD');
    expect(noPassword.output()).toContain('STARTUP_TIMEOUT_MS');
    f.processes.delete('enricher-no-password');

    // 3a. the anonymizer's password changed: the enricher goes on, the anonymizer passes nothing
    const enrichedBefore = await enrichedCount();
    await changePassword('anonymizer', secret());
    await sleep(1_500);
    await send('anon-', 300);
    await eventually(async () => (await enrichedCount()) >= enrichedBefore + 300, 60_000, 'the enricher still enriching');
    await sleep(6_000);
    expect(await stored('anon-')).toBe(0);
    await changePassword('anonymizer', passwords.anonymizer);
    await eventually(async () => (await stored('anon-')) === 300, 120_000, 'the anonymizer resumed');

    // 3b. the enricher's password changed: nothing is enriched until it is restored
    await changePassword('enricher', secret());
    await sleep(1_500);
    const enrichedWhileLocked = await enrichedCount();
    await send('enr-', 300);
    await sleep(6_000);
    expect(await enrichedCount()).toBe(enrichedWhileLocked);
    expect(await stored('enr-')).toBe(0);
    await changePassword('enricher', passwords.enricher);
    await eventually(async () => (await stored('enr-')) === 300, 120_000, 'the enricher resumed');

    // exactly once, and no identity in clear: every stored user id is the tenant's pseudonym
    const rows = await q<{ event_id: string; user_id: string; n: string }>(
      'SELECT event_id, any(user_id) AS user_id, count() AS n FROM events FINAL WHERE tenant_id = {t:String} GROUP BY event_id',
      { t: tenantId },
    );
    expect(rows).toHaveLength(1_600);
    expect(rows.filter((r) => toNumber(r.n) !== 1)).toEqual([]);
    const clear = new Set(Array.from({ length: 17 }, (_, i) => `person-${i}@example.com`));
    const pseudonyms = new Set([...clear].map((u) => keys.pseudonym(tenantId, 1, u)));
    expect(rows.filter((r) => clear.has(r.user_id))).toEqual([]);
    expect(rows.filter((r) => !pseudonyms.has(r.user_id))).toEqual([]);
    // no service ever logged a password
    for (const p of f.processes.values()) for (const pw of [ADMIN_PASSWORD, ...Object.values(passwords)]) expect(p.output()).not.toContain(pw);
  }, 480_000);
});
