// How the fleet authenticates to and encrypts its Kafka connections: TLS
// (system CAs or a CA file, optional client certificate for mTLS, hostname verification always
// on) and SASL PLAIN / SCRAM-SHA-256 / SCRAM-SHA-512. The settings are parsed with the fleet
// config; secrets may come from files (a mounted Kubernetes Secret). Errors name the setting,
// never its value.
import { readFileSync } from 'node:fs';
import type { SASLOptions } from 'kafkajs';
import { z } from 'zod';
import { ConfigError, envBoolean, envOptionalString, readSecretFile, readSettingFile, type ReadFile } from '../config/env.js';

export const SASL_MECHANISMS = ['plain', 'scram-sha-256', 'scram-sha-512'] as const;

/** The environment shape; merged into the fleet config schema. */
export const kafkaSecurityShape = {
  KAFKA_SSL: envBoolean(false),
  /** PEM bundle of the CAs to trust instead of the system's */
  KAFKA_SSL_CA_FILE: envOptionalString,
  /** mTLS: PEM client certificate and key (both or neither) */
  KAFKA_SSL_CERT_FILE: envOptionalString,
  KAFKA_SSL_KEY_FILE: envOptionalString,
  KAFKA_SASL_MECHANISM: envOptionalString.pipe(z.enum(SASL_MECHANISMS, { message: `KAFKA_SASL_MECHANISM must be one of ${SASL_MECHANISMS.join(', ')}` }).optional()),
  KAFKA_SASL_USERNAME: envOptionalString,
  KAFKA_SASL_PASSWORD: envOptionalString,
  KAFKA_SASL_PASSWORD_FILE: envOptionalString,
};

type KafkaSecurityEnv = z.infer<z.ZodObject<typeof kafkaSecurityShape>>;

export interface KafkaTls {
  /** PEM CAs; absent: the system's */
  ca?: string[];
  cert?: string;
  key?: string;
  /** never false: an unverified broker is no TLS at all */
  rejectUnauthorized: true;
}

export interface KafkaSecurity {
  ssl?: KafkaTls;
  sasl?: SASLOptions;
}

/** Problems a combination of settings has (each names settings only); [] when it is coherent. */
export function kafkaSecurityProblems(env: KafkaSecurityEnv): string[] {
  const problems: string[] = [];
  const tlsFiles = [env.KAFKA_SSL_CA_FILE, env.KAFKA_SSL_CERT_FILE, env.KAFKA_SSL_KEY_FILE].some((v) => v !== undefined);
  if (tlsFiles && !env.KAFKA_SSL) problems.push('KAFKA_SSL_*_FILE is set but KAFKA_SSL is not true');
  if ((env.KAFKA_SSL_CERT_FILE === undefined) !== (env.KAFKA_SSL_KEY_FILE === undefined)) {
    problems.push('KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE go together (mTLS needs both)');
  }
  const saslParts = [env.KAFKA_SASL_USERNAME, env.KAFKA_SASL_PASSWORD, env.KAFKA_SASL_PASSWORD_FILE].some((v) => v !== undefined);
  if (env.KAFKA_SASL_MECHANISM === undefined) {
    if (saslParts) problems.push('KAFKA_SASL_USERNAME/PASSWORD are set but KAFKA_SASL_MECHANISM is not');
  } else {
    if (env.KAFKA_SASL_USERNAME === undefined) problems.push(`KAFKA_SASL_USERNAME is required with KAFKA_SASL_MECHANISM=${env.KAFKA_SASL_MECHANISM}`);
    const passwords = [env.KAFKA_SASL_PASSWORD, env.KAFKA_SASL_PASSWORD_FILE].filter((v) => v !== undefined).length;
    if (passwords === 0) problems.push(`KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE is required with KAFKA_SASL_MECHANISM=${env.KAFKA_SASL_MECHANISM}`);
    if (passwords === 2) problems.push('set KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE, not both');
    // NOTE: SASL PLAIN sends the password as is: never over a plain connection
    if (env.KAFKA_SASL_MECHANISM === 'plain' && !env.KAFKA_SSL) problems.push('KAFKA_SASL_MECHANISM=plain needs KAFKA_SSL=true (PLAIN sends the password in clear)');
  }
  return problems;
}

/**
 * The client options of the settings, files read now. Throws a ConfigError naming the setting
 * (and the file's path, which is not secret) when a file cannot be read or the settings clash.
 */
export function kafkaSecurityFrom(env: KafkaSecurityEnv, read: ReadFile = (p) => readFileSync(p, 'utf8')): KafkaSecurity {
  const problems = kafkaSecurityProblems(env);
  if (problems.length > 0) throw new ConfigError(`invalid Kafka security settings:\n${problems.map((p) => `  ${p}`).join('\n')}`);
  const file = (setting: string, path: string): string => readSettingFile(setting, path, read);
  const out: KafkaSecurity = {};
  if (env.KAFKA_SSL) {
    out.ssl = {
      rejectUnauthorized: true,
      ...(env.KAFKA_SSL_CA_FILE ? { ca: [file('KAFKA_SSL_CA_FILE', env.KAFKA_SSL_CA_FILE)] } : {}),
      ...(env.KAFKA_SSL_CERT_FILE && env.KAFKA_SSL_KEY_FILE
        ? { cert: file('KAFKA_SSL_CERT_FILE', env.KAFKA_SSL_CERT_FILE), key: file('KAFKA_SSL_KEY_FILE', env.KAFKA_SSL_KEY_FILE) }
        : {}),
    };
  }
  if (env.KAFKA_SASL_MECHANISM && env.KAFKA_SASL_USERNAME) {
    const password = env.KAFKA_SASL_PASSWORD ?? readSecretFile('KAFKA_SASL_PASSWORD_FILE', env.KAFKA_SASL_PASSWORD_FILE ?? '', read);
    out.sasl = { mechanism: env.KAFKA_SASL_MECHANISM, username: env.KAFKA_SASL_USERNAME, password } as SASLOptions;
  }
  return out;
}
