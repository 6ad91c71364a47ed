// Integration tests of the Redis tenant store against the machine's real Redis (REDIS_URL or
// 127.0.0.1:6379). Every test uses its own key prefix and deletes its keys afterwards.
import { randomBytes } from 'node:crypto';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { anonymizationApplies } from '../anonymize/anonymize-stage.js';
import { createLogger, type Logger } from '../core/logger.js';
import { DEFAULT_FLAGS, type TenantFlags } from './flags.js';
import { DEFAULT_PROPAGATION_WINDOW_MS, DEFAULT_STALE_AFTER_MS, openRedisTenantStore, writeKeyHash, type RedisTenantStore, type RedisTenantStoreOptions } from './redis-tenant-store.js';
import { TenantStoreError } from './tenant-store.js';
import { legacyWriteKeyId } from './tenant-keys.js';
import { eventually } from '../../test/support/poll.js';

const REDIS_URL = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const upstream = new URL(REDIS_URL);

let admin: Redis;
let prefix: string;
const stores: RedisTenantStore[] = [];
const clients: Redis[] = [];
const proxies: TcpProxy[] = [];

beforeAll(async () => {
  admin = new Redis(REDIS_URL, { maxRetriesPerRequest: 1, lazyConnect: true });
  try {
    await admin.connect();
    await admin.ping();
  } catch (err) {
    throw new Error(`Redis is not reachable at ${REDIS_URL} (${(err as Error).message}): run \`npm run services:up\` or start redis-server`);
  }
});
afterAll(async () => {
  await admin.quit();
});

afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
  await Promise.all(clients.splice(0).map((c) => c.quit().catch(() => c.disconnect())));
  await Promise.all(proxies.splice(0).map((p) => p.close()));
  const keys = await keysUnder(prefix);
  if (keys.length > 0) await admin.del(...keys);
});

function newPrefix(): string {
  prefix = `tl-test-${randomBytes(6).toString('hex')}:`;
  return prefix;
}

interface Captured {
  logger: Logger;
  lines: string[];
}
function capturedLogger(): Captured {
  const lines: string[] = [];
  return { lines, logger: createLogger({ level: 'debug', destination: { write: (s: string) => void lines.push(s) } }) };
}

async function open(overrides: Partial<RedisTenantStoreOptions> = {}): Promise<RedisTenantStore> {
  const s = await openRedisTenantStore({ redis: REDIS_URL, keyPrefix: prefix, logger: capturedLogger().logger, ...overrides });
  stores.push(s);
  return s;
}

/** A client that reconnects fast, for stores behind a proxy. */
function clientVia(port: number): Redis {
  const c = new Redis({ host: '127.0.0.1', port, retryStrategy: () => 50, maxRetriesPerRequest: 1 });
  c.on('error', () => undefined);
  clients.push(c);
  return c;
}

async function keysUnder(p: string): Promise<string[]> {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await admin.scan(cursor, 'MATCH', `${p}*`, 'COUNT', 500);
    out.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  return out;
}

/** Everything Redis holds under the prefix, names and values, as one string. */
async function dumpUnder(p: string): Promise<string> {
  const parts: string[] = [];
  for (const key of await keysUnder(p)) {
    parts.push(key);
    const type = await admin.type(key);
    if (type === 'string') parts.push((await admin.get(key)) ?? '');
    else if (type === 'hash') parts.push(JSON.stringify(await admin.hgetall(key)));
    else if (type === 'zset') parts.push(JSON.stringify(await admin.zrange(key, 0, -1, 'WITHSCORES')));
    else parts.push(`<${type}>`);
  }
  return parts.join('\n');
}

/** Writes a tenant's fields by hand, as an operator would: bumps rev, no publish. */
async function handWrite(tenantId: string, fields: Record<string, string>): Promise<void> {
  await admin.eval(
    `local rev = redis.call('INCR', KEYS[2])
     redis.call('HSET', KEYS[1], 'rev', rev, unpack(ARGV, 2))
     redis.call('ZADD', KEYS[3], rev, ARGV[1])`,
    3,
    `${prefix}tenant:${tenantId}`,
    `${prefix}rev`,
    `${prefix}tenants`,
    tenantId,
    ...Object.entries(fields).flat(),
  );
}

async function storedFlags(tenantId: string): Promise<TenantFlags> {
  return JSON.parse((await admin.hget(`${prefix}tenant:${tenantId}`, 'flags')) ?? 'null') as TenantFlags;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A TCP proxy to Redis the test can cut (connections refused and reset: ioredis sees it) or
 * black-hole (connections stay open, nothing flows: ioredis sees nothing).
 */
class TcpProxy {
  private mode: 'pass' | 'cut' | 'blackhole' = 'pass';
  private readonly sockets = new Set<Socket>();
  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(): Promise<TcpProxy> {
    let proxy: TcpProxy | undefined;
    const server = createServer((client) => proxy?.accept(client));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('proxy has no port');
    proxy = new TcpProxy(server, address.port);
    proxies.push(proxy);
    return proxy;
  }

  private accept(client: Socket): void {
    client.on('error', () => undefined);
    if (this.mode === 'cut') return void client.destroy();
    this.sockets.add(client);
    client.on('close', () => this.sockets.delete(client));
    if (this.mode === 'blackhole') return;
    const server = connect(Number(upstream.port || 6379), upstream.hostname);
    server.on('error', () => client.destroy());
    client.on('close', () => server.destroy());
    server.on('close', () => client.destroy());
    this.sockets.add(server);
    server.on('close', () => this.sockets.delete(server));
    client.pipe(server);
    server.pipe(client);
  }

  cut(): void {
    this.mode = 'cut';
    for (const s of this.sockets) s.destroy();
  }

  blackhole(): void {
    this.mode = 'blackhole';
    for (const s of this.sockets) {
      s.unpipe();
      s.pause();
    }
  }

  /** Passes again; black-holed connections are reset so clients reconnect. */
  restore(): void {
    const wasBlackhole = this.mode === 'blackhole';
    this.mode = 'pass';
    if (wasBlackhole) for (const s of this.sockets) s.destroy();
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

describe('redis tenant store', () => {
  it('resolves the clear write key from the hash only; Redis holds no clear key', async () => {
    newPrefix();
    const a = await open();
    const { tenant, created, writeKey = '' } = await a.createTenant('acme');
    expect(created).toBe(true);
    expect(writeKey).toMatch(/^tl_[A-Za-z0-9_-]{32}$/);
    expect(a.tenantByWriteKey(writeKey)?.tenantId).toBe('acme');
    expect(a.tenantByWriteKey(writeKey.slice(0, -1) + (writeKey.endsWith('A') ? 'B' : 'A'))).toBeUndefined();
    expect(a.tenantByWriteKey('not a key')).toBeUndefined();
    expect(a.get('acme')).toEqual(DEFAULT_FLAGS);

    const dump = await dumpUnder(prefix);
    expect(dump).toContain(writeKeyHash(writeKey));
    expect(dump).not.toContain(writeKey);
    expect(dump).not.toContain(writeKey.slice(3));
    expect(await admin.get(`${prefix}writekey:${writeKeyHash(writeKey)}`)).toBe('acme');

    // A second replica opened later loads it by the hash alone.
    const b = await open();
    expect(b.tenantByWriteKey(writeKey)).toMatchObject({ tenantId: 'acme', createdAt: tenant.createdAt, keys: tenant.keys });
    expect(b.list().map((t) => t.tenantId)).toEqual(['acme']);
    await expect(b.createTenant('Not Valid')).rejects.toThrow(TenantStoreError);
  });

  it('createTenant is idempotent, and exactly one of concurrent creates on two replicas wins', async () => {
    newPrefix();
    const [a, b] = await Promise.all([open(), open()]);
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? a : b).createTenant('acme')));
    const winners = results.filter((r) => r.created);
    expect(winners).toHaveLength(1);
    const key = winners[0]?.writeKey ?? '';
    for (const r of results.filter((x) => !x.created)) {
      // NOTE: an existing tenant comes back without its key: only its hash is stored.
      expect(r.writeKey).toBeUndefined();
      expect(r.tenant).toMatchObject({ tenantId: 'acme', createdAt: winners[0]?.tenant.createdAt });
    }
    await eventually(() => a.tenantByWriteKey(key) !== undefined && b.tenantByWriteKey(key) !== undefined, 3_000, 'both replicas resolve the winning key', 5);
    expect(await admin.zcard(`${prefix}tenants`)).toBe(1);
    expect(await keysUnder(`${prefix}writekey:`)).toHaveLength(1);
  });

  it('concurrent patches from two replicas all land, each bumping rev', async () => {
    newPrefix();
    const [a, b] = await Promise.all([open(), open()]);
    await a.createTenant('acme');
    const rev0 = Number(await admin.hget(`${prefix}tenant:acme`, 'rev'));
    const now = Date.now();
    await Promise.all([
      a.patchFlags('acme', { ipPolicy: 'drop' }, now),
      b.patchFlags('acme', { resolveIp: false }, now),
      a.patchFlags('acme', { keyVersion: 3 }, now),
      b.patchFlags('acme', { scrubQueryParams: ['token'] }, now),
      a.patchFlags('acme', { piiTraits: ['email'] }, now),
      b.patchFlags('acme', { anonymizeIdentity: true }, now),
    ]);
    const expected = { ipPolicy: 'drop', resolveIp: false, keyVersion: 3, scrubQueryParams: ['token'], piiTraits: ['email'], anonymizeIdentity: true };
    expect(await storedFlags('acme')).toMatchObject(expected);
    expect(Number(await admin.hget(`${prefix}tenant:acme`, 'rev'))).toBeGreaterThanOrEqual(rev0 + 6);
    await eventually(() => a.get('acme')?.keyVersion === 3 && b.get('acme')?.piiTraits.length === 1 && b.get('acme')?.ipPolicy === 'drop' && a.get('acme')?.anonymizeIdentity === true, 3_000, 'both replicas see every patch', 5);
    expect(b.get('acme')).toMatchObject(expected);

    expect(await a.patchFlags('nobody', { ipPolicy: 'mask' }, now)).toBeUndefined();
    await expect(a.patchFlags('acme', { keyVersion: 0 }, now)).rejects.toThrow();
    await expect(a.patchFlags('acme', { anonymizeSince: 5 } as never, now)).rejects.toThrow();
  });

  it('a flip on one replica reaches another within 2 s, stamped one propagation window ahead', async () => {
    newPrefix();
    const [a, b] = await Promise.all([open(), open()]);
    await a.createTenant('acme');
    await eventually(() => b.get('acme') !== undefined, 3_000, 'b knows acme', 5);
    const now = Date.now();
    const flags = await a.patchFlags('acme', { anonymizeIdentity: true }, now);
    expect(flags?.anonymizeSince).toBe(now + DEFAULT_PROPAGATION_WINDOW_MS);
    const flipWaitFrom = Date.now();
    await eventually(() => b.get('acme')?.anonymizeIdentity === true, 2_000, 'b sees the flip', 5);
    const elapsed = Date.now() - flipWaitFrom;
    expect(Date.now() - now).toBeLessThan(2_000);
    expect(elapsed).toBeLessThan(2_000);
    expect(b.get('acme')).toEqual(flags);

    // Switching it on again keeps the original start; off clears it.
    expect((await b.patchFlags('acme', { anonymizeIdentity: true }, now + 10_000))?.anonymizeSince).toBe(now + DEFAULT_PROPAGATION_WINDOW_MS);
    expect((await b.patchFlags('acme', { anonymizeIdentity: false }, now))?.anonymizeSince).toBeNull();
  });

  it('restamps a flip whose write lands later than its stamp allows', async () => {
    newPrefix();
    const a = await open();
    await a.createTenant('acme');
    // A stamp 10 s old, as from an admin request that stalled: the write would land too late.
    const before = Date.now();
    const stale = before - 10_000;
    const flags = await a.patchFlags('acme', { anonymizeIdentity: true }, stale);
    // Restamped from Redis TIME (same machine here, so no skew to allow for).
    expect(flags?.anonymizeSince).toBeGreaterThanOrEqual(before + DEFAULT_PROPAGATION_WINDOW_MS);
    expect(flags?.anonymizeSince).toBeLessThanOrEqual(Date.now() + DEFAULT_PROPAGATION_WINDOW_MS);
  });

  // The forward-stamp property (TRICKY comment in the module): whatever a replica misses, it
  // never classifies an event received at or after anonymizeSince as clear.
  it.each([
    { name: 'a replica without pub/sub (poll only)', mode: 'poll' as const },
    { name: 'a replica whose connection is black-holed before the flip', mode: 'blackhole' as const },
  ])('never passes an event received after anonymizeSince in clear: $name', async ({ mode }) => {
    newPrefix();
    const a = await open();
    await a.createTenant('acme');
    const proxy = await TcpProxy.start();
    const b = await open({ redis: clientVia(proxy.port), pubsub: mode === 'poll' ? false : true });
    expect(b.get('acme')?.anonymizeIdentity).toBe(false);

    if (mode === 'blackhole') proxy.blackhole();
    const flipAt = Date.now();
    const flags = await a.patchFlags('acme', { anonymizeIdentity: true }, flipAt);
    const since = flags?.anonymizeSince ?? 0;
    expect(since).toBe(flipAt + DEFAULT_PROPAGATION_WINDOW_MS);

    // Sample b as an anonymizer would, with the latest possible received_at (now).
    const samples: { t: number; flags: TenantFlags | undefined }[] = [];
    while (Date.now() < since + 300) {
      samples.push({ t: Date.now(), flags: b.get('acme') });
      await delay(2);
    }
    const leaks = samples.filter((s) => s.flags !== undefined && s.t >= since && !anonymizationApplies(s.flags, s.t));
    expect(leaks).toEqual([]);
    // The window was really exercised: b held the old flags after the flip…
    expect(samples.some((s) => s.t > flipAt && s.flags?.anonymizeIdentity === false)).toBe(true);
    if (mode === 'poll') {
      // …and learned of it by polling well before anonymizeSince.
      expect(samples.find((s) => s.flags?.anonymizeIdentity === true)?.t ?? Infinity).toBeLessThan(since);
    } else {
      // …and went unavailable (fail closed) before anonymizeSince, within staleAfterMs + a poll.
      const firstUndefined = samples.find((s) => s.flags === undefined)?.t ?? Infinity;
      expect(firstUndefined).toBeLessThan(since);
      expect(samples.filter((s) => s.t >= since).every((s) => s.flags === undefined)).toBe(true);
      expect(b.available()).toBe(false);
      proxy.restore();
      await eventually(() => b.get('acme')?.anonymizeIdentity === true, 5_000, 'b reconnects with the flip', 5);
      expect(b.get('acme')).toEqual(flags);
    }
  });

  it('fails closed while Redis is cut off and returns with the latest flags', async () => {
    newPrefix();
    const a = await open();
    await a.createTenant('acme');
    const proxy = await TcpProxy.start();
    const c = await open({ redis: clientVia(proxy.port) });
    const { writeKey: globexKey = '' } = await a.createTenant('globex');
    await eventually(() => c.get('globex') !== undefined, 3_000, 'c knows globex', 5);

    proxy.cut();
    const cutAt = Date.now();
    await eventually(() => c.get('acme') === undefined && c.get('globex') === undefined, DEFAULT_STALE_AFTER_MS, 'c.get fails closed', 5);
    expect(Date.now() - cutAt).toBeLessThanOrEqual(DEFAULT_STALE_AFTER_MS);
    expect(c.available()).toBe(false);
    // The write-key registry keeps serving the collector from the cache.
    expect(c.tenantByWriteKey(globexKey)?.tenantId).toBe('globex');

    // A change made while c is cut off (pub/sub message lost to it).
    const flags = await a.patchFlags('acme', { anonymizeIdentity: true, ipPolicy: 'mask' }, Date.now());
    expect(await c.waitUntilAvailable(200)).toBe(false);
    expect(c.get('acme')).toBeUndefined();

    proxy.restore();
    expect(await c.waitUntilAvailable(5_000)).toBe(true);
    expect(c.get('acme')).toEqual(flags);
    expect(c.get('globex')).toEqual(DEFAULT_FLAGS);
  });

  it('catches up by reconcile when a pub/sub message is lost', async () => {
    newPrefix();
    const b = await open();
    const a = await open();
    await a.createTenant('acme');
    await eventually(() => b.get('acme') !== undefined, 3_000, 'b knows acme', 5);
    // A write that publishes nothing, as when a message is lost during a reconnect.
    const changed = { ...DEFAULT_FLAGS, ipPolicy: 'drop' };
    await handWrite('acme', { flags: JSON.stringify(changed) });
    const reconcileWaitFrom = Date.now();
    await eventually(() => b.get('acme')?.ipPolicy === 'drop', 2_000, 'b reconciles', 5);
    const elapsed = Date.now() - reconcileWaitFrom;
    expect(elapsed).toBeLessThan(2_000);
    expect(b.get('acme')).toEqual(changed);
  });

  it('fails closed on corrupt flags in Redis, logging the tenant but not the values', async () => {
    newPrefix();
    const a = await open();
    const { writeKey = '' } = await a.createTenant('acme');
    await a.createTenant('globex');
    const log = capturedLogger();
    const b = await open({ logger: log.logger });
    expect(b.get('acme')).toEqual(DEFAULT_FLAGS);

    const secret = 'SECRET-VALUE-42';
    await handWrite('acme', { flags: `{"anonymizeIdentity":"${secret}"` });
    await eventually(() => b.getTenant('acme') === undefined, 3_000, 'b drops acme', 5);
    expect(b.get('acme')).toBeUndefined();
    expect(b.tenantByWriteKey(writeKey)).toBeUndefined();
    expect(b.get('globex')).toEqual(DEFAULT_FLAGS);
    expect(b.available()).toBe(true);
    const errors = log.lines.filter((l) => l.includes('"level":50'));
    expect(errors.some((l) => l.includes('"tenantId":"acme"') && l.includes('not valid JSON'))).toBe(true);
    expect(log.lines.join('')).not.toContain(secret);

    // Valid JSON of the wrong shape is just as closed; a fresh replica refuses it too.
    await handWrite('acme', { flags: JSON.stringify({ ...DEFAULT_FLAGS, anonymizeIdentity: secret }) });
    const c = await open();
    expect(c.get('acme')).toBeUndefined();
    await expect(c.patchFlags('acme', { ipPolicy: 'mask' }, Date.now())).rejects.toThrow(TenantStoreError);
    await expect(c.createTenant('acme')).rejects.toThrow(TenantStoreError);

    // Fixed by hand: back on every replica.
    await handWrite('acme', { flags: JSON.stringify(DEFAULT_FLAGS) });
    await eventually(() => b.get('acme') !== undefined && c.get('acme') !== undefined, 3_000, 'b and c reload acme', 5);
  });

  it('keys: created on one replica, known to the other; revoked, refused by both within 2 s; only hashes in Redis', async () => {
    newPrefix();
    const [a, b] = await Promise.all([open(), open()]);
    const { writeKey: first = '' } = await a.createTenant('acme');
    const second = await a.createWriteKey('acme');
    const api = await a.createApiKey('acme', { name: 'analysts', scopes: ['read'] });
    if (!second || !api) throw new Error('tenant vanished');
    expect(api.key).toMatch(/^tlk_[A-Za-z0-9_-]{32}$/);
    await eventually(() => b.tenantByWriteKey(second.writeKey) !== undefined && b.apiKey(api.key) !== undefined, 3_000, 'b knows both write keys and the API key', 5);
    expect(b.tenantByWriteKey(first)?.tenantId).toBe('acme');
    expect(b.apiKey(api.key)).toMatchObject({ tenant: { tenantId: 'acme' }, key: { keyId: api.entry.keyId, name: 'analysts', scopes: ['read'] } });
    const dump = await dumpUnder(prefix);
    for (const secret of [first, second.writeKey, api.key]) {
      expect(dump).not.toContain(secret);
      expect(dump).toContain(writeKeyHash(secret));
    }

    const revokedAt = Date.now();
    expect(await b.revokeKey('acme', api.entry.keyId)).toBe('revoked');
    expect(await b.revokeKey('acme', second.entry.keyId)).toBe('revoked');
    await eventually(() => a.apiKey(api.key) === undefined && a.tenantByWriteKey(second.writeKey) === undefined, 2_000, 'a drops both', 5);
    expect(Date.now() - revokedAt).toBeLessThan(2_000);
    expect(b.apiKey(api.key)).toBeUndefined();
    expect(a.tenantByWriteKey(first)?.tenantId).toBe('acme');
    expect(await admin.get(`${prefix}writekey:${writeKeyHash(second.writeKey)}`)).toBeNull();
    expect(await a.revokeKey('acme', api.entry.keyId)).toBe('no_key');
    expect(await a.revokeKey('nope', api.entry.keyId)).toBe('no_tenant');
    expect(await a.createWriteKey('nope')).toBeUndefined();
  });

  it('a record written before keys had ids keeps its write key, named by a derived id on every replica', async () => {
    newPrefix();
    const a = await open();
    const { writeKey = '' } = await a.createTenant('acme');
    // a record holding writeKeyHash only, no `keys` field
    await admin.hdel(`${prefix}tenant:acme`, 'keys');
    await handWrite('acme', {});
    const b = await open();
    const legacy = b.tenantByWriteKey(writeKey);
    expect(legacy?.keys.writeKeys).toEqual([{ keyId: legacyWriteKeyId(writeKeyHash(writeKey)), hash: writeKeyHash(writeKey), createdAt: legacy?.createdAt }]);
    await eventually(() => a.tenantByWriteKey(writeKey)?.keys.writeKeys[0]?.keyId === legacy?.keys.writeKeys[0]?.keyId, 3_000, 'a agrees on the id', 5);
    // a key change writes the full list; the old key stays valid until revoked
    const added = await b.createWriteKey('acme');
    await eventually(() => a.tenantByWriteKey(added?.writeKey ?? '') !== undefined, 3_000, 'a knows the new key', 5);
    expect(a.tenantByWriteKey(writeKey)?.tenantId).toBe('acme');
    expect(await a.revokeKey('acme', legacyWriteKeyId(writeKeyHash(writeKey)))).toBe('revoked');
    await eventually(() => b.tenantByWriteKey(writeKey) === undefined, 3_000, 'b drops the legacy key', 5);
  });

  it('API keys fail closed while the cache may be stale; write keys keep serving', async () => {
    newPrefix();
    const proxy = await TcpProxy.start();
    const a = await open();
    const c = await open({ redis: clientVia(proxy.port) });
    const { writeKey = '' } = await a.createTenant('acme');
    const api = await a.createApiKey('acme', { name: 'ops', scopes: ['admin'] });
    await eventually(() => c.apiKey(api?.key ?? '') !== undefined, 3_000, 'c knows the API key', 5);
    proxy.cut();
    await eventually(() => c.apiKey(api?.key ?? '') === undefined, DEFAULT_STALE_AFTER_MS + 500, 'c stops answering for API keys', 5);
    expect(c.credentialsAvailable?.()).toBe(false);
    expect(c.tenantByWriteKey(writeKey)?.tenantId).toBe('acme');
    await proxy.close();
  });

  it('close is idempotent, leaves a passed client open and rejects later mutations', async () => {
    newPrefix();
    const external = new Redis(REDIS_URL);
    clients.push(external);
    const s = await open({ redis: external });
    const { writeKey = '' } = await s.createTenant('acme');
    await Promise.all([s.close(), s.close()]);
    await s.close();
    expect(external.status).toBe('ready');
    expect(await external.ping()).toBe('PONG');
    expect(s.available()).toBe(false);
    expect(s.get('acme')).toBeUndefined();
    expect(s.tenantByWriteKey(writeKey)?.tenantId).toBe('acme');
    await expect(s.createTenant('globex')).rejects.toThrow(TenantStoreError);
    await expect(s.patchFlags('acme', {}, Date.now())).rejects.toThrow(TenantStoreError);
  });

  it('open rejects when Redis is unreachable', async () => {
    newPrefix();
    const proxy = await TcpProxy.start();
    proxy.cut();
    const client = clientVia(proxy.port);
    await expect(openRedisTenantStore({ redis: client, keyPrefix: prefix, logger: capturedLogger().logger, openTimeoutMs: 300 })).rejects.toThrow(TenantStoreError);
  });
});
