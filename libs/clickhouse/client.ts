// One way to get a ClickHouse client: the HTTP server in production (`url` set) or the
// in-process chDB engine on a data dir (embedded mode, tests) — same @clickhouse/client API.
import { createRequire } from 'node:module';
import { mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  ClickHouseLogLevel,
  createClient,
  parseError,
  type ClickHouseClient,
  type ClickHouseSettings,
  type ErrorLogParams,
  type LogParams,
  type Logger as ClientLogger,
  type WarnLogParams,
} from '@clickhouse/client';
import { ConfigError } from '../config/env.js';
import { safeErrorFields } from '../core/errors.js';
import type { Logger } from '../core/logger.js';

export type { ClickHouseClient, ClickHouseSettings };

interface ClientCommon {
  requestTimeoutMs?: number;
  /** the client's own warnings/errors go here (else @clickhouse/client writes to the console) */
  logger?: Logger;
}

/** A ClickHouse server over HTTP(S). */
export interface HttpClickHouseConfig extends ClientCommon {
  /** http(s)://host:8123 */
  url: string;
  database?: string;
  username?: string;
  password?: string;
  /** HTTPS only: PEM CAs to trust instead of the system's (CLICKHOUSE_CA_FILE); the host name is always verified */
  caCert?: Buffer;
  /** settings sent with every statement (cluster mode: synchronous Distributed inserts) */
  settings?: ClickHouseSettings;
}

/** The in-process chDB engine on a data directory (embedded mode, tests). */
export interface ChdbClickHouseConfig extends ClientCommon {
  url?: undefined;
  dataDir: string;
  /** chDB has only `default` (the data dir is the database) */
  database?: string;
}

/** Which ClickHouse a client talks to: `url` set → a server, else chDB on `dataDir`. */
export type ClickHouseConfig = HttpClickHouseConfig | ChdbClickHouseConfig;

/** Thrown when the chDB engine cannot be opened on the requested directory. */
export class ChdbOpenError extends Error {
  override readonly name = 'ChdbOpenError';
  constructor(
    message: string,
    readonly dataDir: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

type ChdbConnectionModule = typeof import('chdb/connection');
type ClientConnection = NonNullable<NonNullable<Parameters<typeof createClient>[0]>['connection']>;
type ChdbRootModule = { drainPending(): Promise<void> };

// NOTE: chDB (≈540 MB native library) is loaded only when a chDB client is asked for, so an
// HTTP-mode process never maps it. createRequire keeps createClickHouse synchronous.
const require = createRequire(import.meta.url);
let chdbConnection: ChdbConnectionModule | undefined;
let chdbRoot: ChdbRootModule | undefined;
function loadChdb(): { conn: ChdbConnectionModule; root: ChdbRootModule } {
  try {
    chdbConnection ??= require('chdb/connection') as ChdbConnectionModule;
    chdbRoot ??= require('chdb') as ChdbRootModule;
  } catch (err) {
    // NOTE: the container image leaves chDB's native engine out (chdb then throws CHDB_PLATFORM):
    // there, a server is the only ClickHouse
    const code = (err as { code?: unknown }).code;
    if (code === 'MODULE_NOT_FOUND' || code === 'CHDB_PLATFORM') {
      throw new ConfigError('CLICKHOUSE_URL is not set and chDB (the embedded ClickHouse) is not installed here: set CLICKHOUSE_URL to http(s)://host:8123 of a ClickHouse server');
    }
    throw err;
  }
  return { conn: chdbConnection, root: chdbRoot };
}

/**
 * TRICKY: libchdb binds ONE data directory per process (measured on chdb 3.4.0):
 * - more clients on the same dir in one process are fine (connections share the engine);
 * - a client on a different dir while one is open is refused by chDB ("only one active
 *   data directory per process") — we rethrow naming both dirs;
 * - after every client on dir A is closed, a client on dir B opens fine (close() here also
 *   waits for chDB's deferred teardown, so a sequential re-open never races it);
 * - another PROCESS holding the dir fails ("Cannot lock file <dir>/status" on stderr, a bare
 *   "Failed to create connection" as the error) — we rethrow saying another Tracklane
 *   process is using it (see lockHolderPid).
 * We track open chDB dirs here only to word the errors; chDB itself enforces the rules.
 */
const openChdbDirs = new Map<string, number>();

export function createClickHouse(cfg: ClickHouseConfig): ClickHouseClient {
  if (cfg.url !== undefined) {
    if (!/^https?:\/\//i.test(cfg.url)) {
      // NOTE: never the URL itself: it may carry credentials (user:password@)
      throw new Error('the ClickHouse URL (CLICKHOUSE_URL) must be http(s)://host:port');
    }
    const https = /^https:\/\//i.test(cfg.url);
    if (cfg.caCert && !https) throw new Error('a ClickHouse CA (CLICKHOUSE_CA_FILE) needs an https:// URL');
    return createClient({
      url: cfg.url,
      database: cfg.database ?? 'default',
      username: cfg.username ?? 'default',
      password: cfg.password ?? '',
      request_timeout: cfg.requestTimeoutMs ?? 30_000,
      application: 'tracklane',
      // NOTE: without a CA the https agent verifies against the system's CAs, host name included
      ...(https && cfg.caCert ? { tls: { ca_cert: cfg.caCert } } : {}),
      ...(cfg.settings ? { clickhouse_settings: cfg.settings } : {}),
      ...clientLog(cfg.logger),
    });
  }
  return createChdbClient(cfg);
}

/** What @clickhouse/client calls on a connection (its `Connection` interface). */
const CONNECTION_METHODS = ['ping', 'query', 'insert', 'exec', 'command', 'close'] as const;

/**
 * chDB's connection as the client's Connection. chdb types it against @clickhouse/client-common
 * while the client bundles its own copy of those declarations, which TypeScript cannot relate;
 * the contract is the same, and checked here at run time instead of cast.
 */
function asClientConnection(c: unknown): ClientConnection {
  if (!isClientConnection(c)) throw new Error(`chdb's connection lacks one of ${CONNECTION_METHODS.join(', ')}: chdb and @clickhouse/client versions do not match`);
  return c;
}

function isClientConnection(c: unknown): c is ClientConnection {
  return typeof c === 'object' && c !== null && CONNECTION_METHODS.every((m) => typeof Reflect.get(c, m) === 'function');
}

/** A raw JSONCompactEachRow insert: the rows already encoded, one JSON array per line. */
export interface EncodedInsert {
  table: string;
  columns: readonly string[];
  /** rows as JSON arrays joined by '\n' (what @clickhouse/client sends for JSONCompactEachRow) */
  body: Buffer;
  settings?: Record<string, string | number>;
}

type EncodedInserter = (p: EncodedInsert) => Promise<void>;

/** chDB clients → their connection's raw insert (see encodedInserter). */
const encodedInserters = new WeakMap<ClickHouseClient, EncodedInserter>();

/**
 * The insert of pre-encoded rows, when `client` is a chDB one; null for a ClickHouse server.
 * NOTE: @clickhouse/client on chDB encodes rows one by one, joins them into one string, and the
 * connection prepends the INSERT and hands the whole text to the engine as SQL (a UTF-16 → UTF-8
 * copy on the event loop, then the engine parses the data inline). chDB's raw insert takes the
 * bytes as they are, off the event loop (in the e2e bench's profile the string copy alone was 5 %
 * of the event loop, the client's row encoding 9 %). Errors are ClickHouseErrors, with the engine's code,
 * exactly as on the client's path (the sink decides retries by the code).
 */
export function encodedInserter(client: ClickHouseClient): EncodedInserter | null {
  return encodedInserters.get(client) ?? null;
}

function createChdbClient(cfg: ChdbClickHouseConfig): ClickHouseClient {
  if (cfg.database !== undefined && cfg.database !== 'default') {
    throw new Error(
      `chDB mode supports only the "default" database (the data dir is the database); got ${JSON.stringify(cfg.database)}`,
    );
  }
  const dir = resolve(cfg.dataDir);
  mkdirSync(dir, { recursive: true });
  const { conn, root } = loadChdb();
  let connection: ReturnType<ChdbConnectionModule['createChdbConnection']>;
  try {
    connection = conn.createChdbConnection({ path: dir });
  } catch (err) {
    throw explainChdbOpenError(err, dir);
  }
  openChdbDirs.set(dir, (openChdbDirs.get(dir) ?? 0) + 1);
  const client = createClient({
    connection: asClientConnection(connection),
    request_timeout: cfg.requestTimeoutMs ?? 30_000,
    ...clientLog(cfg.logger),
  });
  let closed = false;
  const timeout = cfg.requestTimeoutMs ?? 30_000;
  encodedInserters.set(client, async (p) => {
    if (closed) throw new Error('the ClickHouse client is closed');
    try {
      await connection.chdb.rawInsert({
        table: p.table,
        columns: p.columns,
        format: 'JSONCompactEachRow',
        values: p.body,
        timeout,
        ...(p.settings ? { settings: p.settings } : {}),
      });
    } catch (err) {
      // NOTE: as chdb's own connection does for client.insert: "Code: N. DB::Exception: … (TYPE)" → ClickHouseError
      const mapped = parseError(err instanceof Error && err.message ? err.message : String(err));
      if (mapped !== err) mapped.cause = err;
      throw mapped;
    }
  });
  const closeClient = client.close.bind(client);
  client.close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    try {
      await closeClient();
    } finally {
      const n = (openChdbDirs.get(dir) ?? 1) - 1;
      if (n <= 0) openChdbDirs.delete(dir);
      else openChdbDirs.set(dir, n);
      // NOTE: close() returns before chDB has released a connection still used by an
      // operation; draining makes "close A, then open B" safe in one process.
      await root.drainPending();
    }
  };
  return client;
}

/** Routes @clickhouse/client's log lines to our pino logger (warn and above). */
function clientLog(logger: Logger | undefined): { log?: { LoggerClass: new () => ClientLogger; level: ClickHouseLogLevel } } {
  if (!logger) return {};
  const log = logger.child({ module: 'clickhouse-client' });
  class PinoBridge implements ClientLogger {
    trace(p: LogParams): void {
      log.trace({ args: p.args }, p.message);
    }
    debug(p: LogParams): void {
      log.debug({ args: p.args }, p.message);
    }
    info(p: LogParams): void {
      log.info({ args: p.args }, p.message);
    }
    warn(p: WarnLogParams): void {
      log.warn({ args: p.args, ...(p.err ? safeErrorFields(p.err) : {}) }, p.message);
    }
    error(p: ErrorLogParams): void {
      log.error({ args: p.args, ...safeErrorFields(p.err) }, p.message);
    }
  }
  return { log: { LoggerClass: PinoBridge, level: ClickHouseLogLevel.WARN } };
}

function explainChdbOpenError(err: unknown, dir: string): Error {
  const msg = err instanceof Error ? err.message : String(err);
  const holder = lockHolderPid(dir);
  if (/Cannot lock file/i.test(msg) || holder !== null) {
    return new ChdbOpenError(
      `ClickHouse data dir ${dir} is in use by another process (probably another Tracklane process` +
        `${holder !== null ? `, pid ${holder}` : ''}): chDB allows one process per data dir. ` +
        `Stop that process or use another data dir.`,
      dir,
      { cause: err },
    );
  }
  if (/only one active data directory per process/i.test(msg)) {
    const other = [...openChdbDirs.keys()].find((d) => d !== dir);
    return new ChdbOpenError(
      `Cannot open chDB on ${dir}: this process already has chDB open on ${other ?? 'another data dir'}. ` +
        `chDB runs one engine per process; close every client on that dir first, or reuse it.`,
      dir,
      { cause: err },
    );
  }
  return new ChdbOpenError(`Cannot open chDB on ${dir}: ${msg} (the engine prints its reason on stderr)`, dir, { cause: err });
}

/**
 * TRICKY: when another process holds the dir, chDB throws only "Failed to create connection"
 * and prints "Cannot lock file <dir>/status" to stderr. The engine writes its PID into
 * <dir>/status while it runs (and removes the file on a clean close), so a live PID there
 * that is not ours identifies the holder. A stale file after a crash names a dead PID.
 */
function lockHolderPid(dir: string): number | null {
  let text: string;
  try {
    text = readFileSync(join(dir, 'status'), 'utf8');
  } catch {
    return null;
  }
  const pid = Number(/^PID:\s*(\d+)/m.exec(text)?.[1]);
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return null;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (e) {
    // EPERM: alive but not ours to signal
    return (e as NodeJS.ErrnoException).code === 'EPERM' ? pid : null;
  }
}

/**
 * 64-bit integers arrive as JSON numbers from chDB and as strings from the HTTP server
 * (output_format_json_quote_64bit_integers); read every count through this.
 */
export function toNumber(x: unknown): number {
  if (typeof x === 'number') return x;
  if (typeof x === 'bigint') return Number(x);
  if (typeof x === 'string' && x.trim() !== '') {
    const n = Number(x);
    if (!Number.isNaN(n)) return n;
  }
  throw new TypeError(`expected a number or numeric string, got ${JSON.stringify(x)}`);
}
