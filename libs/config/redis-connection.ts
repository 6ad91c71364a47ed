// How the fleet authenticates to and encrypts its Redis connections: an ACL
// user and password (in REDIS_URL or separate settings, the password also from a mounted
// Secret file), TLS for rediss:// (system CAs or a CA file, hostname verification always on).
// Every Redis client of the fleet is opened by openRedis(); errors name settings, never values.
import { readFileSync } from 'node:fs';
import { Redis, type RedisOptions } from 'ioredis';
import { z } from 'zod';
import { ConfigError, envOptionalString, parseEnv, readSecretFile, readSettingFile, type ReadFile } from './env.js';
import { tlsFailureOfCode } from '../core/tls-errors.js';

/** The environment shape; merged into the fleet config schema. */
export const redisConnectionShape = {
  /** redis://[user[:password]@]host[:port][/db], rediss://… for TLS */
  REDIS_URL: z.string().regex(/^rediss?:\/\//, 'REDIS_URL must be redis://host:port or rediss://host:port (TLS)').default('redis://127.0.0.1:6379'),
  /** the ACL user (default: Redis's `default` user) */
  REDIS_USERNAME: envOptionalString,
  REDIS_PASSWORD: envOptionalString,
  REDIS_PASSWORD_FILE: envOptionalString,
  /** PEM bundle of the CAs to trust instead of the system's (rediss:// only) */
  REDIS_TLS_CA_FILE: envOptionalString,
};

export type RedisConnectionConfig = z.infer<z.ZodObject<typeof redisConnectionShape>>;

/** The settings of a URL alone (tests, tools): credentials and TLS as REDIS_URL carries them. */
export function redisConnectionOfUrl(url: string): RedisConnectionConfig {
  return parseEnv(z.object(redisConnectionShape), { REDIS_URL: url });
}

/** REDIS_URL taken apart; `password` is never part of a message. */
interface ParsedUrl {
  tls: boolean;
  host: string;
  port: number;
  db: number;
  username?: string;
  password?: string;
}

type UrlOrProblem = { ok: true; url: ParsedUrl } | { ok: false; problem: string };

function parseRedisUrl(text: string): UrlOrProblem {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    // NOTE: never quote the text: it may hold a password.
    return { ok: false, problem: 'REDIS_URL is not a valid URL' };
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') return { ok: false, problem: 'REDIS_URL must start with redis:// or rediss://' };
  if (u.hostname === '') return { ok: false, problem: 'REDIS_URL names no host' };
  if (u.search !== '' || u.hash !== '') return { ok: false, problem: 'REDIS_URL: query parameters are not supported (use the REDIS_* settings)' };
  const path = u.pathname.replace(/^\//, '');
  if (path !== '' && !/^\d{1,2}$/.test(path)) return { ok: false, problem: 'REDIS_URL: the path must be a database number (e.g. /0)' };
  let username: string | undefined;
  let password: string | undefined;
  try {
    username = u.username === '' ? undefined : decodeURIComponent(u.username);
    password = u.password === '' ? undefined : decodeURIComponent(u.password);
  } catch {
    return { ok: false, problem: 'REDIS_URL: the user or password is not valid percent-encoding' };
  }
  return {
    ok: true,
    url: {
      tls: u.protocol === 'rediss:',
      // NOTE: URL keeps an IPv6 literal's brackets; sockets want the bare address.
      host: u.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: u.port === '' ? 6379 : Number(u.port),
      db: path === '' ? 0 : Number(path),
      ...(username !== undefined ? { username } : {}),
      ...(password !== undefined ? { password } : {}),
    },
  };
}

/** Problems a combination of settings has (each names settings only); [] when it is coherent. */
export function redisConnectionProblems(config: RedisConnectionConfig): string[] {
  const parsed = parseRedisUrl(config.REDIS_URL);
  if (!parsed.ok) return [parsed.problem];
  const { url } = parsed;
  const problems: string[] = [];
  if (config.REDIS_PASSWORD !== undefined && config.REDIS_PASSWORD_FILE !== undefined) problems.push('set REDIS_PASSWORD or REDIS_PASSWORD_FILE, not both');
  if (url.password !== undefined && (config.REDIS_PASSWORD !== undefined || config.REDIS_PASSWORD_FILE !== undefined)) {
    problems.push('REDIS_URL carries a password and REDIS_PASSWORD or REDIS_PASSWORD_FILE is set: use one');
  }
  if (url.username !== undefined && config.REDIS_USERNAME !== undefined) problems.push('REDIS_URL names a user and REDIS_USERNAME is set: use one');
  const hasPassword = url.password !== undefined || config.REDIS_PASSWORD !== undefined || config.REDIS_PASSWORD_FILE !== undefined;
  if ((url.username !== undefined || config.REDIS_USERNAME !== undefined) && !hasPassword) {
    problems.push('a Redis user is set (REDIS_USERNAME or in REDIS_URL) but no password (REDIS_PASSWORD, REDIS_PASSWORD_FILE or in REDIS_URL)');
  }
  if (config.REDIS_TLS_CA_FILE !== undefined && !url.tls) problems.push('REDIS_TLS_CA_FILE is set but REDIS_URL is not rediss:// (TLS)');
  return problems;
}

/** Where the client connects, for logs and messages: scheme, host and port, never credentials. */
export function redisTarget(config: Pick<RedisConnectionConfig, 'REDIS_URL'>): string {
  const parsed = parseRedisUrl(config.REDIS_URL);
  if (!parsed.ok) return '(invalid REDIS_URL)';
  const { url } = parsed;
  return `${url.tls ? 'rediss' : 'redis'}://${url.host.includes(':') ? `[${url.host}]` : url.host}:${url.port}`;
}

/**
 * The ioredis options of the settings, files read now. Throws a ConfigError naming the setting
 * (and the file's path, which is not secret) when a file cannot be read or the settings clash.
 */
export function redisOptionsFrom(config: RedisConnectionConfig, read: ReadFile = (p) => readFileSync(p, 'utf8')): RedisOptions {
  const problems = redisConnectionProblems(config);
  if (problems.length > 0) throw new ConfigError(`invalid Redis connection settings:\n${problems.map((p) => `  ${p}`).join('\n')}`);
  const parsed = parseRedisUrl(config.REDIS_URL);
  if (!parsed.ok) throw new ConfigError(parsed.problem);
  const { url } = parsed;
  const password = url.password ?? config.REDIS_PASSWORD ?? (config.REDIS_PASSWORD_FILE ? readSecretFile('REDIS_PASSWORD_FILE', config.REDIS_PASSWORD_FILE, read) : undefined);
  const username = url.username ?? config.REDIS_USERNAME;
  return {
    host: url.host,
    port: url.port,
    ...(url.db !== 0 ? { db: url.db } : {}),
    ...(username !== undefined ? { username } : {}),
    ...(password !== undefined ? { password } : {}),
    // NOTE: never rejectUnauthorized: false — an unverified server is no TLS at all. Node checks
    // the certificate against the host name (SNI and checkServerIdentity use `host`).
    ...(url.tls ? { tls: { rejectUnauthorized: true, ...(config.REDIS_TLS_CA_FILE ? { ca: [readSettingFile('REDIS_TLS_CA_FILE', config.REDIS_TLS_CA_FILE, read)] } : {}) } } : {}),
  };
}

/**
 * A client of the configured Redis: credentials, TLS, a connection name (`tracklane-<purpose>`,
 * seen in CLIENT LIST) and the caller's options (retries, lazyConnect…). Throws a ConfigError
 * like redisOptionsFrom.
 * NOTE: an ioredis reply error keeps the command it answers (`err.command.args`): for a failed
 * AUTH that is the password. Log ioredis errors by name and message only (redisStartupProblem
 * for start-up failures), never the error object.
 */
export function openRedis(config: RedisConnectionConfig, purpose: string, overrides: RedisOptions = {}): Redis {
  return new Redis({
    ...redisOptionsFrom(config),
    connectionName: `tracklane-${purpose}`,
    // NOTE: CLIENT SETINFO (Redis ≥ 7.2) would need one more ACL permission for nothing we use
    disableClientInfo: true,
    ...overrides,
  });
}

/**
 * Closes a client without hanging or throwing: QUIT (1 s at most) when it is connected, else
 * cut at once. Use it for every client openRedis() opened.
 */
export async function closeRedis(client: Redis): Promise<void> {
  if (client.status === 'end') return;
  if (client.status !== 'ready') {
    // TRICKY: quit() on a connection that is not ready (measured: one failing its TLS handshake)
    // let its socket emit an error no listener heard: an uncaught ERR_SSL_TLSV1_ALERT_DECODE_ERROR
    // crashed the process. Nothing to say goodbye to: cut it, and hear a late error.
    (client.stream as Redis['stream'] | undefined)?.on('error', () => undefined);
    client.disconnect();
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), 1_000);
  });
  try {
    if ((await Promise.race([client.quit(), timeout])) === 'timeout') client.disconnect();
  } catch {
    client.disconnect();
  } finally {
    clearTimeout(timer);
  }
}

// --- start-up problems ------------------------------------------------------------------

/** ioredis prefixes an error of its ready check (INFO) with this. */
const READY_CHECK_PREFIX = 'Ready check failed: ';
/**
 * TRICKY: inside a Lua script, Redis 7.0 answers an ACL denial with `ERR` and these fixed texts
 * (script.c) instead of NOPERM; later versions answer NOPERM. Matched as exact phrases only.
 */
const SCRIPT_DENIALS: [string, string][] = [
  ["ERR The user executing the script can't run this command or subcommand", 'a command inside a script'],
  ["ERR The user executing the script can't access at least one of the keys", 'a key inside a script'],
  ["ERR The user executing the script can't publish to the channel", 'a channel inside a script'],
];

/**
 * One line saying what is wrong with the Redis connection, naming the setting to fix, or
 * undefined when err is not an authentication, permission or TLS problem (the connection is
 * down, a timeout…). Reads Redis's leading error code and Node's TLS error codes only; never
 * quotes a value (a key, a password). Follows `cause` (a TenantStoreError carries the Redis
 * error it gave up on).
 */
export function redisStartupProblem(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const problem = problemOf(e);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

function problemOf(err: Error): string | undefined {
  const code = 'code' in err && typeof err.code === 'string' ? err.code : undefined;
  const tls = tlsFailureOfCode(code);
  if (tls === 'untrusted') return "Redis's TLS certificate is not trusted: check REDIS_TLS_CA_FILE (unset: the system's CAs)";
  if (tls === 'expired') return "Redis's TLS certificate has expired or is not valid yet: renew the server's certificate";
  if (tls === 'hostname') return "Redis's TLS certificate names another host: check REDIS_URL (its host must match the certificate)";
  if (tls === 'not-tls') return 'Redis does not answer TLS on that port: check REDIS_URL (rediss:// needs the TLS port)';
  const message = err.message.startsWith(READY_CHECK_PREFIX) ? err.message.slice(READY_CHECK_PREFIX.length) : err.message;
  const replyCode = /^[A-Z]+(?= |$)/.exec(message)?.[0];
  switch (replyCode) {
    case 'WRONGPASS':
      return 'Redis refused the credentials: check REDIS_USERNAME and REDIS_PASSWORD (or REDIS_PASSWORD_FILE, or the user and password in REDIS_URL)';
    case 'NOAUTH':
      return 'Redis requires a password: set REDIS_PASSWORD (or REDIS_PASSWORD_FILE, or the password in REDIS_URL)';
    case 'NOPERM':
      return `the Redis ACL user lacks a permission (${deniedWhat(message)}): check the ACL of REDIS_USERNAME (libs/config/redis-acl.ts)`;
    case 'ERR': {
      const denial = SCRIPT_DENIALS.find(([prefix]) => message.startsWith(prefix));
      if (denial) return `the Redis ACL user lacks a permission (${denial[1]}): check the ACL of REDIS_USERNAME (libs/config/redis-acl.ts)`;
      return undefined;
    }
    default:
      return undefined;
  }
}

/** What a NOPERM reply denies: the command's name (Redis quotes it), or whether a key or a channel. */
function deniedWhat(message: string): string {
  // NOTE: Redis 7.0 says "this user has no permissions …", 7.2 "User <name> has no permissions …"
  const command = /^NOPERM [^']*has no permissions to run the '([a-z_|-]+)' command/.exec(message)?.[1];
  if (command !== undefined) return `the command ${command}`;
  if (/^NOPERM [^']*has no permissions to access one of the keys/.test(message)) return 'a key';
  if (/^NOPERM [^']*has no permissions to access one of the channels/.test(message)) return 'a channel';
  return 'a command, key or channel';
}
