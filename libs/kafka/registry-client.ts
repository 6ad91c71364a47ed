// The schema registry client of the fleet: HTTP basic auth and HTTPS with a
// CA file, as Confluent's registry (and any registry behind a TLS + basic-auth proxy) offers
// them. Settings are parsed with the fleet config; errors name the setting, never its value.
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { Agent, request as httpsRequest } from 'node:https';
import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import { z } from 'zod';
import { ConfigError, envOptionalString, readSecretFile, readSettingFile, type ReadFile } from '../config/env.js';

/** The environment shape; merged into the fleet config schema. */
export const schemaRegistryShape = {
  SCHEMA_REGISTRY_URL: z.url({ message: 'SCHEMA_REGISTRY_URL must be the Confluent-compatible registry URL' }),
  SCHEMA_REGISTRY_USER: envOptionalString,
  SCHEMA_REGISTRY_PASSWORD: envOptionalString,
  SCHEMA_REGISTRY_PASSWORD_FILE: envOptionalString,
  /** PEM CAs to trust for an https:// registry instead of the system's */
  SCHEMA_REGISTRY_CA_FILE: envOptionalString,
};

type RegistryEnv = z.infer<z.ZodObject<typeof schemaRegistryShape>>;

export interface RegistryClientOptions {
  host: string;
  auth?: { username: string; password: string };
  /** https only: an agent that verifies the registry against the CA file */
  agent?: Agent;
}

/** Problems a combination of settings has (each names settings only); [] when it is coherent. */
export function registryProblems(env: RegistryEnv): string[] {
  const problems: string[] = [];
  const https = env.SCHEMA_REGISTRY_URL.toLowerCase().startsWith('https:');
  const url = new URL(env.SCHEMA_REGISTRY_URL);
  if (url.username !== '' || url.password !== '') problems.push('SCHEMA_REGISTRY_URL must not carry credentials: set SCHEMA_REGISTRY_USER and SCHEMA_REGISTRY_PASSWORD');
  if (env.SCHEMA_REGISTRY_CA_FILE !== undefined && !https) problems.push('SCHEMA_REGISTRY_CA_FILE is set but SCHEMA_REGISTRY_URL is not https://');
  const passwords = [env.SCHEMA_REGISTRY_PASSWORD, env.SCHEMA_REGISTRY_PASSWORD_FILE].filter((v) => v !== undefined).length;
  if (passwords === 2) problems.push('set SCHEMA_REGISTRY_PASSWORD or SCHEMA_REGISTRY_PASSWORD_FILE, not both');
  if (env.SCHEMA_REGISTRY_USER === undefined && passwords > 0) problems.push('SCHEMA_REGISTRY_PASSWORD is set but SCHEMA_REGISTRY_USER is not');
  if (env.SCHEMA_REGISTRY_USER !== undefined && passwords === 0) problems.push('SCHEMA_REGISTRY_USER needs SCHEMA_REGISTRY_PASSWORD or SCHEMA_REGISTRY_PASSWORD_FILE');
  // NOTE: basic auth sends the password as is: never over plain HTTP, except to this machine
  if (env.SCHEMA_REGISTRY_USER !== undefined && !https && !['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)) {
    problems.push('SCHEMA_REGISTRY_USER needs an https:// SCHEMA_REGISTRY_URL (basic auth sends the password in clear)');
  }
  return problems;
}

/** The client options of the settings, files read now; a ConfigError naming the setting otherwise. */
export function registryClientOptions(env: RegistryEnv, read: ReadFile = (p) => readFileSync(p, 'utf8')): RegistryClientOptions {
  const problems = registryProblems(env);
  if (problems.length > 0) throw new ConfigError(`invalid schema registry settings:\n${problems.map((p) => `  ${p}`).join('\n')}`);
  const out: RegistryClientOptions = { host: env.SCHEMA_REGISTRY_URL };
  if (env.SCHEMA_REGISTRY_USER !== undefined) {
    const password = env.SCHEMA_REGISTRY_PASSWORD ?? readSecretFile('SCHEMA_REGISTRY_PASSWORD_FILE', env.SCHEMA_REGISTRY_PASSWORD_FILE ?? '', read);
    out.auth = { username: env.SCHEMA_REGISTRY_USER, password };
  }
  if (env.SCHEMA_REGISTRY_CA_FILE !== undefined) {
    out.agent = new Agent({ keepAlive: true, ca: readSettingFile('SCHEMA_REGISTRY_CA_FILE', env.SCHEMA_REGISTRY_CA_FILE, read), rejectUnauthorized: true });
  }
  return out;
}

export function createSchemaRegistry(options: RegistryClientOptions): SchemaRegistry {
  // NOTE: https.Agent is an http.Agent to the client's types; mappersmith picks https by the URL
  return new SchemaRegistry({ host: options.host, ...(options.auth ? { auth: options.auth } : {}), ...(options.agent ? { agent: options.agent } : {}) });
}

/**
 * Why the registry cannot be used, asked directly: the registry client turns a TLS failure into a
 * "status 400" response and drops the error's code, so after a failed start-up step this GETs
 * `/subjects` with the same credentials and agent. Resolves the transport error (with Node's
 * `code`, e.g. SELF_SIGNED_CERT_IN_CHAIN), an error with the HTTP `status` of a refusal, or
 * undefined when the registry answers.
 */
export function registryTransportProblem(options: RegistryClientOptions, timeoutMs = 5_000): Promise<Error | undefined> {
  const url = new URL(`${options.host.replace(/\/$/, '')}/subjects`);
  const headers = options.auth ? { authorization: `Basic ${Buffer.from(`${options.auth.username}:${options.auth.password}`).toString('base64')}` } : {};
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve) => {
    const req = send(url, { method: 'GET', headers, timeout: timeoutMs, ...(options.agent ? { agent: options.agent } : {}) }, (res) => {
      res.resume();
      const status = res.statusCode ?? 0;
      resolve(status >= 200 && status < 300 ? undefined : Object.assign(new Error(`schema registry answered ${status}`), { status }));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('schema registry timed out'), { code: 'ETIMEDOUT' })));
    req.on('error', (err) => resolve(err));
    req.end();
  });
}
