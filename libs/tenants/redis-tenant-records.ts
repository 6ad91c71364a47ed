// The fleet tenant registry's records in Redis: the data model, the Lua scripts that write and
// read it atomically, and the decoding of what they return (never quoting values in a problem).
//
// Data model (all keys under `keyPrefix`, default `tracklane:`):
//   <prefix>tenant:<id>          hash  tenantId, createdAt (ms), keys (JSON, tenantKeysSchema: the
//                                      write and API keys as sha256 hashes with ids and scopes),
//                                      flags (JSON, validated by tenantFlagsSchema on every read),
//                                      rev (see below); writeKeyHash: the tenant's first write key
//                                      (records written before `keys` existed hold only this)
//   <prefix>writekey:<sha256>    string → tenantId (uniqueness of write keys; lookup for operators)
//   <prefix>tenants              zset  member tenantId, score = the tenant's rev (the registry's
//                                      member list and the incremental-sync cursor; no SCAN)
//   <prefix>rev                  string, one counter INCRed by every mutation
//   channel <prefix>tenants      every mutation publishes `{"tenantId":…,"rev":…}` after writing
// A tenant's `rev` is the counter value of its last mutation: it increases per tenant and also
// orders mutations across tenants, so "what changed since rev N" is one ZRANGEBYSCORE.
// Every mutation is one Lua script (write + INCR + ZADD + PUBLISH atomically).
// NOTE: a clear key is returned once by the call that creates it and never stored anywhere.
// NOTE: revoking a key is a mutation like a flag change: every replica's cache drops it within
// staleAfterMs (pub/sub: milliseconds), and API-key lookups fail closed while the cache is stale.
// NOTE: scripts touch several keys and derive tenant keys inside the read script, so this
// targets a single Redis (or a primary with replicas), not Redis Cluster.
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { tenantFlagsSchema, type TenantFlags } from './flags.js';
import { legacyWriteKeyId, tenantKeysSchema, type TenantKeys } from './tenant-keys.js';
import { freezeTenant, TENANT_ID_RE, TenantStoreError, type Tenant } from './tenant-store.js';

/** One tenant as read from Redis: a Tenant when its fields are valid, else why not (no values). */
export type DecodedTenant =
  | { ok: true; rev: number; tenant: Tenant }
  | { ok: false; rev: number; problem: string };

const HASH_RE = /^[0-9a-f]{64}$/;

export interface TenantFields {
  createdAt: string;
  writeKeyHash: string;
  flags: string;
  rev: string;
  /** '' for a record written before keys had ids (its one key is `writeKeyHash`) */
  keys: string;
}

export function decodeTenant(tenantId: string, fields: TenantFields): DecodedTenant {
  const rev = Number(fields.rev);
  const fail = (problem: string): DecodedTenant => ({ ok: false, rev: Number.isSafeInteger(rev) ? rev : 0, problem });
  if (!TENANT_ID_RE.test(tenantId)) return fail('invalid tenant id');
  if (!Number.isSafeInteger(rev) || rev <= 0) return fail('rev: not a positive integer');
  const createdAt = Number(fields.createdAt);
  if (fields.createdAt === '' || !Number.isSafeInteger(createdAt)) return fail('createdAt: not an integer');
  const keys = decodeKeys(fields.keys, fields.writeKeyHash, createdAt);
  if (!keys.ok) return fail(keys.problem);
  const flags = decodeFlags(fields.flags);
  if (!flags.ok) return fail(flags.problem);
  return { ok: true, rev, tenant: freezeTenant({ tenantId, createdAt, flags: flags.flags, keys: keys.keys }) };
}

/** The `keys` field, or — for a record that predates it — its one write key with a derived id. */
export function decodeKeys(json: string, legacyHash: string, createdAt: number): { ok: true; keys: TenantKeys } | { ok: false; problem: string } {
  if (json === '') {
    if (!HASH_RE.test(legacyHash)) return { ok: false, problem: 'writeKeyHash: not a sha256 hex digest' };
    return { ok: true, keys: { writeKeys: [{ keyId: legacyWriteKeyId(legacyHash), hash: legacyHash, createdAt }], apiKeys: [] } };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    return { ok: false, problem: 'keys: not valid JSON' };
  }
  const parsed = tenantKeysSchema.safeParse(raw);
  if (!parsed.success) return { ok: false, problem: parsed.error.issues.slice(0, 3).map((i) => `keys.${i.path.join('.')}: ${i.message}`).join('; ') };
  return { ok: true, keys: parsed.data };
}

export function decodeFlags(json: string): { ok: true; flags: TenantFlags } | { ok: false; problem: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    // TRICKY: V8's message quotes the text around the error; say what is wrong, not what it holds.
    return { ok: false, problem: 'flags: not valid JSON' };
  }
  const parsed = tenantFlagsSchema.safeParse(raw);
  if (!parsed.success) {
    // NOTE: paths and zod messages only; they describe expectations, not values.
    const issues = parsed.error.issues
      .slice(0, 5)
      .map((i) => `flags.${i.path.join('.') || '(root)'}: ${i.message}`)
      .join('; ');
    return { ok: false, problem: issues };
  }
  return { ok: true, flags: parsed.data };
}

// KEYS: tenant hash, write-key index, tenants zset, rev counter.
// ARGV: tenantId, createdAt, writeKeyHash, flags JSON, channel, keys JSON.
// Returns {status, createdAt, writeKeyHash, flags, rev, keys}: 1 created, 0 exists, -1 key-hash taken.
// NOTE: an existing tenant holding *our* key hash means ioredis resent the script after a
// reconnect that lost the first reply: it is ours, so report it created (with our clear key).
const CREATE_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 1 then
  local h = redis.call('HMGET', KEYS[1], 'createdAt', 'writeKeyHash', 'flags', 'rev', 'keys')
  local status = 0
  if h[2] == ARGV[3] then status = 1 end
  return {status, h[1] or '', h[2] or '', h[3] or '', h[4] or '', h[5] or ''}
end
if redis.call('EXISTS', KEYS[2]) == 1 then return {-1, '', '', '', '', ''} end
local rev = redis.call('INCR', KEYS[4])
redis.call('HSET', KEYS[1], 'tenantId', ARGV[1], 'createdAt', ARGV[2], 'writeKeyHash', ARGV[3], 'flags', ARGV[4], 'rev', rev, 'keys', ARGV[6])
redis.call('SET', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], rev, ARGV[1])
redis.call('PUBLISH', ARGV[5], '{"tenantId":"' .. ARGV[1] .. '","rev":' .. rev .. '}')
return {1, ARGV[2], ARGV[3], ARGV[4], tostring(rev), ARGV[6]}
`;

// KEYS: tenant hash, tenants zset, rev counter.
// ARGV: expected rev, flags JSON, tenantId, channel, not-after (ms, Redis TIME) or ''.
// Returns {1, rev} written, {0} unknown tenant, {-1} rev moved (retry), {-2, redisNowMs} too late.
const PATCH_SCRIPT = `
local cur = redis.call('HGET', KEYS[1], 'rev')
if not cur then return {0} end
if cur ~= ARGV[1] then return {-1} end
if ARGV[5] ~= '' then
  local t = redis.call('TIME')
  local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  if ms > tonumber(ARGV[5]) then return {-2, ms} end
end
local rev = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[1], 'flags', ARGV[2], 'rev', rev)
redis.call('ZADD', KEYS[2], rev, ARGV[3])
redis.call('PUBLISH', ARGV[4], '{"tenantId":"' .. ARGV[3] .. '","rev":' .. rev .. '}')
return {1, rev}
`;

// KEYS: rev counter, tenants zset. ARGV: cursor (-1 = full load), tenant key prefix.
// Returns {counter, full, id, createdAt, writeKeyHash, flags, rev, keys, id, …}: every tenant changed
// after the cursor, or all of them when full (asked for, or the counter went back: Redis reset).
// NOTE: atomic, so the counter and the tenants are one consistent snapshot.
const SYNC_SCRIPT = `
local g = tonumber(redis.call('GET', KEYS[1]) or '0')
local from = tonumber(ARGV[1])
local full = 0
if from < 0 or from > g then full = 1 end
if full == 0 and from == g then return {g, 0} end
local ids
if full == 1 then ids = redis.call('ZRANGE', KEYS[2], 0, -1) else ids = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. ARGV[1], '+inf') end
local out = {g, full}
for _, id in ipairs(ids) do
  local h = redis.call('HMGET', ARGV[2] .. id, 'createdAt', 'writeKeyHash', 'flags', 'rev', 'keys')
  out[#out + 1] = id
  for i = 1, 5 do out[#out + 1] = h[i] or '' end
end
return out
`;

// KEYS: tenant hash, tenants zset, rev counter, write-key index to add ('' key name: none), to delete.
// ARGV: expected rev, keys JSON, tenantId, channel, add index? ('1'|''), delete index? ('1'|'').
// Returns {1, rev} written, {0} unknown tenant, {-1} rev moved (retry), {-3} write key taken.
const KEYS_SCRIPT = `
local cur = redis.call('HGET', KEYS[1], 'rev')
if not cur then return {0} end
if cur ~= ARGV[1] then return {-1} end
if ARGV[5] == '1' and redis.call('EXISTS', KEYS[4]) == 1 then return {-3} end
local rev = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[1], 'keys', ARGV[2], 'rev', rev)
if ARGV[5] == '1' then redis.call('SET', KEYS[4], ARGV[3]) end
if ARGV[6] == '1' then redis.call('DEL', KEYS[5]) end
redis.call('ZADD', KEYS[2], rev, ARGV[3])
redis.call('PUBLISH', ARGV[4], '{"tenantId":"' .. ARGV[3] .. '","rev":' .. rev .. '}')
return {1, rev}
`;

export interface Script {
  text: string;
  sha: string;
  /**
   * Run with EVALSHA_RO / EVAL_RO (Redis ≥ 7): Redis refuses a write inside it, and an ACL user
   * with read-only keys (`%R~`, libs/config/redis-acl.ts) may run it — plain EVAL asks for
   * read-write access to every key it names.
   */
  readOnly: boolean;
}
const script = (text: string, readOnly = false): Script => ({ text, sha: createHash('sha1').update(text).digest('hex'), readOnly });
export const CREATE = script(CREATE_SCRIPT);
export const PATCH = script(PATCH_SCRIPT);
export const SYNC = script(SYNC_SCRIPT, true);
export const KEYS_UPDATE = script(KEYS_SCRIPT);

/** Runs `s` by its sha, sending its text only when Redis does not hold it (NOSCRIPT). */
export async function runScript(redis: Redis, s: Script, keys: string[], args: string[]): Promise<unknown> {
  try {
    return s.readOnly ? await redis.evalsha_ro(s.sha, keys.length, ...keys, ...args) : await redis.evalsha(s.sha, keys.length, ...keys, ...args);
  } catch (err) {
    if (!(err instanceof Error && err.message.startsWith('NOSCRIPT'))) throw err;
    return s.readOnly ? redis.eval_ro(s.text, keys.length, ...keys, ...args) : redis.eval(s.text, keys.length, ...keys, ...args);
  }
}

/** The key and channel names of the data model above, under `prefix`. */
export interface RegistryKeys {
  tenant(id: string): string;
  writeKey(hash: string): string;
  tenants: string;
  rev: string;
  channel: string;
  /** what SYNC prepends to a tenant id to name its hash */
  tenantPrefix: string;
}

export function registryKeys(prefix: string): RegistryKeys {
  return {
    tenant: (id) => `${prefix}tenant:${id}`,
    writeKey: (hash) => `${prefix}writekey:${hash}`,
    tenants: `${prefix}tenants`,
    rev: `${prefix}rev`,
    channel: `${prefix}tenants`,
    tenantPrefix: `${prefix}tenant:`,
  };
}

export function parseSyncReply(reply: unknown): { counter: number; full: boolean; records: { tenantId: string; decoded: DecodedTenant }[] } | undefined {
  if (!Array.isArray(reply) || reply.length < 2 || (reply.length - 2) % 6 !== 0) return undefined;
  const counter = Number(reply[0]);
  if (!Number.isSafeInteger(counter)) return undefined;
  const records: { tenantId: string; decoded: DecodedTenant }[] = [];
  for (let i = 2; i < reply.length; i += 6) {
    const [tenantId, createdAt, hash, flags, rev, keys] = reply.slice(i, i + 6).map((v: unknown) => (v === null || v === undefined ? '' : String(v)));
    const id = tenantId ?? '';
    records.push({ tenantId: id, decoded: decodeTenant(id, { createdAt: createdAt ?? '', writeKeyHash: hash ?? '', flags: flags ?? '', rev: rev ?? '', keys: keys ?? '' }) });
  }
  return { counter, full: Number(reply[1]) === 1, records };
}

/** A script reply as strings; throws unless it has at least `min` elements. */
export function stringTuple(reply: unknown, min: number): string[] {
  if (!Array.isArray(reply) || reply.length < min) throw new TenantStoreError('unexpected reply from redis script');
  return reply.map((v: unknown) => (v === null || v === undefined ? '' : String(v)));
}
