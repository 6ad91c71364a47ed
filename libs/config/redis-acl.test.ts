// The ACL rules as data; what they allow on a real server: test/services/redis-auth.integration.test.ts.
import { describe, expect, it } from 'vitest';
import { TAKE_SCRIPT } from '../collection/rate-limits.js';
import { CREATE, KEYS_UPDATE, PATCH, SYNC } from '../tenants/redis-tenant-records.js';
import { ConfigError } from './env.js';
import { aclFileLine, aclPasswordHash, aclSetUserArgs, REDIS_SERVICES, redisAclMarkdown, redisAclRules } from './redis-acl.js';

const scope = { redisPrefix: 'tracklane:', topicPrefix: '' };
const commandsOf = (rules: string[]): string[] => rules.filter((r) => r.startsWith('+')).map((r) => r.slice(1));
const keysOf = (rules: string[], kind: '%R~' | '~'): string[] => rules.filter((r) => r.startsWith(kind)).map((r) => r.slice(kind.length));
// every Redis command that writes a key or publishes, of those any service is granted
const WRITES = ['hset', 'hsetnx', 'hdel', 'set', 'del', 'incr', 'zadd', 'publish', 'pexpire', 'eval', 'evalsha'];

describe('Redis ACL rules', () => {
  it('start from nothing: no key, channel or command a rule does not grant', () => {
    for (const s of REDIS_SERVICES) expect(redisAclRules(s, scope).slice(0, 3)).toEqual(['resetkeys', 'resetchannels', '-@all']);
  });

  it.each([
    { service: 'enricher', reads: [] },
    { service: 'anonymizer', reads: ['tracklane:pseudonym-keys:*'] },
    { service: 'sink', reads: [] },
  ] as const)('$service reads tenant keys only (the anonymizer the wrapped pseudonym keys too), with no write command', ({ service, reads }) => {
    const rules = redisAclRules(service, scope);
    expect(keysOf(rules, '~')).toEqual([]);
    expect(keysOf(rules, '%R~')).toEqual(['tracklane:tenant:*', 'tracklane:tenants', 'tracklane:rev', ...reads]);
    expect(commandsOf(rules).filter((c) => WRITES.includes(c))).toEqual([]);
    expect(rules).toContain('&tracklane:tenants');
  });

  it('only the compactor and the anonymizer reach the wrapped pseudonym keys', () => {
    const reaching = REDIS_SERVICES.filter((s) => redisAclRules(s, scope).some((r) => r.endsWith('~tracklane:pseudonym-keys:*')));
    expect(reaching).toEqual(['anonymizer', 'compactor']);
  });

  it('the collector writes the tenant registry, its collection controls\' keys and its rate-limit buckets, and only reads the compactor presence key', () => {
    const rules = redisAclRules('collector', scope);
    expect(keysOf(rules, '~')).toEqual(['tracklane:tenant:*', 'tracklane:tenants', 'tracklane:rev', 'tracklane:writekey:*', 'tracklane:daily-salt:*', 'tracklane:tracking-off', 'tracklane:plans', 'tracklane:plans:versions', 'tracklane:plans:rev', 'tracklane:ratelimit:*']);
    expect(keysOf(rules, '%R~')).toEqual(['tracklane:compactor-seen:']);
    expect(commandsOf(rules)).toEqual(expect.arrayContaining(['evalsha', 'eval', 'evalsha_ro', 'hset', 'publish', 'time', 'exists', 'subscribe']));
  });

  it('the compactor reads tenants and writes only its lease and presence keys of its fleet, and the wrapped pseudonym keys', () => {
    const rules = redisAclRules('compactor', { redisPrefix: 'tracklane:', topicPrefix: 'staging.' });
    expect(keysOf(rules, '~')).toEqual(['tracklane:compactor-seen:staging.', 'tracklane:compactor-lease:staging.', 'tracklane:pseudonym-keys:*']);
    expect(keysOf(rules, '%R~')).toEqual(['tracklane:tenant:*', 'tracklane:tenants', 'tracklane:rev']);
    expect(commandsOf(rules)).not.toContain('hset');
    expect(commandsOf(rules)).not.toContain('publish');
  });

  it('grants every command the tenant scripts call: all of them to the collector, the sync script\'s to every reader', () => {
    const calledIn = (text: string): string[] => [...text.matchAll(/redis\.call\('([A-Za-z]+)'/g)].map((m) => (m[1] ?? '').toLowerCase());
    const called = (script: { text: string }): string[] => calledIn(script.text);
    const collector = commandsOf(redisAclRules('collector', scope));
    for (const script of [CREATE, PATCH, KEYS_UPDATE, SYNC]) expect(collector).toEqual(expect.arrayContaining(called(script)));
    expect(collector).toEqual(expect.arrayContaining([...calledIn(TAKE_SCRIPT), 'evalsha', 'eval']));
    expect(calledIn(TAKE_SCRIPT)).toEqual(['time', 'hmget', 'hset', 'pexpire']);
    expect(called(SYNC).length).toBeGreaterThan(2);
    for (const s of REDIS_SERVICES) expect(commandsOf(redisAclRules(s, scope))).toEqual(expect.arrayContaining([...called(SYNC), 'evalsha_ro', 'eval_ro', 'subscribe']));
    expect(SYNC.readOnly).toBe(true);
  });

  it('lists a command once', () => {
    for (const s of REDIS_SERVICES) {
      const commands = commandsOf(redisAclRules(s, scope));
      expect(new Set(commands).size).toBe(commands.length);
    }
  });

  it('escapes glob characters of the prefixes', () => {
    const rules = redisAclRules('compactor', { redisPrefix: 'tl[1]*:', topicPrefix: 'a?' });
    expect(rules).toContain('%R~tl\\[1\\]\\*:tenant:*');
    expect(rules).toContain('~tl\\[1\\]\\*:compactor-lease:a\\?');
    expect(rules).toContain('&tl\\[1\\]\\*:tenants');
  });

  it('refuses a prefix an ACL rule cannot hold, naming the setting', () => {
    expect(() => redisAclRules('sink', { redisPrefix: 'a b:', topicPrefix: '' })).toThrow(ConfigError);
    expect(() => redisAclRules('sink', { redisPrefix: 'a:', topicPrefix: 'x\ny' })).toThrow(/TOPIC_PREFIX/);
  });

  it('renders ACL SETUSER arguments and ACL file lines', () => {
    const rules = redisAclRules('sink', scope);
    expect(aclSetUserArgs('tracklane-sink', rules, { password: 'pw' })).toEqual(['SETUSER', 'tracklane-sink', 'reset', 'on', '>pw', ...rules]);
    const hash = aclPasswordHash('pw');
    expect(hash).toBe('30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4');
    expect(aclSetUserArgs('tracklane-sink', rules, { passwordSha256: hash })[4]).toBe(`#${hash}`);
    expect(aclFileLine('tracklane-sink', rules, hash)).toBe(`user tracklane-sink reset on #${hash} ${rules.join(' ')}`);
    expect(() => aclFileLine('a b', rules, hash)).toThrow(RangeError);
    expect(() => aclFileLine('u', rules, 'not-a-hash')).toThrow(RangeError);
  });

  it('renders a markdown table with one row per service and no unescaped pipe in a cell', () => {
    const table = redisAclMarkdown().split('\n\n')[0]?.split('\n') ?? [];
    expect(table.slice(2).map((row) => row.split(' | ')[0])).toEqual(REDIS_SERVICES.map((s) => `| ${s}`));
    for (const row of table) expect(row.replace(/\\\|/g, '').split('|')).toHaveLength(5);
  });
});
