// Redis with a password, TLS only and the documented ACL user of every service
// (libs/config/redis-acl.ts), on a private redis-server: each service's real Redis code paths
// (tenant store, compactor lease and presence) work as its user, with no denial in the ACL log;
// a reader cannot change a tenant; wrong credentials and certificates are named by setting,
// never by value; a password changed under a running store fails it closed.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { createRedisRateLimits, rateLimitKey } from '../../libs/collection/rate-limits.js';
import { createCompactorLock } from '../../services/compactor/compactor-lock.js';
import { announcePresence, compactorPresenceKey, presenceCheck } from '../../services/compactor/compactor-presence.js';
import { aclSetUserArgs, REDIS_SERVICES, redisAclRules, type RedisService } from '../../libs/config/redis-acl.js';
import { closeRedis, openRedis, redisConnectionOfUrl, redisStartupProblem, type RedisConnectionConfig } from '../../libs/config/redis-connection.js';
import { createLogger, type Logger } from '../../libs/core/logger.js';
import { openRedisTenantStore, type RedisTenantStore } from '../../libs/tenants/redis-tenant-store.js';
import { TenantStoreError } from '../../libs/tenants/tenant-store.js';
import { fleetConfigSchema } from '../../services/fleet/fleet-config.js';
import { generateTlsFiles, startPrivateRedis, type PrivateRedis } from '../support/private-redis.js';
import { createKeyKeeper } from '../../libs/privacy/key-keeper.js';
import { redisKeyHash, redisKeyStore } from '../../libs/privacy/key-stores.js';
import { keyWrapper } from '../../libs/privacy/key-wrap.js';
import { createStoredKeys } from '../../libs/privacy/stored-keys.js';
import { eventually } from '../support/poll.js';
import { redisDailySalts, utcDay } from '../../libs/collection/daily-ids.js';
import { openRedisTrackingPreferences } from '../../libs/collection/redis-tracking-preferences.js';
import { subjectHasher } from '../../libs/privacy/subject-hash.js';
import { openRedisPlanStore } from '../../libs/plans/redis-plan-store.js';
import { trackingPlanSchema } from '../../libs/plans/plan-schema.js';

const PREFIX = 'tracklane:';
const TOPIC_PREFIX = 'itest.';
const scope = { redisPrefix: PREFIX, topicPrefix: TOPIC_PREFIX };
const secret = (): string => `pw-${randomBytes(12).toString('base64url')}`;
const ADMIN_PASSWORD = secret();
// NOTE: characters a URL must percent-encode, so the URL form is tested with them
const passwords = Object.fromEntries(REDIS_SERVICES.map((s) => [s, `${secret()}/:@%`])) as Record<RedisService, string>;
const userOf = (s: RedisService): string => `tracklane-${s}`;
const everySecret = (): string[] => [ADMIN_PASSWORD, ...Object.values(passwords)];

/** The fleet config's Redis settings, parsed by the fleet schema as a service would. */
const redisSettings = fleetConfigSchema.pick({ REDIS_URL: true, REDIS_USERNAME: true, REDIS_PASSWORD: true, REDIS_PASSWORD_FILE: true, REDIS_TLS_CA_FILE: true, TRACKLANE_REDIS_PREFIX: true, TOPIC_PREFIX: true });
type Settings = z.infer<typeof redisSettings>;

let redis: PrivateRedis;
let admin: Redis;
let dir: string;
const lines: string[] = [];
const logger: Logger = createLogger({ level: 'debug', destination: { write: (s: string) => void lines.push(s) } });
const stores: RedisTenantStore[] = [];
const clients: Redis[] = [];

beforeAll(async () => {
  redis = await startPrivateRedis({
    password: ADMIN_PASSWORD,
    tls: true,
    aclUsers: REDIS_SERVICES.map((s) => ({ name: userOf(s), password: passwords[s], rules: redisAclRules(s, scope) })),
  });
  dir = mkdtempSync(join(tmpdir(), 'tracklane-redis-auth-'));
  admin = openRedis({ ...redisConnectionOfUrl(`rediss://:${encodeURIComponent(ADMIN_PASSWORD)}@127.0.0.1:${redis.port}`), REDIS_TLS_CA_FILE: redis.caFile }, 'test-admin', {});
  await admin.ping();
});

afterAll(async () => {
  if (admin) await closeRedis(admin);
  await redis?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

beforeEach(async () => {
  await admin.acl('LOG', 'RESET');
});

afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
  await Promise.all(clients.splice(0).map((c) => closeRedis(c)));
  // NOTE: no secret in any log line of any test, whatever failed
  const log = lines.splice(0).join('\n');
  for (const s of everySecret()) expect(log).not.toContain(s);
});

/** A service's settings, the password given as `how` says. */
function settingsOf(service: RedisService, how: 'url' | 'setting' | 'file', overrides: Record<string, string> = {}): Settings {
  const env: Record<string, string> = { REDIS_TLS_CA_FILE: redis.caFile ?? '', TRACKLANE_REDIS_PREFIX: PREFIX, TOPIC_PREFIX };
  if (how === 'url') {
    env['REDIS_URL'] = `rediss://${userOf(service)}:${encodeURIComponent(passwords[service])}@127.0.0.1:${redis.port}`;
  } else {
    env['REDIS_URL'] = redis.url;
    env['REDIS_USERNAME'] = userOf(service);
    if (how === 'setting') env['REDIS_PASSWORD'] = passwords[service];
    else {
      const file = join(dir, `${service}-password`);
      // a mounted Secret's trailing newline
      writeFileSync(file, `${passwords[service]}\n`, { mode: 0o600 });
      env['REDIS_PASSWORD_FILE'] = file;
    }
  }
  return redisSettings.parse({ ...env, ...overrides });
}

/** As fleet-context.ts opens it: the service's settings, its key prefix. */
async function openStore(settings: Settings, openTimeoutMs?: number): Promise<RedisTenantStore> {
  const s = await openRedisTenantStore({ redis: settings, keyPrefix: settings.TRACKLANE_REDIS_PREFIX, logger, ...(openTimeoutMs ? { openTimeoutMs } : {}) });
  stores.push(s);
  return s;
}

function client(settings: RedisConnectionConfig, purpose: string): Redis {
  const c = openRedis(settings, purpose, { maxRetriesPerRequest: 1 });
  c.on('error', () => undefined);
  clients.push(c);
  return c;
}

/** What the ACL log holds for a user since the test began: every refused command, key or channel. */
async function denials(user: string): Promise<string[]> {
  const entries = (await admin.acl('LOG', '1000')) as unknown as unknown[][];
  return entries
    .map((e) => Object.fromEntries(Array.from({ length: e.length / 2 }, (_, i) => [String(e[2 * i]), e[2 * i + 1]])))
    .filter((e) => e['username'] === user)
    .map((e) => `${String(e['reason'])} ${String(e['object'])}`);
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

/** Everything an error shows when logged or printed: message, own properties, causes. */
function everythingOf(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err, i = 0; e instanceof Error && i < 5; e = e.cause, i++) {
    parts.push(String(e), e.stack ?? '', JSON.stringify(e, Object.getOwnPropertyNames(e)));
  }
  return parts.join('\n');
}

const tenantId = (): string => `t${randomBytes(5).toString('hex')}`;

describe('Redis with a password, TLS and the per-service ACL users', () => {
  it('the collector creates tenants, changes flags and keys, and checks for a compactor, as its ACL user', async () => {
    const settings = settingsOf('collector', 'url');
    const store = await openStore(settings);
    const id = tenantId();
    const created = await store.createTenant(id);
    expect(created.created).toBe(true);
    const flags = await store.patchFlags(id, { anonymizeIdentity: true, piiTraits: ['email'] }, Date.now());
    expect(flags?.anonymizeIdentity).toBe(true);
    const wk = await store.createWriteKey(id);
    expect(wk?.writeKey).toBeDefined();
    const ak = await store.createApiKey(id, { name: 'ci', scopes: ['read'] });
    expect(ak?.key).toBeDefined();
    expect(await store.revokeKey(id, wk?.entry.keyId ?? '')).toBe('revoked');
    expect(await store.revokeKey(id, ak?.entry.keyId ?? '')).toBe('revoked');
    expect(store.tenantByWriteKey(created.writeKey ?? '')?.tenantId).toBe(id);
    // what the other services will read back
    expect(JSON.parse((await admin.hget(`${PREFIX}tenant:${id}`, 'flags')) ?? '{}')).toMatchObject({ anonymizeIdentity: true, piiTraits: ['email'] });
    expect(await admin.exists(`${PREFIX}writekey:${wk?.entry.hash ?? ''}`)).toBe(0);

    const seen = presenceCheck({ redis: client(settings, 'compactor-presence'), key: compactorPresenceKey(PREFIX, TOPIC_PREFIX), cacheMs: 0 });
    expect(await seen()).toBe(false);

    // collection controls: the day's cookieless salt, tracking preferences and their changes
    const { day, endsAt } = utcDay(Date.now());
    expect((await redisDailySalts(client(settings, 'collection'), PREFIX).saltOf(day, endsAt)).length).toBe(32);
    const hash = subjectHasher(randomBytes(32));
    const prefs = await openRedisTrackingPreferences({ redis: client(settings, 'collection'), subscriber: client(settings, 'collection-changes'), keyPrefix: PREFIX, hash, logger: createLogger({ level: 'silent' }) });
    const other = await openRedisTrackingPreferences({ redis: client(settings, 'collection'), subscriber: client(settings, 'collection-changes'), keyPrefix: PREFIX, hash, logger: createLogger({ level: 'silent' }) });
    await prefs.set(id, 'u1', false, Date.now());
    expect(await other.get(id, 'u1')).toMatchObject({ trackUsage: false });
    await eventually(() => other.tracked(id, 'u1') === false, 2_000, 'the change heard');
    await Promise.all([prefs.close(), other.close()]);

    // tracking plans: put, seen by another collector, removed
    const plans = await openRedisPlanStore({ redis: settings, keyPrefix: PREFIX, logger: createLogger({ level: 'silent' }) });
    const otherPlans = await openRedisPlanStore({ redis: settings, keyPrefix: PREFIX, logger: createLogger({ level: 'silent' }) });
    const plan = trackingPlanSchema.parse({ mode: 'flag', events: { 'Signed Up': { type: 'object' } } });
    expect((await plans.put(id, plan, Date.now())).version).toBe(1);
    await eventually(() => otherPlans.get(id)?.version === 1, 3_000, 'the plan seen by another collector');
    expect(await otherPlans.remove(id)).toBe(true);
    await Promise.all([plans.close(), otherPlans.close()]);

    // the shared rate limit: the take script (cold cache: EVALSHA, then EVAL) refuses the second request
    await admin.script('FLUSH');
    const limits = createRedisRateLimits({ redis: client(settings, 'rate-limits'), prefix: PREFIX });
    const limited = { ...created.tenant, flags: { ...created.tenant.flags, rateLimitPerSecond: 5 } };
    expect(await limits.admit(limited, 5, Date.now())).toEqual({ admitted: true });
    expect(await limits.admit(limited, 5, Date.now())).toEqual({ admitted: false, retryAfterSeconds: 1 });
    expect(await admin.pttl(rateLimitKey(PREFIX, id))).toBeGreaterThan(0);
    expect(await denials(userOf('collector'))).toEqual([]);
  });

  it('the enricher, anonymizer and sink load flags (cold script cache too) and follow changes, as their ACL users', async () => {
    const collector = await openStore(settingsOf('collector', 'setting'));
    const id = tenantId();
    await collector.createTenant(id);
    // NOTE: an empty script cache makes the readers fall back from EVALSHA_RO to EVAL_RO
    await admin.script('FLUSH');
    const readers = {
      enricher: await openStore(settingsOf('enricher', 'file')),
      anonymizer: await openStore(settingsOf('anonymizer', 'setting')),
      sink: await openStore(settingsOf('sink', 'url')),
    };
    for (const r of Object.values(readers)) expect(r.get(id)?.anonymizeIdentity).toBe(false);
    const since = (await collector.patchFlags(id, { anonymizeIdentity: true }, Date.now()))?.anonymizeSince;
    for (const [name, r] of Object.entries(readers)) {
      await eventually(() => r.get(id)?.anonymizeIdentity === true, 5_000, `${name} sees the flip`, 20);
      expect(r.get(id)?.anonymizeSince).toBe(since);
    }
    for (const s of ['enricher', 'anonymizer', 'sink'] as const) expect(await denials(userOf(s))).toEqual([]);
    expect(await denials(userOf('collector'))).toEqual([]);
  });

  it('a reader (enricher) or the compactor cannot change a tenant: NOPERM, named, and the flags stay', async () => {
    const collector = await openStore(settingsOf('collector', 'setting'));
    const id = tenantId();
    await collector.createTenant(id);
    await collector.patchFlags(id, { anonymizeIdentity: true }, Date.now());
    const before = await admin.hget(`${PREFIX}tenant:${id}`, 'flags');

    for (const service of ['enricher', 'compactor'] as const) {
      const settings = settingsOf(service, 'setting');
      const store = await openStore(settings);
      const err = await rejection(store.patchFlags(id, { anonymizeIdentity: false }, Date.now()));
      expect(redisStartupProblem(err)).toMatch(/the Redis ACL user lacks a permission \(the command evalsha\): check the ACL of REDIS_USERNAME/);
      await expect(store.createTenant(tenantId())).rejects.toThrow(/NOPERM/);

      // by hand, around the store: a write, a forged change message, a write in a read-only script
      const c = client(settings, 'probe');
      await expect(c.hset(`${PREFIX}tenant:${id}`, 'flags', '{}')).rejects.toThrow(/^NOPERM/);
      await expect(c.publish(`${PREFIX}tenants`, JSON.stringify({ tenantId: id, rev: 1 }))).rejects.toThrow(/^NOPERM/);
      await expect(c.eval_ro("return redis.call('hset', KEYS[1], 'flags', '{}')", 1, `${PREFIX}tenant:${id}`)).rejects.toThrow();
    }
    expect(await admin.hget(`${PREFIX}tenant:${id}`, 'flags')).toBe(before);
    expect(collector.get(id)?.anonymizeIdentity).toBe(true);
    // the ACL log the other tests find empty does record refusals
    expect(await denials(userOf('enricher'))).toEqual(expect.arrayContaining(['command evalsha', 'command hset', 'command publish']));
  });

  it('the compactor reads flags, holds, renews and releases its lease, and announces itself, as its ACL user', async () => {
    const collectorSettings = settingsOf('collector', 'setting');
    const collector = await openStore(collectorSettings);
    const id = tenantId();
    await collector.createTenant(id);
    await collector.patchFlags(id, { piiTraits: ['email', 'phone'] }, Date.now());

    const settings = settingsOf('compactor', 'file');
    const store = await openStore(settings);
    await eventually(() => store.get(id)?.piiTraits.length === 2, 5_000, 'the compactor sees the tenant', 20);
    // as compactor-service.ts: one connection for the lease and the presence key
    const redisOfCompactor = client(settings, 'compactor-lease');
    const leaseKey = `${PREFIX}compactor-lease:${TOPIC_PREFIX}`;
    const lock = createCompactorLock({ redis: redisOfCompactor, key: leaseKey, ttlMs: 600, pollMs: 50, logger });
    await lock.acquire();
    // several renewals (every ttl/3) outlive the first TTL
    await new Promise((r) => setTimeout(r, 1_000));
    expect(() => lock.assertHeld()).not.toThrow();
    expect(await admin.pttl(leaseKey)).toBeGreaterThan(0);
    await lock.release();
    expect(await admin.exists(leaseKey)).toBe(0);

    const presence = announcePresence({ redis: redisOfCompactor, key: compactorPresenceKey(PREFIX, TOPIC_PREFIX), logger });
    const seen = presenceCheck({ redis: client(collectorSettings, 'compactor-presence'), key: compactorPresenceKey(PREFIX, TOPIC_PREFIX), cacheMs: 0 });
    await eventually(async () => (await seen()) === true, 5_000, 'the collector sees the compactor', 20);
    await presence.stop();

    expect(lines.join('\n')).not.toMatch(/renewal failed|could not announce/);
    expect(await denials(userOf('compactor'))).toEqual([]);
  });

  it('the compactor keeps the wrapped pseudonym keys and the anonymizer reads them, as their ACL users; the collector cannot read them', async () => {
    const t = tenantId();
    const wrapper = keyWrapper(randomBytes(32));
    const collector = await openStore(settingsOf('collector', 'setting'));
    await collector.createTenant(t);
    await collector.patchFlags(t, { keyVersion: 2 }, Date.now());
    const compactorStore = await openStore(settingsOf('compactor', 'file'));
    await eventually(() => compactorStore.get(t)?.keyVersion === 2, 5_000, 'the compactor sees the tenant', 20);
    // as compactor-service.ts: the keeper on the lease connection
    const keeper = createKeyKeeper({ wrapper, primary: redisKeyStore(client(settingsOf('compactor', 'file'), 'compactor-lease'), PREFIX), keys: createStoredKeys(), tenants: () => compactorStore.list(), outsideCopies: [], logger });
    await keeper.sync();
    expect(keeper.holds(t, 1) && keeper.holds(t, 2)).toBe(true);
    // as anonymizer-service.ts: a background load through its own connection
    const loaded = createStoredKeys({ wrapper, store: redisKeyStore(client(settingsOf('anonymizer', 'setting'), 'pseudonym-keys'), PREFIX), logger });
    loaded.get(t, 2);
    await eventually(() => loaded.get(t, 2) !== undefined, 5_000, 'the anonymizer loads the key', 20);
    await collector.patchFlags(t, { shreddedKeyVersions: [1] }, Date.now());
    await eventually(() => compactorStore.get(t)?.shreddedKeyVersions.length === 1, 5_000, 'the compactor sees the shred', 20);
    await keeper.sync();
    expect(await admin.hkeys(redisKeyHash(PREFIX, t))).toEqual(['v2']);
    expect(await denials(userOf('compactor'))).toEqual([]);
    expect(await denials(userOf('anonymizer'))).toEqual([]);
    // least privilege: the collector (no master key) cannot read the wrapped keys, the anonymizer cannot change them
    expect(String(await rejection(client(settingsOf('collector', 'setting'), 'probe').hget(redisKeyHash(PREFIX, t), 'v2')))).toMatch(/NOPERM/);
    expect(String(await rejection(client(settingsOf('anonymizer', 'setting'), 'probe').hdel(redisKeyHash(PREFIX, t), 'v2')))).toMatch(/NOPERM/);
    expect(await admin.hkeys(redisKeyHash(PREFIX, t))).toEqual(['v2']);
  });

  it('catches a missing permission: a user without one the store needs cannot open it, and is told which', async () => {
    // NOTE: a tenant to read, so the sync script touches a tenant record
    await (await openStore(settingsOf('collector', 'setting'))).createTenant(tenantId());
    const cases: [string, (rule: string) => boolean, RegExp][] = [
      ['no SUBSCRIBE (flag changes)', (r) => r !== '+subscribe', /lacks a permission \(the command subscribe\)/],
      ['no HMGET (inside the sync script)', (r) => r !== '+hmget', /lacks a permission \(a command inside a script\)/],
      ['no read of tenant records', (r) => r !== `%R~${PREFIX}tenant:*`, /lacks a permission \(a key inside a script\)/],
    ];
    for (const [name, keep, problem] of cases) {
      const user = `tracklane-partial-${randomBytes(3).toString('hex')}`;
      const password = secret();
      await admin.call('ACL', ...aclSetUserArgs(user, redisAclRules('enricher', scope).filter(keep), { password }));
      const err = await rejection(openStore(redisSettings.parse({ REDIS_URL: redis.url, REDIS_USERNAME: user, REDIS_PASSWORD: password, REDIS_TLS_CA_FILE: redis.caFile }), 1_500));
      expect(err, name).toBeInstanceOf(TenantStoreError);
      expect(redisStartupProblem(err), name).toMatch(problem);
      expect(err.message, name).toMatch(problem);
      expect(everythingOf(err)).not.toContain(password);
      await admin.acl('DELUSER', user);
    }
  });

  it('a wrong password or none: the store gives up naming the settings, never the password', async () => {
    const wrong = secret();
    const err = await rejection(openStore(settingsOf('enricher', 'setting', { REDIS_PASSWORD: wrong }), 1_500));
    expect(err).toBeInstanceOf(TenantStoreError);
    expect(redisStartupProblem(err)).toBe('Redis refused the credentials: check REDIS_USERNAME and REDIS_PASSWORD (or REDIS_PASSWORD_FILE, or the user and password in REDIS_URL)');
    expect(everythingOf(err)).not.toContain(wrong);
    expect(lines.join('\n')).not.toContain(wrong);

    const none = await rejection(openStore(redisSettings.parse({ REDIS_URL: redis.url, REDIS_TLS_CA_FILE: redis.caFile }), 1_500));
    expect(redisStartupProblem(none)).toMatch(/^Redis requires a password: set REDIS_PASSWORD/);
  });

  it("a CA that did not sign the server's certificate, or none (the system's): names REDIS_TLS_CA_FILE", async () => {
    const other = generateTlsFiles(dir, ['127.0.0.1'], 'other');
    for (const overrides of [{ REDIS_TLS_CA_FILE: other.caFile }, { REDIS_TLS_CA_FILE: '' }]) {
      const err = await rejection(openStore(settingsOf('sink', 'setting', overrides), 1_500));
      expect(redisStartupProblem(err)).toBe("Redis's TLS certificate is not trusted: check REDIS_TLS_CA_FILE (unset: the system's CAs)");
      expect(everythingOf(err)).not.toContain(passwords.sink);
    }
  });

  it('a certificate for another host name: refused (hostname verification), names REDIS_URL', async () => {
    const elsewhere = await startPrivateRedis({ tls: true, certificateHosts: ['redis.invalid'] });
    try {
      const err = await rejection(openStore(redisSettings.parse({ REDIS_URL: elsewhere.url, REDIS_TLS_CA_FILE: elsewhere.caFile }), 1_500));
      expect(redisStartupProblem(err)).toBe("Redis's TLS certificate names another host: check REDIS_URL (its host must match the certificate)");
    } finally {
      await elsewhere.destroy();
    }
  });

  it('a password changed under a running anonymizer: flags unavailable (fail closed) until it is back', async () => {
    const collector = await openStore(settingsOf('collector', 'setting'));
    const id = tenantId();
    await collector.createTenant(id);
    await collector.patchFlags(id, { anonymizeIdentity: true }, Date.now());
    const anonymizer = await openStore(settingsOf('anonymizer', 'file'));
    await eventually(() => anonymizer.get(id)?.anonymizeIdentity === true, 5_000, 'the anonymizer has the flags', 20);

    const user = userOf('anonymizer');
    await admin.acl('SETUSER', user, 'resetpass', `>${secret()}`);
    await admin.client('KILL', 'USER', user);
    await eventually(() => anonymizer.get(id) === undefined, 5_000, 'the anonymizer fails closed', 20);
    // it stays closed: reconnecting with the old password is refused
    await new Promise((r) => setTimeout(r, 1_500));
    expect(anonymizer.get(id)).toBeUndefined();
    expect(anonymizer.available()).toBe(false);
    expect(lines.join('\n')).toContain('WRONGPASS');

    await admin.acl('SETUSER', user, 'resetpass', `>${passwords.anonymizer}`);
    await eventually(() => anonymizer.get(id)?.anonymizeIdentity === true, 10_000, 'the anonymizer is back', 20);
  });
});
