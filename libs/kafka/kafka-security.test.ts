import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError } from '../config/env.js';
import { kafkaSecurityFrom, kafkaSecurityProblems, kafkaSecurityShape } from './kafka-security.js';

const parse = (env: Record<string, string>) => z.object(kafkaSecurityShape).parse(env);
const SECRET = 'hunter2-do-not-log';
const files: Record<string, string> = {
  '/ca.pem': '-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n',
  '/cert.pem': 'CERT',
  '/key.pem': 'KEY',
  '/password': `${SECRET}\n`,
  '/empty': '  \n',
};
const read = (p: string): string => {
  const text = files[p];
  if (text === undefined) throw Object.assign(new Error(`ENOENT: no such file, open '${p}'`), { code: 'ENOENT' });
  return text;
};

describe('Kafka security settings', () => {
  it('defaults to a plain connection', () => {
    expect(kafkaSecurityFrom(parse({}), read)).toEqual({});
  });

  it.each([
    ['TLS with the system CAs', { KAFKA_SSL: 'true' }, { ssl: { rejectUnauthorized: true } }],
    ['TLS with a CA file', { KAFKA_SSL: 'true', KAFKA_SSL_CA_FILE: '/ca.pem' }, { ssl: { rejectUnauthorized: true, ca: [files['/ca.pem']] } }],
    ['mTLS', { KAFKA_SSL: 'true', KAFKA_SSL_CERT_FILE: '/cert.pem', KAFKA_SSL_KEY_FILE: '/key.pem' }, { ssl: { rejectUnauthorized: true, cert: 'CERT', key: 'KEY' } }],
    [
      'SASL_SSL with SCRAM-SHA-512, password from a file (trailing newline dropped)',
      { KAFKA_SSL: 'true', KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_USERNAME: 'tracklane', KAFKA_SASL_PASSWORD_FILE: '/password' },
      { ssl: { rejectUnauthorized: true }, sasl: { mechanism: 'scram-sha-512', username: 'tracklane', password: SECRET } },
    ],
    [
      'SCRAM-SHA-256 over plaintext (a test broker)',
      { KAFKA_SASL_MECHANISM: 'scram-sha-256', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p' },
      { sasl: { mechanism: 'scram-sha-256', username: 'u', password: 'p' } },
    ],
  ])('%s', (_name, env, expected) => {
    expect(kafkaSecurityFrom(parse(env), read)).toEqual(expected);
  });

  it.each([
    [{ KAFKA_SSL_CA_FILE: '/ca.pem' }, /KAFKA_SSL is not true/],
    [{ KAFKA_SSL: 'true', KAFKA_SSL_CERT_FILE: '/cert.pem' }, /go together/],
    [{ KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: SECRET }, /KAFKA_SASL_MECHANISM is not/],
    [{ KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_PASSWORD: SECRET }, /KAFKA_SASL_USERNAME is required/],
    [{ KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_USERNAME: 'u' }, /KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE is required/],
    [{ KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: SECRET, KAFKA_SASL_PASSWORD_FILE: '/password' }, /not both/],
    [{ KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: SECRET }, /PLAIN sends the password in clear/],
    [{ KAFKA_SSL: 'true', KAFKA_SSL_CA_FILE: '/missing.pem' }, /KAFKA_SSL_CA_FILE: cannot read \/missing\.pem \(ENOENT\)/],
    [{ KAFKA_SSL: 'true', KAFKA_SASL_MECHANISM: 'scram-sha-256', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD_FILE: '/empty' }, /KAFKA_SASL_PASSWORD_FILE: \/empty is empty/],
  ])('refuses %j, naming the setting and never a secret', (env, message) => {
    let err: unknown;
    try {
      kafkaSecurityFrom(parse(env), read);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).not.toContain(SECRET);
  });

  it('refuses an unknown mechanism at parse time', () => {
    expect(z.object(kafkaSecurityShape).safeParse({ KAFKA_SASL_MECHANISM: 'gssapi' }).success).toBe(false);
  });

  it('reports every problem of a combination at once', () => {
    expect(kafkaSecurityProblems(parse({ KAFKA_SSL_KEY_FILE: '/key.pem', KAFKA_SASL_MECHANISM: 'plain' }))).toHaveLength(5);
  });
});
