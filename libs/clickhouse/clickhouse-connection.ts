// How Tracklane authenticates to and encrypts its ClickHouse connections:
// user and password (or a password file: a mounted Kubernetes Secret) and HTTPS with the system
// CAs or a CA file, hostname verification always on — for every connection, the compactor's
// per-node ones and the analyst user's included. Errors name the setting, never its value.
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError, envOptionalString, readSecretFile, readSettingFile, type ReadFile } from '../config/env.js';
import type { Logger } from '../core/logger.js';
import { errorChain, tlsFailureOfCode } from '../core/tls-errors.js';
import type { ClickHouseConfig, ClickHouseSettings } from './client.js';

/** The environment shape; merged into the fleet and embedded config schemas. */
export const clickhouseConnectionShape = {
  /** unset: ClickHouse's `default` user */
  CLICKHOUSE_USER: envOptionalString,
  CLICKHOUSE_PASSWORD: envOptionalString,
  /** a file holding the password (its trailing newline is not part of it) */
  CLICKHOUSE_PASSWORD_FILE: envOptionalString,
  /** PEM bundle of the CAs to trust for an https:// CLICKHOUSE_URL instead of the system's */
  CLICKHOUSE_CA_FILE: envOptionalString,
  /** how long one request may take before the client gives up and the step is retried (default 30 s) */
  CLICKHOUSE_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).max(3_600_000).optional(),
};

/** The server's read-only analyst user tenant queries log in as (schemas/clickhouse-server/analyst-user.sql). */
export const clickhouseAnalystShape = {
  CLICKHOUSE_ANALYST_USER: envOptionalString,
  CLICKHOUSE_ANALYST_PASSWORD: envOptionalString,
  CLICKHOUSE_ANALYST_PASSWORD_FILE: envOptionalString,
};

type ConnectionEnv = z.infer<z.ZodObject<typeof clickhouseConnectionShape>> & { CLICKHOUSE_URL?: string | undefined };
type AnalystEnv = Partial<z.infer<z.ZodObject<typeof clickhouseAnalystShape>>>;

/** What createClickHouse (client.ts) takes besides the URL: spread into its config. */
export interface ClickHouseConnection {
  username?: string;
  password?: string;
  /** PEM CAs for HTTPS; absent: the system's */
  caCert?: Buffer;
  requestTimeoutMs?: number;
}

export interface ClickHouseCredentials {
  username?: string;
  password?: string;
}

const readUtf8: ReadFile = (p) => readFileSync(p, 'utf8');

/** Problems a combination of settings has (each names settings only); [] when it is coherent. */
export function clickhouseConnectionProblems(env: ConnectionEnv & AnalystEnv): string[] {
  const problems: string[] = [];
  // NOTE: credentials in the URL would reach the main connection only: the compactor's per-node
  // URLs (cluster-nodes.ts) are built from its scheme, host and port. An unparsable URL is the
  // URL check's to report.
  const url = env.CLICKHOUSE_URL !== undefined && URL.canParse(env.CLICKHOUSE_URL) ? new URL(env.CLICKHOUSE_URL) : undefined;
  if (url && (url.username !== '' || url.password !== '')) {
    problems.push('CLICKHOUSE_URL must not carry credentials: set CLICKHOUSE_USER and CLICKHOUSE_PASSWORD');
  }
  if (env.CLICKHOUSE_PASSWORD !== undefined && env.CLICKHOUSE_PASSWORD_FILE !== undefined) {
    problems.push('set CLICKHOUSE_PASSWORD or CLICKHOUSE_PASSWORD_FILE, not both');
  }
  if (env.CLICKHOUSE_ANALYST_PASSWORD !== undefined && env.CLICKHOUSE_ANALYST_PASSWORD_FILE !== undefined) {
    problems.push('set CLICKHOUSE_ANALYST_PASSWORD or CLICKHOUSE_ANALYST_PASSWORD_FILE, not both');
  }
  const analystPassword = env.CLICKHOUSE_ANALYST_PASSWORD !== undefined || env.CLICKHOUSE_ANALYST_PASSWORD_FILE !== undefined;
  if (analystPassword && env.CLICKHOUSE_ANALYST_USER === undefined) {
    problems.push('CLICKHOUSE_ANALYST_PASSWORD(_FILE) is set but CLICKHOUSE_ANALYST_USER is not');
  }
  if (env.CLICKHOUSE_CA_FILE !== undefined && env.CLICKHOUSE_URL !== undefined && !/^https:\/\//i.test(env.CLICKHOUSE_URL)) {
    problems.push('CLICKHOUSE_CA_FILE is set but CLICKHOUSE_URL is not https:// (the CA would verify nothing)');
  }
  return problems;
}

function assertCoherent(env: ConnectionEnv & AnalystEnv): void {
  const problems = clickhouseConnectionProblems(env);
  if (problems.length > 0) throw new ConfigError(`invalid ClickHouse connection settings:\n${problems.map((p) => `  ${p}`).join('\n')}`);
}

/**
 * The connection options of the settings, files read now. Throws a ConfigError naming the setting
 * (and the file's path, which is not secret) when a file cannot be read or the settings clash.
 */
export function clickhouseConnectionFrom(env: ConnectionEnv & AnalystEnv, read: ReadFile = readUtf8): ClickHouseConnection {
  assertCoherent(env);
  const out: ClickHouseConnection = {};
  if (env.CLICKHOUSE_USER !== undefined) out.username = env.CLICKHOUSE_USER;
  const password = env.CLICKHOUSE_PASSWORD ?? (env.CLICKHOUSE_PASSWORD_FILE !== undefined ? readSecretFile('CLICKHOUSE_PASSWORD_FILE', env.CLICKHOUSE_PASSWORD_FILE, read) : undefined);
  if (password !== undefined) out.password = password;
  if (env.CLICKHOUSE_CA_FILE !== undefined) out.caCert = Buffer.from(readSettingFile('CLICKHOUSE_CA_FILE', env.CLICKHOUSE_CA_FILE, read));
  if (env.CLICKHOUSE_REQUEST_TIMEOUT_MS !== undefined) out.requestTimeoutMs = env.CLICKHOUSE_REQUEST_TIMEOUT_MS;
  return out;
}

/** Where a client of the settings goes and how it behaves, beyond the settings themselves. */
export interface ClickHouseClientOptions {
  /** chDB's data dir when CLICKHOUSE_URL is unset (embedded mode); without one a URL is required */
  chdbDir?: string;
  /** another node of the same cluster (the compactor's per-node connections): same login and CA */
  url?: string;
  settings?: ClickHouseSettings;
  /** overrides CLICKHOUSE_REQUEST_TIMEOUT_MS (a step known to run long) */
  requestTimeoutMs?: number;
  logger?: Logger;
}

/**
 * The one way a service builds a ClickHouse client config from its settings: a server when
 * CLICKHOUSE_URL (or `opts.url`) is set, with the login, CA and timeout of the settings; else
 * chDB on `opts.chdbDir`; else a ConfigError naming CLICKHOUSE_URL.
 */
export function clickhouseConfigFrom(
  env: ConnectionEnv & AnalystEnv & { CLICKHOUSE_DATABASE?: string | undefined },
  opts: ClickHouseClientOptions = {},
  read: ReadFile = readUtf8,
): ClickHouseConfig {
  const url = opts.url ?? env.CLICKHOUSE_URL;
  const common = { ...(opts.logger ? { logger: opts.logger } : {}) };
  if (url === undefined) {
    if (opts.chdbDir === undefined) throw new ConfigError('CLICKHOUSE_URL is required (http(s)://host:8123 of the ClickHouse server)');
    return { dataDir: opts.chdbDir, ...(env.CLICKHOUSE_DATABASE !== undefined ? { database: env.CLICKHOUSE_DATABASE } : {}), ...common };
  }
  const connection = clickhouseConnectionFrom(env, read);
  return {
    url,
    ...(env.CLICKHOUSE_DATABASE !== undefined ? { database: env.CLICKHOUSE_DATABASE } : {}),
    ...connection,
    ...(opts.requestTimeoutMs !== undefined ? { requestTimeoutMs: opts.requestTimeoutMs } : {}),
    ...(opts.settings ? { settings: opts.settings } : {}),
    ...common,
  };
}

/** The analyst user's credentials (none when CLICKHOUSE_ANALYST_USER is unset). */
export function clickhouseAnalystCredentialsFrom(env: ConnectionEnv & AnalystEnv, read: ReadFile = readUtf8): ClickHouseCredentials {
  assertCoherent(env);
  if (env.CLICKHOUSE_ANALYST_USER === undefined) return {};
  const password =
    env.CLICKHOUSE_ANALYST_PASSWORD ??
    (env.CLICKHOUSE_ANALYST_PASSWORD_FILE !== undefined ? readSecretFile('CLICKHOUSE_ANALYST_PASSWORD_FILE', env.CLICKHOUSE_ANALYST_PASSWORD_FILE, read) : undefined);
  return { username: env.CLICKHOUSE_ANALYST_USER, ...(password !== undefined ? { password } : {}) };
}

/**
 * Thrown by a start-up check of the analyst user's login (analyst-setup.ts), so the start-up line
 * names the analyst settings rather than the main ones.
 */
export class AnalystLoginError extends Error {
  override readonly name = 'AnalystLoginError';
  constructor(cause: unknown) {
    super('the analyst user could not run a statement', { cause });
  }
}

// ClickHouse's codes for a refused login: UNKNOWN_USER, WRONG_PASSWORD, REQUIRED_PASSWORD, AUTHENTICATION_FAILED
const LOGIN_CODES = new Set(['192', '193', '194', '516']);
const LOGIN_TYPES = new Set(['UNKNOWN_USER', 'WRONG_PASSWORD', 'REQUIRED_PASSWORD', 'AUTHENTICATION_FAILED']);

/**
 * One line naming the settings to check for a ClickHouse start-up failure (wrong credentials, an
 * untrusted or misnamed certificate, plain HTTP against TLS), or undefined when it is none of
 * these. Never quotes the error's message (it may hold values).
 */
export function clickhouseStartupProblem(err: unknown): string | undefined {
  const errors = errorChain(err);
  const analyst = errors.some((e) => e instanceof AnalystLoginError);
  for (const e of errors) {
    const { code, type, message } = e as { code?: unknown; type?: unknown; message?: unknown };
    // NOTE: a proxy in front of ClickHouse answers 401/403 without a ClickHouse error body
    const proxyRefusal = typeof message === 'string' && code === undefined && /\b40[13]\b[^\n]{0,40}\b(?:unauthori[sz]ed|forbidden)\b|^\s*(?:unauthori[sz]ed|forbidden)\b/i.test(message.slice(0, 300));
    if ((typeof code === 'string' && LOGIN_CODES.has(code)) || (typeof type === 'string' && LOGIN_TYPES.has(type)) || proxyRefusal) {
      return analyst
        ? 'ClickHouse refused the analyst user: check CLICKHOUSE_ANALYST_USER and CLICKHOUSE_ANALYST_PASSWORD (or CLICKHOUSE_ANALYST_PASSWORD_FILE)'
        : 'ClickHouse refused the credentials: check CLICKHOUSE_USER and CLICKHOUSE_PASSWORD (or CLICKHOUSE_PASSWORD_FILE)';
    }
    if (typeof code !== 'string') continue;
    const tls = code === 'EPROTO' ? 'not-tls' : tlsFailureOfCode(code);
    if (tls === 'untrusted') return "ClickHouse's TLS certificate is not trusted: check CLICKHOUSE_CA_FILE (unset: the system's CAs)";
    if (tls === 'expired') return "ClickHouse's TLS certificate has expired or is not valid yet: renew the server's certificate";
    if (tls === 'hostname') return "ClickHouse's TLS certificate names another host: check the host of CLICKHOUSE_URL (it must match the certificate)";
    if (tls === 'not-tls') return 'ClickHouse does not speak TLS on that port: check the scheme and port of CLICKHOUSE_URL';
  }
  return undefined;
}
