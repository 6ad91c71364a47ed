// The least-privilege Redis ACL of each fleet service, as code: the keys,
// channels and commands it really uses, rendered as `ACL SETUSER` arguments, ACL-file lines and
// the README's table. Tested against a real redis-server with every service's code path
// (test/services/redis-auth.integration.test.ts), so a missing permission fails a test.
// NOTE: Redis ≥ 7.0 (`%R~` read-only key patterns, EVALSHA_RO).
import { createHash } from 'node:crypto';
import { ConfigError } from './env.js';

export const REDIS_SERVICES = ['collector', 'enricher', 'anonymizer', 'sink', 'compactor'] as const;
export type RedisService = (typeof REDIS_SERVICES)[number];

export interface RedisAclScope {
  /** TRACKLANE_REDIS_PREFIX (default `tracklane:`) */
  redisPrefix: string;
  /** TOPIC_PREFIX (default ''): the compactor's lease and presence keys are per fleet */
  topicPrefix: string;
}

/** One thing a service does with Redis and what it needs for it. */
interface Grant {
  why: string;
  commands: readonly string[];
  readKeys?: (s: RedisAclScope) => string[];
  writeKeys?: (s: RedisAclScope) => string[];
  channels?: (s: RedisAclScope) => string[];
}

/** Redis glob patterns of literal text: `*?[]\` escaped. */
const literal = (text: string): string => text.replace(/[*?[\]\\]/g, '\\$&');
const tenantKeys = (s: RedisAclScope): string[] => [`${literal(s.redisPrefix)}tenant:*`, `${literal(s.redisPrefix)}tenants`, `${literal(s.redisPrefix)}rev`];
const tenantChannel = (s: RedisAclScope): string[] => [`${literal(s.redisPrefix)}tenants`];
const presenceKey = (s: RedisAclScope): string[] => [`${literal(s.redisPrefix)}compactor-seen:${literal(s.topicPrefix)}`];

// NOTE: AUTH, HELLO and QUIT need no permission (Redis lets every user run them).
const CONNECTION: Grant = {
  why: 'ioredis on connect: INFO (ready check), CLIENT SETNAME (the connection name), SELECT (a database in REDIS_URL); PING for probes',
  commands: ['info', 'client|setname', 'select', 'ping'],
};
const TENANT_READ: Grant = {
  why: "tenant flags and keys (libs/tenants/redis-tenant-store.ts): the read-only sync script (EVALSHA_RO, EVAL_RO on a cold script cache) and its reads, SUBSCRIBE to the change channel",
  commands: ['evalsha_ro', 'eval_ro', 'get', 'hmget', 'zrange', 'zrangebyscore', 'subscribe'],
  readKeys: tenantKeys,
  channels: tenantChannel,
};
const TENANT_WRITE: Grant = {
  why: "the admin API's tenant, flag and key changes: the write scripts (redis-tenant-records.ts) and what they call, HMGET before a change",
  commands: ['evalsha', 'eval', 'hget', 'hmget', 'exists', 'incr', 'hset', 'set', 'del', 'zadd', 'publish', 'time'],
  writeKeys: (s) => [...tenantKeys(s), `${literal(s.redisPrefix)}writekey:*`],
  channels: tenantChannel,
};
const PRESENCE_READ: Grant = {
  why: 'whether a compactor runs (services/compactor/compactor-presence.ts): EXISTS',
  commands: ['exists'],
  readKeys: presenceKey,
};
const PRESENCE_WRITE: Grant = {
  why: 'announcing the compactor (compactor-presence.ts): SET … PX',
  commands: ['set'],
  writeKeys: presenceKey,
};
const COLLECTION: Grant = {
  why: "collection controls (libs/collection): the day's cookieless salt (SET … NX GET EXAT), per-user tracking preferences (HSCAN, HGET; a change as MULTI/EXEC of HSET or HDEL and PUBLISH) and SUBSCRIBE to their changes",
  commands: ['set', 'hscan', 'hget', 'hset', 'hdel', 'multi', 'exec', 'publish', 'subscribe'],
  writeKeys: (s) => [`${literal(s.redisPrefix)}daily-salt:*`, `${literal(s.redisPrefix)}tracking-off`],
  channels: (s) => [`${literal(s.redisPrefix)}tracking-off`],
};
const TRACKING_PLANS: Grant = {
  why: "tenants' tracking plans (libs/plans/redis-plan-store.ts): MULTI/EXEC of GET and HGETALL to load, EVAL of the put/remove scripts (HINCRBY, HSET, HDEL, INCR, PUBLISH), SUBSCRIBE to their changes",
  commands: ['multi', 'exec', 'get', 'hgetall', 'eval', 'evalsha', 'hincrby', 'hset', 'hdel', 'incr', 'publish', 'subscribe'],
  writeKeys: (s) => [`${literal(s.redisPrefix)}plans`, `${literal(s.redisPrefix)}plans:versions`, `${literal(s.redisPrefix)}plans:rev`],
  channels: (s) => [`${literal(s.redisPrefix)}plans:changed`],
};
const keyStoreKeys = (s: RedisAclScope): string[] => [`${literal(s.redisPrefix)}pseudonym-keys:*`];
const KEY_STORE_READ: Grant = {
  why: 'wrapped pseudonym keys (libs/privacy/key-stores.ts redisKeyStore): HGET of a version, opened with the master key',
  commands: ['hget'],
  readKeys: keyStoreKeys,
};
const KEY_STORE_WRITE: Grant = {
  why: 'the key keeper (libs/privacy/key-keeper.ts): HSETNX of a new version, HGET, HDEL of a shredded one',
  commands: ['hget', 'hsetnx', 'hdel'],
  writeKeys: keyStoreKeys,
};
const RATE_LIMITS: Grant = {
  why: "per-tenant rate limits shared by the collectors (libs/collection/rate-limits.ts): EVALSHA/EVAL of the take script, which calls TIME, HMGET, HSET and PEXPIRE on a tenant's bucket",
  commands: ['evalsha', 'eval', 'time', 'hmget', 'hset', 'pexpire'],
  writeKeys: (s) => [`${literal(s.redisPrefix)}ratelimit:*`],
};
const LEASE: Grant = {
  why: 'the one-compactor lease (services/compactor/compactor-lock.ts): SET NX PX, EVAL of the renew/release scripts (GET, PEXPIRE, DEL)',
  commands: ['set', 'eval', 'get', 'pexpire', 'del'],
  writeKeys: (s) => [`${literal(s.redisPrefix)}compactor-lease:${literal(s.topicPrefix)}`],
};

/**
 * What each service does. NOTE: every fleet service opens the tenant store (fleet-context.ts);
 * only the collector changes tenants (its admin API), so the others get read-only keys and no
 * write command — a stolen enricher password cannot switch a tenant's anonymization off. The
 * wrapped pseudonym keys are read by the services holding the master key only (anonymizer,
 * compactor), written by the compactor's key keeper: the collector cannot even read them.
 */
const GRANTS: Record<RedisService, readonly Grant[]> = {
  collector: [CONNECTION, TENANT_READ, TENANT_WRITE, PRESENCE_READ, COLLECTION, TRACKING_PLANS, RATE_LIMITS],
  enricher: [CONNECTION, TENANT_READ],
  anonymizer: [CONNECTION, TENANT_READ, KEY_STORE_READ],
  sink: [CONNECTION, TENANT_READ],
  compactor: [CONNECTION, TENANT_READ, PRESENCE_WRITE, LEASE, KEY_STORE_WRITE],
};

function checkScope(s: RedisAclScope): void {
  // NOTE: an ACL rule is one word (ACL files split on spaces)
  if (/[\s\0-\x1f]/.test(s.redisPrefix)) throw new ConfigError('TRACKLANE_REDIS_PREFIX must not contain spaces or control characters (it becomes an ACL key pattern)');
  if (/[\s\0-\x1f]/.test(s.topicPrefix)) throw new ConfigError('TOPIC_PREFIX must not contain spaces or control characters (it becomes an ACL key pattern)');
}

/**
 * The ACL rules of a service, without user name or password: everything reset, then its
 * commands, read-only key patterns (`%R~`), read-write ones (`~`) and channels (`&`).
 */
export function redisAclRules(service: RedisService, scope: RedisAclScope): string[] {
  checkScope(scope);
  const grants = GRANTS[service];
  const commands = new Set(grants.flatMap((g) => g.commands));
  const writeKeys = new Set(grants.flatMap((g) => g.writeKeys?.(scope) ?? []));
  // NOTE: a key a service also writes gets one read-write pattern, not a second read-only one
  const readKeys = new Set(grants.flatMap((g) => g.readKeys?.(scope) ?? []).filter((k) => !writeKeys.has(k)));
  const channels = new Set(grants.flatMap((g) => g.channels?.(scope) ?? []));
  return [
    'resetkeys',
    'resetchannels',
    '-@all',
    ...[...commands].map((c) => `+${c}`),
    ...[...readKeys].map((k) => `%R~${k}`),
    ...[...writeKeys].map((k) => `~${k}`),
    ...[...channels].map((c) => `&${c}`),
  ];
}

/** Why a service holds its permissions, one line per thing it does (for docs). */
export function redisAclReasons(service: RedisService): string[] {
  return GRANTS[service].map((g) => g.why);
}

export type AclSecret = { password: string } | { passwordSha256: string };

const secretRule = (secret: AclSecret): string => ('password' in secret ? `>${secret.password}` : `#${secret.passwordSha256}`);

/** sha256 hex of a password: an ACL file or SETUSER can hold `#<hash>` instead of the password. */
export function aclPasswordHash(password: string): string {
  return createHash('sha256').update(password).digest('hex');
}

/**
 * The arguments after `ACL` of `ACL SETUSER <user> reset on <secret> <rules>` (reset first: a
 * user that existed loses whatever it held). Contains the password when given one: never log it.
 */
export function aclSetUserArgs(user: string, rules: readonly string[], secret: AclSecret): string[] {
  checkUserName(user);
  return ['SETUSER', user, 'reset', 'on', secretRule(secret), ...rules];
}

/** One line of an ACL file (`aclfile`), the password as its sha256 hash. */
export function aclFileLine(user: string, rules: readonly string[], passwordSha256: string): string {
  checkUserName(user);
  if (!/^[0-9a-f]{64}$/.test(passwordSha256)) throw new RangeError('passwordSha256 must be 64 lowercase hex digits');
  return ['user', user, 'reset', 'on', `#${passwordSha256}`, ...rules].join(' ');
}

function checkUserName(user: string): void {
  if (!/^[A-Za-z0-9._-]+$/.test(user)) throw new RangeError('a Redis user name here is letters, digits, ".", "_" and "-"');
}

/** The README's table: per service, its rules (default prefixes) and why. */
export function redisAclMarkdown(scope: RedisAclScope = { redisPrefix: 'tracklane:', topicPrefix: '' }): string {
  // NOTE: `|` (client|setname) would end a table cell, even inside backticks
  const cell = (text: string): string => text.replace(/\|/g, '\\|');
  const rows = REDIS_SERVICES.map((s) => {
    const why = GRANTS[s].filter((g) => g !== CONNECTION).map((g) => g.why);
    return `| ${s} | \`${cell(redisAclRules(s, scope).join(' '))}\` | ${cell(why.join('; '))} |`;
  });
  return ['| service | ACL rules | for |', '|---|---|---|', ...rows, '', `Every service: ${CONNECTION.why}.`].join('\n');
}
