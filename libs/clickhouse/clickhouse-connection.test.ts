import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { parseEnv } from '../config/env.js';
import {
  AnalystLoginError,
  clickhouseAnalystCredentialsFrom,
  clickhouseAnalystShape,
  clickhouseConfigFrom,
  clickhouseConnectionFrom,
  clickhouseConnectionProblems,
  clickhouseConnectionShape,
  clickhouseStartupProblem,
} from './clickhouse-connection.js';

const schema = z.object({ CLICKHOUSE_URL: z.string().optional(), CLICKHOUSE_DATABASE: z.string().optional(), ...clickhouseConnectionShape, ...clickhouseAnalystShape });
const parse = (env: Record<string, string | undefined>) => parseEnv(schema, env);
const files = (contents: Record<string, string>) => (path: string): string => {
  const text = contents[path];
  if (text === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
  return text;
};

describe('clickhouseConnectionProblems', () => {
  it.each([
    { env: {}, want: [] },
    { env: { CLICKHOUSE_USER: 'u', CLICKHOUSE_PASSWORD: 'p' }, want: [] },
    { env: { CLICKHOUSE_PASSWORD: 'p', CLICKHOUSE_PASSWORD_FILE: '/f' }, want: [/CLICKHOUSE_PASSWORD or CLICKHOUSE_PASSWORD_FILE, not both/] },
    { env: { CLICKHOUSE_ANALYST_PASSWORD: 'p' }, want: [/CLICKHOUSE_ANALYST_USER is not/] },
    { env: { CLICKHOUSE_ANALYST_USER: 'a', CLICKHOUSE_ANALYST_PASSWORD: 'p', CLICKHOUSE_ANALYST_PASSWORD_FILE: '/f' }, want: [/not both/] },
    { env: { CLICKHOUSE_URL: 'http://ch:8123', CLICKHOUSE_CA_FILE: '/ca.pem' }, want: [/CLICKHOUSE_CA_FILE is set but CLICKHOUSE_URL is not https/] },
    { env: { CLICKHOUSE_URL: 'https://ch:8443', CLICKHOUSE_CA_FILE: '/ca.pem' }, want: [] },
    { env: { CLICKHOUSE_URL: 'https://tracklane:hunter2-value@ch:8443' }, want: [/^CLICKHOUSE_URL must not carry credentials: set CLICKHOUSE_USER and CLICKHOUSE_PASSWORD$/] },
    { env: { CLICKHOUSE_URL: 'http://tracklane@ch:8123', CLICKHOUSE_PASSWORD: 'p' }, want: [/CLICKHOUSE_URL must not carry credentials/] },
    { env: { CLICKHOUSE_URL: 'http://:hunter2-value@ch:8123' }, want: [/CLICKHOUSE_URL must not carry credentials/] },
    { env: { CLICKHOUSE_URL: 'not a url' }, want: [] },
  ])('$env', ({ env, want }) => {
    const problems = clickhouseConnectionProblems(parse(env));
    expect(problems).toHaveLength(want.length);
    want.forEach((re, i) => expect(problems[i]).toMatch(re));
  });
});

describe('clickhouseConnectionFrom', () => {
  it('reads the password file without its trailing newline, and the CA file', () => {
    const read = files({ '/run/secrets/ch': 'S3cret-value\n', '/etc/ca.pem': '-----BEGIN CERTIFICATE-----\nx\n' });
    const c = clickhouseConnectionFrom(parse({ CLICKHOUSE_URL: 'https://ch:8443', CLICKHOUSE_USER: 'tracklane', CLICKHOUSE_PASSWORD_FILE: '/run/secrets/ch', CLICKHOUSE_CA_FILE: '/etc/ca.pem' }), read);
    expect(c).toEqual({ username: 'tracklane', password: 'S3cret-value', caCert: Buffer.from('-----BEGIN CERTIFICATE-----\nx\n') });
  });
  it('passes a password given directly, and nothing when none is set', () => {
    expect(clickhouseConnectionFrom(parse({ CLICKHOUSE_PASSWORD: 'direct' }))).toEqual({ password: 'direct' });
    expect(clickhouseConnectionFrom(parse({}))).toEqual({});
  });
  it.each([
    { env: { CLICKHOUSE_PASSWORD_FILE: '/missing' }, want: /^CLICKHOUSE_PASSWORD_FILE: cannot read \/missing \(ENOENT\)$/ },
    { env: { CLICKHOUSE_PASSWORD_FILE: '/empty' }, want: /^CLICKHOUSE_PASSWORD_FILE: \/empty is empty$/ },
    { env: { CLICKHOUSE_URL: 'https://ch', CLICKHOUSE_CA_FILE: '/missing' }, want: /^CLICKHOUSE_CA_FILE: cannot read/ },
    { env: { CLICKHOUSE_PASSWORD: 'hunter2-value', CLICKHOUSE_PASSWORD_FILE: '/empty' }, want: /not both/ },
    { env: { CLICKHOUSE_URL: 'https://tracklane:hunter2-value@ch:8443', CLICKHOUSE_USER: 'tracklane' }, want: /CLICKHOUSE_URL must not carry credentials/ },
  ])('a ConfigError naming the setting, never a value: $env', ({ env, want }) => {
    const read = files({ '/empty': '\n' });
    expect(() => clickhouseConnectionFrom(parse(env), read)).toThrow(want);
    try {
      clickhouseConnectionFrom(parse(env), read);
    } catch (err) {
      expect((err as Error).name).toBe('ConfigError');
      expect((err as Error).message).not.toContain('hunter2-value');
    }
  });
  it('reads the analyst password file likewise', () => {
    const read = files({ '/run/secrets/analyst': 'an4lyst\r\n' });
    expect(clickhouseAnalystCredentialsFrom(parse({ CLICKHOUSE_ANALYST_USER: 'analyst', CLICKHOUSE_ANALYST_PASSWORD_FILE: '/run/secrets/analyst' }), read)).toEqual({
      username: 'analyst',
      password: 'an4lyst',
    });
    expect(clickhouseAnalystCredentialsFrom(parse({}))).toEqual({});
  });
});

// errors shaped as @clickhouse/client and Node raise them
const chError = (code: string, type: string) => Object.assign(new Error(`Code: ${code}. DB::Exception: u: something secret-ish. (${type})`), { code, type });
const sysError = (code: string) => Object.assign(new Error(`connect failed: ${code}`), { code });

describe('clickhouseStartupProblem', () => {
  it.each([
    { err: chError('516', 'AUTHENTICATION_FAILED'), want: /refused the credentials: check CLICKHOUSE_USER and CLICKHOUSE_PASSWORD \(or CLICKHOUSE_PASSWORD_FILE\)/ },
    { err: chError('194', 'REQUIRED_PASSWORD'), want: /CLICKHOUSE_USER and CLICKHOUSE_PASSWORD/ },
    { err: new Error('<html><title>401 Unauthorized</title></html>'), want: /CLICKHOUSE_USER and CLICKHOUSE_PASSWORD/ },
    { err: new AnalystLoginError(chError('516', 'AUTHENTICATION_FAILED')), want: /refused the analyst user: check CLICKHOUSE_ANALYST_USER and CLICKHOUSE_ANALYST_PASSWORD/ },
    { err: sysError('SELF_SIGNED_CERT_IN_CHAIN'), want: /certificate is not trusted: check CLICKHOUSE_CA_FILE/ },
    { err: sysError('UNABLE_TO_VERIFY_LEAF_SIGNATURE'), want: /not trusted: check CLICKHOUSE_CA_FILE/ },
    { err: new Error('wrapped', { cause: sysError('CERT_HAS_EXPIRED') }), want: /has expired or is not valid yet/ },
    { err: sysError('ERR_TLS_CERT_ALTNAME_INVALID'), want: /names another host: check the host of CLICKHOUSE_URL/ },
    { err: sysError('EPROTO'), want: /does not speak TLS on that port: check the scheme and port of CLICKHOUSE_URL/ },
  ])('$err.message → one line naming the setting', ({ err, want }) => {
    const line = clickhouseStartupProblem(err);
    expect(line).toMatch(want);
    expect(line).not.toMatch(/secret|\n/);
  });
  it.each([sysError('ECONNREFUSED'), chError('60', 'UNKNOWN_TABLE'), new Error('boom'), null, 'text'])('%s is not a connection-setting problem', (err) => {
    expect(clickhouseStartupProblem(err)).toBeUndefined();
  });
});

describe('clickhouseConfigFrom', () => {
  const read = files({ '/run/secrets/ch': 'S3cret-value\n' });
  it('a server when CLICKHOUSE_URL is set: login, database, timeout and settings of the settings', () => {
    const env = parse({ CLICKHOUSE_URL: 'http://ch:8123', CLICKHOUSE_DATABASE: 'analytics', CLICKHOUSE_USER: 'tracklane', CLICKHOUSE_PASSWORD_FILE: '/run/secrets/ch', CLICKHOUSE_REQUEST_TIMEOUT_MS: '5000' });
    expect(clickhouseConfigFrom(env, { chdbDir: '/data/clickhouse', settings: { insert_distributed_sync: 1 } }, read)).toEqual({
      url: 'http://ch:8123',
      database: 'analytics',
      username: 'tracklane',
      password: 'S3cret-value',
      requestTimeoutMs: 5000,
      settings: { insert_distributed_sync: 1 },
    });
  });
  it('another node of the cluster keeps the login; a timeout given by the caller wins', () => {
    const env = parse({ CLICKHOUSE_URL: 'http://ch-0:8123', CLICKHOUSE_PASSWORD: 'direct', CLICKHOUSE_REQUEST_TIMEOUT_MS: '5000' });
    expect(clickhouseConfigFrom(env, { url: 'http://ch-1:8123', requestTimeoutMs: 600_000 })).toEqual({ url: 'http://ch-1:8123', password: 'direct', requestTimeoutMs: 600_000 });
  });
  it('chDB on the data dir when no URL is set, without reading any connection file', () => {
    const env = parse({ CLICKHOUSE_PASSWORD_FILE: '/missing' });
    expect(clickhouseConfigFrom(env, { chdbDir: '/data/clickhouse' }, read)).toEqual({ dataDir: '/data/clickhouse' });
  });
  it('a ConfigError naming CLICKHOUSE_URL when there is neither a URL nor a chDB dir', () => {
    expect(() => clickhouseConfigFrom(parse({}))).toThrow(/^CLICKHOUSE_URL is required/);
  });
});
