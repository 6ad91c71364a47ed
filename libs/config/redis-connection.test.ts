import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError } from './env.js';
import { redisConnectionOfUrl, redisConnectionProblems, redisConnectionShape, redisOptionsFrom, redisStartupProblem, redisTarget } from './redis-connection.js';

const parse = (env: Record<string, string>) => z.object(redisConnectionShape).parse(env);
const SECRET = 'hunter2-do-not-log';
const ENCODED = encodeURIComponent(`${SECRET}/:@`);
const files: Record<string, string> = {
  '/ca.pem': '-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n',
  '/password': `${SECRET}\n`,
  '/password-crlf': `${SECRET}\r\n`,
  '/empty': '  \n',
};
const read = (p: string): string => {
  const text = files[p];
  if (text === undefined) throw Object.assign(new Error(`ENOENT: no such file, open '${p}'`), { code: 'ENOENT' });
  return text;
};

describe('Redis connection settings', () => {
  it('defaults to a plain connection to the local Redis', () => {
    expect(redisOptionsFrom(parse({}), read)).toEqual({ host: '127.0.0.1', port: 6379 });
  });

  it.each([
    ['a host and port', { REDIS_URL: 'redis://redis.svc:6380' }, { host: 'redis.svc', port: 6380 }],
    ['a database', { REDIS_URL: 'redis://redis.svc/3' }, { host: 'redis.svc', port: 6379, db: 3 }],
    ['an IPv6 literal', { REDIS_URL: 'redis://[::1]:7000' }, { host: '::1', port: 7000 }],
    ['TLS with the system CAs', { REDIS_URL: 'rediss://redis.svc:6380' }, { host: 'redis.svc', port: 6380, tls: { rejectUnauthorized: true } }],
    [
      'TLS with a CA file',
      { REDIS_URL: 'rediss://redis.svc:6380', REDIS_TLS_CA_FILE: '/ca.pem' },
      { host: 'redis.svc', port: 6380, tls: { rejectUnauthorized: true, ca: [files['/ca.pem']] } },
    ],
    ['user and password in the URL (percent-decoded)', { REDIS_URL: `rediss://tracklane-sink:${ENCODED}@redis.svc` }, { host: 'redis.svc', port: 6379, username: 'tracklane-sink', password: `${SECRET}/:@`, tls: { rejectUnauthorized: true } }],
    ['a password alone in the URL (the default user)', { REDIS_URL: `redis://:${SECRET}@redis.svc` }, { host: 'redis.svc', port: 6379, password: SECRET }],
    ['user and password settings', { REDIS_USERNAME: 'tracklane-enricher', REDIS_PASSWORD: SECRET }, { host: '127.0.0.1', port: 6379, username: 'tracklane-enricher', password: SECRET }],
    ['the password from a file (trailing newline dropped)', { REDIS_USERNAME: 'u', REDIS_PASSWORD_FILE: '/password' }, { host: '127.0.0.1', port: 6379, username: 'u', password: SECRET }],
    ['the password from a file with CRLF', { REDIS_PASSWORD_FILE: '/password-crlf' }, { host: '127.0.0.1', port: 6379, password: SECRET }],
    ['the user in the URL, the password from a file', { REDIS_URL: 'redis://u@redis.svc', REDIS_PASSWORD_FILE: '/password' }, { host: 'redis.svc', port: 6379, username: 'u', password: SECRET }],
  ])('%s', (_name, env, expected) => {
    expect(redisOptionsFrom(parse(env), read)).toEqual(expected);
  });

  it.each([
    [{ REDIS_URL: `redis://:${SECRET}@h`, REDIS_PASSWORD: 'other' }, /REDIS_URL carries a password and REDIS_PASSWORD or REDIS_PASSWORD_FILE is set/],
    [{ REDIS_URL: `redis://u:${SECRET}@h`, REDIS_PASSWORD_FILE: '/password' }, /REDIS_URL carries a password/],
    [{ REDIS_PASSWORD: SECRET, REDIS_PASSWORD_FILE: '/password' }, /REDIS_PASSWORD or REDIS_PASSWORD_FILE, not both/],
    [{ REDIS_URL: `redis://u:${SECRET}@h`, REDIS_USERNAME: 'v' }, /REDIS_URL names a user and REDIS_USERNAME is set/],
    [{ REDIS_USERNAME: 'u' }, /a Redis user is set .* but no password/],
    [{ REDIS_TLS_CA_FILE: '/ca.pem', REDIS_PASSWORD: SECRET }, /REDIS_TLS_CA_FILE is set but REDIS_URL is not rediss:\/\//],
    [{ REDIS_URL: `redis://u:${SECRET}@h/x` }, /the path must be a database number/],
    [{ REDIS_URL: `redis://u:${SECRET}@h?tls=true` }, /query parameters are not supported/],
    [{ REDIS_URL: `redis://u:${SECRET}@h:99999` }, /not a valid URL/],
    [{ REDIS_URL: `redis://u:%E0%A4%A@h` }, /not valid percent-encoding/],
    [{ REDIS_URL: 'rediss://h', REDIS_TLS_CA_FILE: '/missing.pem', REDIS_PASSWORD: SECRET }, /REDIS_TLS_CA_FILE: cannot read \/missing\.pem \(ENOENT\)/],
    [{ REDIS_PASSWORD_FILE: '/nope' }, /REDIS_PASSWORD_FILE: cannot read \/nope \(ENOENT\)/],
    [{ REDIS_PASSWORD_FILE: '/empty' }, /REDIS_PASSWORD_FILE: \/empty is empty/],
  ])('refuses %j, naming the setting and never a secret', (env, message) => {
    let err: unknown;
    try {
      redisOptionsFrom(parse(env), read);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).not.toContain(SECRET);
  });

  it('refuses a URL of another scheme at parse time without quoting it', () => {
    const r = z.object(redisConnectionShape).safeParse({ REDIS_URL: `http://u:${SECRET}@h` });
    expect(r.success).toBe(false);
    expect(JSON.stringify(r.error?.issues)).not.toContain(SECRET);
  });

  it('reports every problem of a combination at once', () => {
    expect(redisConnectionProblems(parse({ REDIS_URL: `redis://u:${SECRET}@h`, REDIS_USERNAME: 'v', REDIS_PASSWORD: 'p', REDIS_PASSWORD_FILE: '/password', REDIS_TLS_CA_FILE: '/ca.pem' }))).toHaveLength(4);
  });

  it('names the target without credentials', () => {
    expect(redisTarget({ REDIS_URL: `rediss://u:${SECRET}@redis.svc:6380/2` })).toBe('rediss://redis.svc:6380');
    expect(redisTarget({ REDIS_URL: 'redis://[::1]' })).toBe('redis://[::1]:6379');
  });

  it('takes a URL alone', () => {
    expect(redisOptionsFrom(redisConnectionOfUrl('rediss://a:b@h:1'), read)).toEqual({ host: 'h', port: 1, username: 'a', password: 'b', tls: { rejectUnauthorized: true } });
    expect(() => redisConnectionOfUrl('tcp://h')).toThrow(ConfigError);
  });
});

describe('redisStartupProblem', () => {
  const reply = (message: string): Error => Object.assign(new Error(message), { name: 'ReplyError', command: { name: 'auth', args: ['u', SECRET] } });
  const tls = (code: string): Error => Object.assign(new Error(`tls failure ${code}`), { code });

  it.each([
    [reply('WRONGPASS invalid username-password pair or user is disabled.'), /^Redis refused the credentials: check REDIS_USERNAME and REDIS_PASSWORD/],
    [reply('NOAUTH Authentication required.'), /^Redis requires a password: set REDIS_PASSWORD/],
    [new Error('Ready check failed: NOAUTH Authentication required.'), /^Redis requires a password/],
    [reply("NOPERM this user has no permissions to run the 'evalsha' command"), /lacks a permission \(the command evalsha\): check the ACL of REDIS_USERNAME/],
    [reply("NOPERM User tracklane-sink has no permissions to run the 'client|setname' command"), /\(the command client\|setname\)/],
    [reply('NOPERM this user has no permissions to access one of the keys used as arguments'), /lacks a permission \(a key\)/],
    [reply('NOPERM this user has no permissions to access one of the channels used as arguments'), /lacks a permission \(a channel\)/],
    [reply("ERR The user executing the script can't run this command or subcommand script: 50ba, on @user_script:1."), /lacks a permission \(a command inside a script\)/],
    [reply("ERR The user executing the script can't access at least one of the keys mentioned in the command arguments script: d5, on @user_script:1."), /\(a key inside a script\)/],
    [reply("ERR The user executing the script can't publish to the channel mentioned in the command script: a2, on @user_script:1."), /\(a channel inside a script\)/],
    [tls('SELF_SIGNED_CERT_IN_CHAIN'), /^Redis's TLS certificate is not trusted: check REDIS_TLS_CA_FILE/],
    [tls('UNABLE_TO_VERIFY_LEAF_SIGNATURE'), /check REDIS_TLS_CA_FILE/],
    [tls('DEPTH_ZERO_SELF_SIGNED_CERT'), /check REDIS_TLS_CA_FILE/],
    [tls('ERR_TLS_CERT_ALTNAME_INVALID'), /names another host: check REDIS_URL/],
    [tls('CERT_HAS_EXPIRED'), /expired or is not valid yet/],
    [tls('ERR_SSL_WRONG_VERSION_NUMBER'), /does not answer TLS on that port: check REDIS_URL/],
    [new Error('tenant registry unreachable', { cause: reply('WRONGPASS invalid username-password pair or user is disabled.') }), /^Redis refused the credentials/],
  ])('classifies %s', (err, expected) => {
    const problem = redisStartupProblem(err);
    expect(problem).toMatch(expected);
    expect(problem).not.toContain(SECRET);
  });

  it.each([
    [Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), { code: 'ECONNREFUSED' })],
    [new Error('Connection is closed.')],
    [reply('ERR unknown command')],
    [reply('WRONGTYPE Operation against a key holding the wrong kind of value')],
    // NOTE: a code word later in the text is not the reply's code
    [new Error('timed out waiting for NOPERM')],
    ['WRONGPASS'],
    [undefined],
  ])('leaves %s to the caller', (err) => {
    expect(redisStartupProblem(err)).toBeUndefined();
  });
});
