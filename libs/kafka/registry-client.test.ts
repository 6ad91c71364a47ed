import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError } from '../config/env.js';
import { registryClientOptions, registryProblems, schemaRegistryShape } from './registry-client.js';

const parse = (env: Record<string, string>) => z.object(schemaRegistryShape).parse({ SCHEMA_REGISTRY_URL: 'https://registry.example:8081', ...env });
const SECRET = 'hunter2-do-not-log';
const files: Record<string, string> = { '/password': `${SECRET}\n`, '/ca.pem': '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n', '/empty': '\n' };
const read = (p: string): string => {
  const text = files[p];
  if (text === undefined) throw Object.assign(new Error(`ENOENT: no such file, open '${p}'`), { code: 'ENOENT' });
  return text;
};

describe('schema registry settings', () => {
  it('no credentials: just the URL', () => {
    expect(registryClientOptions(parse({}), read)).toEqual({ host: 'https://registry.example:8081' });
  });

  it('basic auth from a password file (the trailing newline is not part of it)', () => {
    const options = registryClientOptions(parse({ SCHEMA_REGISTRY_USER: 'sink', SCHEMA_REGISTRY_PASSWORD_FILE: '/password' }), read);
    expect(options.auth).toEqual({ username: 'sink', password: SECRET });
  });

  it('a CA file gives an agent that verifies the registry', () => {
    const options = registryClientOptions(parse({ SCHEMA_REGISTRY_CA_FILE: '/ca.pem' }), read);
    expect(options.agent?.options).toMatchObject({ ca: files['/ca.pem'], rejectUnauthorized: true });
  });

  it.each([
    ['credentials in the URL', { SCHEMA_REGISTRY_URL: `https://sink:${SECRET}@registry.example` }, 'must not carry credentials'],
    ['a password without a user', { SCHEMA_REGISTRY_PASSWORD: SECRET }, 'SCHEMA_REGISTRY_USER is not'],
    ['a user without a password', { SCHEMA_REGISTRY_USER: 'sink' }, 'needs SCHEMA_REGISTRY_PASSWORD'],
    ['both password settings', { SCHEMA_REGISTRY_USER: 'sink', SCHEMA_REGISTRY_PASSWORD: SECRET, SCHEMA_REGISTRY_PASSWORD_FILE: '/password' }, 'not both'],
    ['basic auth over plain HTTP to another host', { SCHEMA_REGISTRY_URL: 'http://registry.example', SCHEMA_REGISTRY_USER: 'sink', SCHEMA_REGISTRY_PASSWORD: SECRET }, 'needs an https://'],
    ['a CA file for an http:// URL', { SCHEMA_REGISTRY_URL: 'http://registry.example', SCHEMA_REGISTRY_CA_FILE: '/ca.pem' }, 'is not https://'],
  ])('refuses %s, naming settings and never the password', (_what, env, message) => {
    const problems = registryProblems(parse(env));
    expect(problems.join('\n')).toContain(message);
    expect(problems.join('\n')).not.toContain(SECRET);
    expect(() => registryClientOptions(parse(env), read)).toThrow(ConfigError);
  });

  it('basic auth over plain HTTP is allowed to this machine (the test registry)', () => {
    expect(registryProblems(parse({ SCHEMA_REGISTRY_URL: 'http://127.0.0.1:8081', SCHEMA_REGISTRY_USER: 'u', SCHEMA_REGISTRY_PASSWORD: 'p' }))).toEqual([]);
  });

  it.each([
    ['/missing', 'SCHEMA_REGISTRY_PASSWORD_FILE: cannot read /missing (ENOENT)'],
    ['/empty', 'SCHEMA_REGISTRY_PASSWORD_FILE: /empty is empty'],
  ])('an unreadable or empty password file (%s) is a ConfigError naming the setting', (path, message) => {
    expect(() => registryClientOptions(parse({ SCHEMA_REGISTRY_USER: 'u', SCHEMA_REGISTRY_PASSWORD_FILE: path }), read)).toThrow(message);
  });
});
