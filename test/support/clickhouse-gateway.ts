// Test-infrastructure stand-in for a ClickHouse server: one process owns a chDB engine on a data
// dir and serves the subset of the ClickHouse HTTP interface that @clickhouse/client 1.23 uses —
// users with passwords (516 AUTHENTICATION_FAILED otherwise), HTTP sessions (session_id, for
// temporary tables) and HTTPS when given a certificate.
import { randomUUID, timingSafeEqual } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { brotliDecompress, deflate, gunzip, gzip, inflate } from 'node:zlib';
import { drainPending, Session, type ChdbResult, type RawInsertFormat } from 'chdb';
import { splitStatements } from '../../libs/clickhouse/migrate.js';
import type { Logger } from '../../libs/core/logger.js';

export interface ClickHouseGatewayOptions {
  /** 0 → an ephemeral port (the real one is reported back) */
  port: number;
  host?: string;
  dataDir: string;
  logger?: Logger;
  /** statements run in parallel on the engine (default 2: one per core on the CI box) */
  concurrency?: number;
  /** requests waiting for the engine beyond which new ones get 503 (default 256) */
  maxQueued?: number;
  /** request body limit, compressed and decompressed (default 100 MiB) */
  maxBodyBytes?: number;
  /**
   * user → password. Default: a fresh server's `default` user with an empty password. A request
   * names its user by X-ClickHouse-User/X-ClickHouse-Key, HTTP basic auth or the user/password
   * URL parameters (no credentials: `default`, ""), as ClickHouse accepts them.
   */
  users?: Readonly<Record<string, string>>;
  /** PEM certificate (chain) and key: serve HTTPS instead of HTTP */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** sees every request the gateway receives, pings and refused ones included (tests) */
  onRequest?: (request: CapturedRequest) => void;
  /**
   * Tests: asked before each request of an HTTP session runs (after authentication), with
   * whether another request of that session is running; true answers it SESSION_IS_LOCKED (373)
   * without running it — as a server may even to requests sent one after another on a session
   * (ClickHouse issues #4003, #35948). A busy session is refused either way.
   */
  onSessionRequest?: (request: SessionRequest) => boolean;
}

/** A request of an HTTP session, as onSessionRequest sees it. */
export interface SessionRequest {
  sessionId: string;
  /** as CapturedRequest.queryText: the statement as a server would log it */
  queryText: string;
  /** another request of the session is running: the gateway refuses this one */
  busy: boolean;
}

/** One request as the gateway received it. */
export interface CapturedRequest {
  method: string;
  /** path and query string, as sent */
  url: string;
  /** the user it authenticated as; undefined when refused or not authenticated (pings) */
  user?: string;
  /**
   * The statement's text as a server would log it (system.query_log): the `query` parameter,
   * plus the body unless the parameter is an INSERT whose data the body is.
   */
  queryText: string;
  /** the decoded body when it is an INSERT's data, else empty */
  insertData: Buffer;
}

export interface ClickHouseGateway {
  url: string;
  port: number;
  /** Stops accepting, lets in-flight statements finish, then closes the engine. Idempotent. */
  close(): Promise<void>;
}

const DEFAULT_MAX_BODY = 100 * 1024 * 1024;

/**
 * Settings that belong to the HTTP layer of a real server (or to auth/sessions), not to the
 * engine: the client sends some of them on every request (`enable_http_compression`, …).
 * They are honoured here where it matters (compression) and never reach chDB, so a request
 * carrying only these still runs on a pooled connection.
 */
const HTTP_ONLY_SETTINGS = new Set([
  'wait_end_of_query',
  'send_progress_in_http_headers',
  'http_headers_progress_interval_ms',
  'http_send_progress_interval_ms',
  'http_response_buffer_size',
  'buffer_size',
  'enable_http_compression',
  'http_zlib_compression_level',
  'http_native_compression_disable_checksumming_on_decompress',
  'http_write_exception_in_output_format',
  'cancel_http_readonly_queries_on_client_close',
  'decompress',
  'compress',
  'add_http_cors_header',
  'user',
  'password',
  'quota_key',
  'role',
  'session_timeout',
  'session_check',
  'client_protocol_version',
]);

/**
 * What every connection runs with, so JSON output matches a real server rather than
 * clickhouse-local: a server quotes 64-bit integers in JSON formats by default, chDB does not,
 * and the code that must accept strings (toNumber) is only exercised if we quote too.
 */
const BASELINE_SETTINGS: ReadonlyMap<string, string> = new Map([['output_format_json_quote_64bit_integers', '1']]);

/** ClickHouse's exception-code → HTTP-status mapping (HTTPHandler), for the codes we meet. */
const STATUS_BY_ERROR: Record<string, number> = {
  SYNTAX_ERROR: 400,
  CANNOT_PARSE_TEXT: 400,
  CANNOT_PARSE_ESCAPE_SEQUENCE: 400,
  CANNOT_PARSE_QUOTED_STRING: 400,
  CANNOT_PARSE_DATE: 400,
  CANNOT_PARSE_DATETIME: 400,
  CANNOT_PARSE_NUMBER: 400,
  CANNOT_PARSE_UUID: 400,
  CANNOT_PARSE_IPV4: 400,
  CANNOT_PARSE_IPV6: 400,
  CANNOT_PARSE_INPUT_ASSERTION_FAILED: 400,
  CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING: 400,
  DUPLICATE_COLUMN: 400,
  ILLEGAL_COLUMN: 400,
  THERE_IS_NO_COLUMN: 400,
  UNKNOWN_ELEMENT_IN_AST: 400,
  UNKNOWN_TYPE_OF_AST_NODE: 400,
  UNEXPECTED_AST_STRUCTURE: 400,
  TOO_DEEP_AST: 400,
  TOO_BIG_AST: 400,
  INCORRECT_DATA: 400,
  TYPE_MISMATCH: 400,
  VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE: 400,
  BAD_ARGUMENTS: 400,
  CANNOT_DECOMPRESS: 400,
  UNKNOWN_TABLE: 404,
  UNKNOWN_FUNCTION: 404,
  UNKNOWN_IDENTIFIER: 404,
  UNKNOWN_TYPE: 404,
  UNKNOWN_STORAGE: 404,
  UNKNOWN_DATABASE: 404,
  UNKNOWN_SETTING: 404,
  UNKNOWN_DIRECTION_OF_SORTING: 404,
  UNKNOWN_AGGREGATE_FUNCTION: 404,
  UNKNOWN_FORMAT: 404,
  UNKNOWN_DATABASE_ENGINE: 404,
  UNKNOWN_TYPE_OF_QUERY: 404,
  READONLY: 403,
  ACCESS_DENIED: 403,
  AUTHENTICATION_FAILED: 403,
  TIMEOUT_EXCEEDED: 408,
  HTTP_LENGTH_REQUIRED: 411,
  QUERY_IS_TOO_LARGE: 413,
  NOT_IMPLEMENTED: 501,
  TOO_MANY_SIMULTANEOUS_QUERIES: 503,
};

/** A failure we raise ourselves, worded and coded like the server's own. */
class GatewayError extends Error {
  constructor(
    readonly code: number,
    readonly type: string,
    message: string,
  ) {
    super(`Code: ${code}. DB::Exception: ${message}. (${type})`);
  }
}

/** Formats chDB's raw-insert fast path accepts (text, line-oriented or CSV). */
const RAW_INSERT_FORMATS = new Set<RawInsertFormat>([
  'JSONEachRow',
  'JSONCompactEachRow',
  'CSV',
  'CSVWithNames',
  'TSV',
  'TabSeparated',
  'TSVWithNames',
  'TabSeparatedWithNames',
]);
const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
// `INSERT INTO t [(a, b)] FORMAT X` exactly as the client builds it (getInsertQuery).
const SIMPLE_INSERT = /^INSERT\s+INTO\s+([A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)?)\s*(?:\(([^()]*)\))?\s+FORMAT\s+([A-Za-z]+)\s*$/i;
const TRAILING_FORMAT = /\bFORMAT\s+([A-Za-z0-9_]+)\s*;?\s*$/i;

interface RequestPlan {
  queryId: string;
  /** session_id: the request runs on that session's connection (temporary tables live there) */
  session: { id: string; timeoutSec: number; check: boolean } | undefined;
  /** SQL from the `query` parameter (may be empty) */
  queryText: string;
  body: Buffer;
  database: string;
  settings: Map<string, string>;
  params: Map<string, string>;
  defaultFormat: string | undefined;
  compressResponse: 'gzip' | 'deflate' | undefined;
}

interface Outcome {
  body: Buffer;
  format: string;
  readRows: number;
  readBytes: number;
  writtenRows: number;
  writtenBytes: number;
  elapsedSec: number;
}

/**
 * The chDB engine: a fixed pool of CLEAN connections plus throwaway ones.
 *
 * TRICKY: chDB applies settings (and `SET param_x`, `USE db`) per connection for the rest of
 * its life, while every HTTP request must start from the server defaults. Measured here
 * (chdb 3.4.0, 2 cores): `SELECT 1` on a pooled connection ~0.8 ms; opening another
 * connection on the already-bound dir, running it and closing ~3 ms (over HTTP, under load:
 * 5.1 vs 7.7 ms a round trip). So:
 * - requests with no engine settings, params or database (most queries, and every insert —
 *   whose settings go into the statement's own `SETTINGS` clause, per-query by definition)
 *   run on pooled connections that never see a SET and so stay clean;
 * - anything else runs on a fresh connection that is SET up for that one request and closed.
 * Connections run statements in parallel (one 0.67 s scan alone; two on two connections
 * 0.92 s; two on one connection 1.5 s, i.e. serialised), so the pool has one connection per
 * permit and the permits bound the engine's parallelism; a bounded queue holds the rest.
 */
/** An HTTP session's own connection: its temporary tables and SETs live there. */
interface OpenSession {
  conn: Session;
  user: string;
  busy: boolean;
  timer: NodeJS.Timeout | undefined;
}

class Engine {
  private readonly idle: Session[] = [];
  private readonly sessions = new Map<string, OpenSession>();
  private readonly waiters: (() => void)[] = [];
  private active = 0;
  private closed = false;
  private readonly baselineSql: string;

  private constructor(
    private readonly dir: string,
    private readonly concurrency: number,
    private readonly maxQueued: number,
  ) {
    this.baselineSql = setStatement(BASELINE_SETTINGS, new Map());
  }

  static async open(dir: string, concurrency: number, maxQueued: number): Promise<Engine> {
    const engine = new Engine(dir, concurrency, maxQueued);
    try {
      for (let i = 0; i < concurrency; i++) {
        const s = new Session(dir);
        engine.idle.push(s);
        await s.queryAsync(engine.baselineSql);
      }
    } catch (err) {
      await engine.close();
      throw new Error(
        `clickhouse-gateway: cannot open chDB on ${dir}: ${errorMessage(err)} ` +
          `(chDB allows one process per data dir: is another gateway or Tracklane process using it?)`,
        { cause: err },
      );
    }
    return engine;
  }

  /**
   * Runs `job` on a clean pooled connection, or on a fresh one SET up with `settings` — or, for a
   * request of an HTTP session, on the session's connection.
   * TRICKY: on a session the request's settings and params are SET on its connection and stay
   * there (a server applies URL settings to that request only); Tracklane's session requests
   * carry none but the cluster mode's insert setting, the same on every request.
   */
  async run<T>(
    fresh: { settings: Map<string, string>; params: Map<string, string>; database: string } | null,
    job: (s: Session) => Promise<T>,
    session?: Session,
  ): Promise<T> {
    await this.acquire();
    try {
      if (session) {
        if (fresh && (fresh.settings.size > 0 || fresh.params.size > 0)) await session.queryAsync(setStatement(fresh.settings, fresh.params));
        if (fresh && fresh.database !== 'default') await session.queryAsync(`USE ${quoteIdent(fresh.database)}`);
        return await job(session);
      }
      if (!fresh) {
        const s = this.idle.pop();
        if (!s) throw new Error('clickhouse-gateway: no idle connection while holding a permit');
        try {
          return await job(s);
        } finally {
          this.idle.push(s);
        }
      }
      const s = new Session(this.dir);
      try {
        await s.queryAsync(setStatement(new Map([...BASELINE_SETTINGS, ...fresh.settings]), fresh.params));
        if (fresh.database !== 'default') await s.queryAsync(`USE ${quoteIdent(fresh.database)}`);
        return await job(s);
      } finally {
        // NOTE: only closed after its statement settled: closing a busy chDB connection aborts
        // the whole engine.
        s.close();
      }
    } finally {
      this.release();
    }
  }

  /**
   * The connection of HTTP session `id`, created on first use (unless `check`: SESSION_NOT_FOUND,
   * as a server answers session_check=1). A request while another of the same session runs is
   * refused with SESSION_IS_LOCKED, like a server's.
   */
  async enterSession(id: string, user: string, check: boolean): Promise<OpenSession> {
    if (this.closed) throw new GatewayError(202, 'TOO_MANY_SIMULTANEOUS_QUERIES', 'The gateway is shutting down');
    const found = this.sessions.get(id);
    // NOTE: a session belongs to the user who opened it; another user does not see it
    if ((found && found.user !== user) || (!found && check)) throw new GatewayError(372, 'SESSION_NOT_FOUND', `Session ${id} not found`);
    if (found) {
      if (found.busy) throw new GatewayError(373, 'SESSION_IS_LOCKED', `Session ${id} is locked by a concurrent client`);
      found.busy = true;
      if (found.timer) clearTimeout(found.timer);
      found.timer = undefined;
      return found;
    }
    const open: OpenSession = { conn: new Session(this.dir), user, busy: true, timer: undefined };
    this.sessions.set(id, open);
    try {
      await open.conn.queryAsync(this.baselineSql);
    } catch (err) {
      this.sessions.delete(id);
      open.conn.close();
      throw err;
    }
    return open;
  }

  /** Whether a request of session `id` is running now. */
  sessionBusy(id: string): boolean {
    return this.sessions.get(id)?.busy === true;
  }

  /** The request of a session is done: it expires `timeoutSec` after its last request. */
  leaveSession(id: string, open: OpenSession, timeoutSec: number): void {
    open.busy = false;
    if (this.closed) return;
    open.timer = setTimeout(() => {
      if (open.busy || this.sessions.get(id) !== open) return;
      this.sessions.delete(id);
      open.conn.close();
    }, timeoutSec * 1000);
    open.timer.unref();
  }

  private async acquire(): Promise<void> {
    if (this.closed) throw new GatewayError(202, 'TOO_MANY_SIMULTANEOUS_QUERIES', 'The gateway is shutting down');
    if (this.active < this.concurrency) {
      this.active++;
      return;
    }
    if (this.waiters.length >= this.maxQueued) {
      throw new GatewayError(
        202,
        'TOO_MANY_SIMULTANEOUS_QUERIES',
        `Too many simultaneous queries: ${this.active} running and ${this.waiters.length} queued`,
      );
    }
    // the releasing job hands its permit over, so `active` is unchanged
    await new Promise<void>((r) => this.waiters.push(r));
  }

  private release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.active--;
  }

  /** Waits for running and queued statements (the caller stopped intake), then closes. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    while (this.active > 0 || [...this.sessions.values()].some((o) => o.busy)) await new Promise((r) => setTimeout(r, 10));
    for (const s of this.idle.splice(0)) s.close();
    for (const open of this.sessions.values()) {
      if (open.timer) clearTimeout(open.timer);
      open.conn.close();
    }
    this.sessions.clear();
    await drainPending();
  }
}

export async function startClickHouseGateway(opts: ClickHouseGatewayOptions): Promise<ClickHouseGateway> {
  const host = opts.host ?? '127.0.0.1';
  const maxBody = opts.maxBodyBytes ?? DEFAULT_MAX_BODY;
  const log = opts.logger?.child({ module: 'clickhouse-gateway' });
  const dir = resolve(opts.dataDir);
  mkdirSync(dir, { recursive: true });
  const engine = await Engine.open(dir, opts.concurrency ?? 2, opts.maxQueued ?? 256);
  let version = 'unknown';
  let timezone = 'UTC';
  try {
    const info = await engine.run(null, (s) => s.queryAsync('SELECT version(), timezone()', { format: 'TabSeparated' }));
    [version = 'unknown', timezone = 'UTC'] = info.text().trim().split('\t');
  } catch (err) {
    await engine.close();
    throw err;
  }

  const users: Readonly<Record<string, string>> = opts.users ?? { default: '' };
  const inflight = new Set<Promise<void>>();
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const p = handle(req, res).catch((err: unknown) => {
      log?.error({ err: errorMessage(err) }, 'clickhouse-gateway: request handler failed');
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
  };
  // NOTE: ClickHouse accepts URLs up to http_max_uri_size (1 MiB); query parameters travel in
  // the URL, so Node's 16 KB header limit would cut them off.
  const server = opts.tls
    ? createHttpsServer({ maxHeaderSize: 1024 * 1024, cert: opts.tls.cert, key: opts.tls.key }, onRequest)
    : createServer({ maxHeaderSize: 1024 * 1024 }, onRequest);
  // ClickHouse's own keep-alive timeout; the client re-uses sockets for up to 2.5 s idle.
  server.keepAliveTimeout = 10_000;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = process.hrtime.bigint();
    const url = new URL(req.url ?? '/', 'http://gateway');
    const queryId = url.searchParams.get('query_id') || randomUUID();
    res.setHeader('X-ClickHouse-Server-Display-Name', 'clickhouse-gateway');
    res.setHeader('X-ClickHouse-Query-Id', queryId);
    res.setHeader('X-ClickHouse-Timezone', timezone);

    let captured = false;
    const capture = (user?: string, plan?: RequestPlan): void => {
      if (captured || !opts.onRequest) return;
      captured = true;
      opts.onRequest({ method: req.method ?? '', url: req.url ?? '/', ...(user !== undefined ? { user } : {}), ...capturedText(plan) });
    };
    // NOTE: like a server's, the health endpoints answer without credentials
    const isPing = url.pathname === '/ping' || url.pathname === '/replicas_status';
    if (isPing || (url.pathname === '/' && req.method === 'GET' && !url.searchParams.has('query'))) {
      capture();
      req.resume();
      res.writeHead(200, { 'Content-Type': 'text/html; charset=UTF-8', 'Content-Length': '4' }).end('Ok.\n');
      return;
    }
    try {
      const user = authenticate(req, url, users);
      if (url.pathname !== '/') {
        throw new GatewayError(48, 'NOT_IMPLEMENTED', `There is no handle ${url.pathname} in the test gateway`);
      }
      if (req.method !== 'POST' && req.method !== 'GET') {
        throw new GatewayError(48, 'NOT_IMPLEMENTED', `HTTP method ${req.method ?? '?'} is not supported`);
      }
      const plan = await planRequest(req, url, queryId, maxBody);
      capture(user, plan);
      let outcome: Outcome;
      if (plan.session) {
        const { id } = plan.session;
        if (opts.onSessionRequest?.({ sessionId: id, queryText: capturedText(plan).queryText, busy: engine.sessionBusy(id) })) {
          throw new GatewayError(373, 'SESSION_IS_LOCKED', `Session ${id} is locked by a concurrent client`);
        }
        const open = await engine.enterSession(plan.session.id, user, plan.session.check);
        try {
          outcome = await execute(engine, plan, open.conn);
        } finally {
          engine.leaveSession(plan.session.id, open, plan.session.timeoutSec);
        }
      } else {
        outcome = await execute(engine, plan);
      }
      const elapsedNs = String(process.hrtime.bigint() - started);
      let body = outcome.body;
      const headers: Record<string, string> = {
        'Content-Type': contentTypeFor(outcome.format),
        'X-ClickHouse-Format': outcome.format,
        'X-ClickHouse-Summary': JSON.stringify({
          read_rows: String(outcome.readRows),
          read_bytes: String(outcome.readBytes),
          written_rows: String(outcome.writtenRows),
          written_bytes: String(outcome.writtenBytes),
          total_rows_to_read: String(outcome.readRows),
          result_rows: String(resultRows(outcome.format, body)),
          result_bytes: String(body.length),
          elapsed_ns: outcome.elapsedSec > 0 ? String(Math.round(outcome.elapsedSec * 1e9)) : elapsedNs,
        }),
      };
      if (plan.compressResponse && body.length > 0) {
        body = plan.compressResponse === 'gzip' ? await gzipAsync(body, { level: 3 }) : await deflateAsync(body, { level: 3 });
        headers['Content-Encoding'] = plan.compressResponse;
      }
      headers['Content-Length'] = String(body.length);
      res.writeHead(200, headers).end(body);
      log?.debug({ queryId, ms: Number(process.hrtime.bigint() - started) / 1e6, bytes: body.length }, 'clickhouse-gateway: ok');
    } catch (err) {
      capture();
      const { status, code, text } = describeError(err, version);
      // statement errors are the client's business; anything the engine did not word is ours
      if (code === 1001) log?.warn({ queryId, err: errorMessage(err) }, 'clickhouse-gateway: unexpected failure');
      else log?.debug({ queryId, code, status }, 'clickhouse-gateway: query failed');
      const tooLarge = status === 413;
      res.writeHead(status, {
        'Content-Type': 'text/plain; charset=UTF-8',
        'Content-Length': String(Buffer.byteLength(text)),
        'X-ClickHouse-Exception-Code': String(code),
        // NOTE: an over-sized body is not read to its end; closing is the only way out.
        ...(tooLarge ? { Connection: 'close' } : {}),
      });
      res.end(text);
      if (tooLarge) res.on('finish', () => req.destroy());
    }
  }

  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(opts.port, host, () => {
      server.off('error', fail);
      ok();
    });
  }).catch(async (err: unknown) => {
    await engine.close();
    throw err;
  });
  const port = (server.address() as AddressInfo).port;
  const url = `${opts.tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  log?.debug({ url, dataDir: dir, version }, 'clickhouse-gateway listening');

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      const serverClosed = new Promise<void>((r) => server.close(() => r()));
      server.closeIdleConnections();
      await Promise.allSettled([...inflight]);
      server.closeAllConnections();
      await serverClosed;
      await engine.close();
    })();
    return closing;
  };
  return { url, port, close };
}

/** Reads and classifies one request: SQL text, body, settings, params. */
async function planRequest(req: IncomingMessage, url: URL, queryId: string, maxBody: number): Promise<RequestPlan> {
  const settings = new Map<string, string>();
  const params = new Map<string, string>();
  let database = headerValue(req, 'x-clickhouse-database') ?? 'default';
  let defaultFormat = headerValue(req, 'x-clickhouse-format');
  let queryText = '';
  let httpCompression = false;
  let sessionId: string | undefined;
  let sessionTimeout = 60;
  let sessionCheck = false;
  for (const [key, value] of url.searchParams) {
    if (key === 'query') queryText = value;
    else if (key === 'query_id') continue;
    else if (key === 'database') database = value || 'default';
    else if (key === 'default_format') defaultFormat = value;
    else if (key === 'session_id') sessionId = value || undefined;
    else if (key === 'session_timeout') {
      sessionTimeout = Number(value);
      if (!Number.isInteger(sessionTimeout) || sessionTimeout < 1 || sessionTimeout > 3_600) {
        throw new GatewayError(36, 'BAD_ARGUMENTS', 'session_timeout must be a number of seconds between 1 and 3600');
      }
    } else if (key === 'session_check') sessionCheck = value === '1' || value === 'true';
    else if (key.startsWith('param_')) {
      const name = key.slice('param_'.length);
      if (!IDENT.test(name)) throw new GatewayError(36, 'BAD_ARGUMENTS', `Invalid query parameter name ${JSON.stringify(name)}`);
      params.set(name, value);
    } else if (key === 'enable_http_compression') httpCompression = value === '1' || value === 'true';
    else if (HTTP_ONLY_SETTINGS.has(key)) continue;
    else if (!IDENT.test(key)) throw new GatewayError(115, 'UNKNOWN_SETTING', `Unknown setting ${JSON.stringify(key)}`);
    else settings.set(key, value);
  }
  if (!IDENT.test(database)) throw new GatewayError(81, 'UNKNOWN_DATABASE', `Database ${database} does not exist`);
  if (/^multipart\//i.test(req.headers['content-type'] ?? '')) {
    throw new GatewayError(48, 'NOT_IMPLEMENTED', 'multipart/form-data query parameters are not supported by the test gateway; use URL parameters');
  }
  const raw = await readBody(req, maxBody);
  const body = await decodeBody(raw, headerValue(req, 'content-encoding'), maxBody);
  const accept = headerValue(req, 'accept-encoding') ?? '';
  const compressResponse = !httpCompression ? undefined : /\bgzip\b/i.test(accept) ? 'gzip' : /\bdeflate\b/i.test(accept) ? 'deflate' : undefined;
  const session = sessionId !== undefined ? { id: sessionId, timeoutSec: sessionTimeout, check: sessionCheck } : undefined;
  return { queryId, session, queryText, body, database, settings, params, defaultFormat, compressResponse };
}

/** The credentials a request names (none: ClickHouse's `default` user without a password). */
function credentials(req: IncomingMessage, url: URL): { user: string; password: string } {
  const headerUser = headerValue(req, 'x-clickhouse-user');
  if (headerUser !== undefined) return { user: headerUser, password: headerValue(req, 'x-clickhouse-key') ?? '' };
  const auth = headerValue(req, 'authorization');
  if (auth !== undefined && /^basic\s+/i.test(auth)) {
    const decoded = Buffer.from(auth.replace(/^basic\s+/i, ''), 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    return i < 0 ? { user: decoded, password: '' } : { user: decoded.slice(0, i), password: decoded.slice(i + 1) };
  }
  const user = url.searchParams.get('user');
  if (user !== null) return { user, password: url.searchParams.get('password') ?? '' };
  return { user: 'default', password: '' };
}

/** The user a request authenticates as; AUTHENTICATION_FAILED (HTTP 403) as a server words it otherwise. */
function authenticate(req: IncomingMessage, url: URL, users: Readonly<Record<string, string>>): string {
  const { user, password } = credentials(req, url);
  const expected = Object.hasOwn(users, user) ? users[user] : undefined;
  const a = Buffer.from(password);
  const b = Buffer.from(expected ?? '');
  if (expected === undefined || a.length !== b.length || !timingSafeEqual(a, b)) {
    throw new GatewayError(516, 'AUTHENTICATION_FAILED', `${user}: Authentication failed: password is incorrect, or there is no user with such name`);
  }
  return user;
}

/** What a server would log as the statement's text, and an INSERT's data apart from it. */
function capturedText(plan: RequestPlan | undefined): { queryText: string; insertData: Buffer } {
  if (!plan) return { queryText: '', insertData: Buffer.alloc(0) };
  if (leadingKeyword(plan.queryText) === 'INSERT' && /\bFORMAT\s+[A-Za-z]+\s*$/i.test(plan.queryText)) {
    return { queryText: plan.queryText, insertData: plan.body };
  }
  const body = plan.body.toString('utf8');
  return { queryText: plan.queryText && body ? `${plan.queryText}\n${body}` : plan.queryText || body, insertData: Buffer.alloc(0) };
}

async function execute(engine: Engine, plan: RequestPlan, session?: Session): Promise<Outcome> {
  const fastInsert = plan.database === 'default' && plan.params.size === 0 ? matchSimpleInsert(plan.queryText) : null;
  if (fastInsert) {
    const format = plan.defaultFormat ?? 'TabSeparated';
    if (isBlank(plan.body)) {
      // a server accepts an INSERT with no rows as a no-op; chDB would say "No data to insert"
      return { body: Buffer.alloc(0), format, readRows: 0, readBytes: 0, writtenRows: 0, writtenBytes: 0, elapsedSec: 0 };
    }
    // The payload Buffer goes to chDB's parser as is; settings become the INSERT's own SETTINGS
    // clause, which applies to this statement only.
    const summary = await engine.run(
      null,
      (s) =>
        s.insert({
          table: fastInsert.table,
          values: plan.body,
          format: fastInsert.format,
          ...(fastInsert.columns ? { columns: fastInsert.columns } : {}),
          ...(plan.settings.size > 0 ? { settings: settingsForClause(plan.settings) } : {}),
        }),
      session,
    );
    return {
      body: Buffer.alloc(0),
      format,
      readRows: summary.rowsWritten,
      readBytes: summary.bytesSent,
      writtenRows: summary.rowsWritten,
      writtenBytes: summary.bytesWritten,
      elapsedSec: summary.elapsed,
    };
  }

  // ClickHouse semantics: the body is appended to the `query` parameter after a newline.
  const bodyText = plan.body.length > 0 ? plan.body.toString('utf8') : '';
  const sql = plan.queryText && bodyText ? `${plan.queryText}\n${bodyText}` : plan.queryText || bodyText;
  if (sql.trim() === '') throw new GatewayError(62, 'SYNTAX_ERROR', 'Empty query');
  const head = leadingKeyword(sql);
  if (head !== 'INSERT') assertSingleStatement(sql);
  const format = head === 'INSERT' ? (plan.defaultFormat ?? 'TabSeparated') : (TRAILING_FORMAT.exec(sql.slice(-256))?.[1] ?? plan.defaultFormat ?? 'TabSeparated');
  const needsFresh = plan.settings.size > 0 || plan.params.size > 0 || plan.database !== 'default' || head === 'SET' || head === 'USE';
  const fileClause = mentionsClientFileClause(sql, head);
  const result: ChdbResult = await engine.run(
    needsFresh ? { settings: plan.settings, params: plan.params, database: plan.database } : null,
    async (s) => {
      if (fileClause) await refuseClientFileClauses(s, sql, head);
      // NOTE: chdb's queryAsync treats the exact name 'arrow' as "SET …; <sql>" on the connection
      return s.queryAsync(sql, { format: format === 'arrow' ? 'Arrow' : format });
    },
    session,
  );
  const bytes = result.bytes();
  return {
    body: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
    format,
    readRows: result.rowsRead,
    readBytes: result.bytesRead,
    writtenRows: 0,
    writtenBytes: 0,
    elapsedSec: result.elapsed,
  };
}

function matchSimpleInsert(queryText: string): { table: string; columns?: string[]; format: RawInsertFormat } | null {
  const m = SIMPLE_INSERT.exec(queryText.trim());
  if (!m) return null;
  const [, table = '', cols, fmt = ''] = m;
  const format = [...RAW_INSERT_FORMATS].find((f) => f.toLowerCase() === fmt.toLowerCase());
  if (!format) return null;
  if (cols === undefined) return { table, format };
  const columns = cols.split(',').map((c) => c.trim());
  // anything beyond plain names (backquotes, `* EXCEPT`) takes the general path
  if (columns.length === 0 || !columns.every((c) => IDENT.test(c))) return null;
  return { table, columns, format };
}

/**
 * TRICKY: INTO OUTFILE and INSERT … FROM INFILE are client-side clauses: a server refuses them
 * over HTTP (INTO_OUTFILE_NOT_ALLOWED; "Query has infile and was send directly to server"),
 * while chDB — clickhouse-local — writes or reads the file on this host. Only statements that
 * mention the keyword are parsed (EXPLAIN AST on the same connection, so its settings and params
 * apply); the engine's parse decides, not the text.
 */
function mentionsClientFileClause(sql: string, head: string): boolean {
  if (head === 'INSERT') return /\bINFILE\b/i.test(sql.slice(0, 4096)) && sql.length <= 64 * 1024;
  return /\bOUTFILE\b/i.test(sql);
}

async function refuseClientFileClauses(s: Session, sql: string, head: string): Promise<void> {
  const dump = (await s.queryAsync(`EXPLAIN AST ${sql}`, { format: 'TabSeparatedRaw' })).text().split('\n');
  // the file name (and its compression) are Literal children of the statement's root — or, for
  // an EXPLAIN, of the SELECT inside it; nothing else puts a Literal directly there
  const typeAtDepth: string[] = [];
  for (const line of dump) {
    const m = /^( *)(\S+)/.exec(line);
    if (!m) continue;
    const depth = (m[1] ?? '').length;
    const type = m[2] ?? '';
    typeAtDepth[depth] = type;
    if (type !== 'Literal' || depth === 0) continue;
    const parent = typeAtDepth[depth - 1];
    if (head === 'INSERT' && depth === 1 && parent === 'InsertQuery') {
      throw new GatewayError(78, 'UNKNOWN_TYPE_OF_QUERY', 'Query has infile and was send directly to server');
    }
    if (head !== 'INSERT' && (depth === 1 || parent === 'SelectWithUnionQuery')) {
      throw new GatewayError(358, 'INTO_OUTFILE_NOT_ALLOWED', 'INTO OUTFILE is not allowed');
    }
  }
}

/** A real server refuses several statements in one request; chDB would run them all. */
function assertSingleStatement(sql: string): void {
  if (sql.length > 1_000_000 || !sql.includes(';')) return;
  let n: number;
  try {
    n = splitStatements(sql).length;
  } catch {
    return; // unterminated quote or comment: the engine reports a precise syntax error
  }
  if (n > 1) throw new GatewayError(62, 'SYNTAX_ERROR', 'Syntax error (Multi-statements are not allowed)');
}

/** First keyword of the statement, upper-cased, skipping whitespace and comments. */
function leadingKeyword(sql: string): string {
  const rest = sql.replace(/^(?:\s+|--[^\n]*(?:\n|$)|\/\*[\s\S]*?\*\/)*/, '');
  return (/^[A-Za-z]+/.exec(rest)?.[0] ?? '').toUpperCase();
}

/** One `SET a = …, b = …, param_x = '…'` statement; setting values keep their SQL type. */
function setStatement(settings: ReadonlyMap<string, string>, params: ReadonlyMap<string, string>): string {
  const parts = [...settings].map(([k, v]) => `${k} = ${settingLiteral(v)}`);
  // NOTE: a param's value is the text the server would parse as the placeholder's type
  // (already escaped by the client); quoting it as a string literal hands that text over as is.
  for (const [k, v] of params) parts.push(`param_${k} = ${quoteString(v)}`);
  return `SET ${parts.join(', ')}`;
}

function settingLiteral(v: string): string {
  return /^-?\d+(?:\.\d+)?$/.test(v) ? v : quoteString(v);
}

function settingsForClause(settings: ReadonlyMap<string, string>): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  for (const [k, v] of settings) {
    const n = Number(v);
    out[k] = /^-?\d+$/.test(v) && Number.isSafeInteger(n) ? n : v;
  }
  return out;
}

function quoteString(v: string): string {
  return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

function quoteIdent(v: string): string {
  return `\`${v.replace(/\\/g, '\\\\').replace(/`/g, '\\`')}\``;
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function isBlank(buf: Buffer): boolean {
  for (const b of buf) if (b !== 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09) return false;
  return true;
}

/** Collects the body into one Buffer (a single concat at the end; the limit checked as it arrives). */
async function readBody(req: IncomingMessage, maxBody: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > maxBody) throw tooLarge(maxBody);
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > maxBody) throw tooLarge(maxBody);
    chunks.push(chunk);
  }
  return chunks.length === 1 && chunks[0] ? chunks[0] : Buffer.concat(chunks, total);
}

const gunzipAsync = promisify(gunzip);
const inflateAsync = promisify(inflate);
const brotliAsync = promisify(brotliDecompress);
const gzipAsync = promisify(gzip);
const deflateAsync = promisify(deflate);

async function decodeBody(raw: Buffer, encoding: string | undefined, maxBody: number): Promise<Buffer> {
  const enc = (encoding ?? '').trim().toLowerCase();
  if (enc === '' || enc === 'identity' || raw.length === 0) return raw;
  const opts = { maxOutputLength: maxBody };
  try {
    if (enc === 'gzip' || enc === 'x-gzip') return await gunzipAsync(raw, opts);
    if (enc === 'deflate') return await inflateAsync(raw, opts);
    if (enc === 'br') return await brotliAsync(raw, opts);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw tooLarge(maxBody);
    throw new GatewayError(271, 'CANNOT_DECOMPRESS', `Cannot decompress ${enc} request body: ${errorMessage(err)}`);
  }
  throw new GatewayError(48, 'NOT_IMPLEMENTED', `Content-Encoding ${enc} is not supported by the test gateway (gzip, deflate, br are)`);
}

function tooLarge(maxBody: number): GatewayError {
  return new GatewayError(229, 'QUERY_IS_TOO_LARGE', `Request body exceeds the gateway limit of ${maxBody} bytes`);
}

/** The server's error body: `Code: N. DB::Exception: … (NAME) (version …)`. */
function describeError(err: unknown, version: string): { status: number; code: number; text: string } {
  let message = errorMessage(err).trim();
  let m = /^Code: (\d+)\. DB::Exception: [\s\S]*\(([A-Z0-9_]+)\)$/.exec(message);
  if (!m) {
    message = `Code: 1001. DB::Exception: ${message}. (STD_EXCEPTION)`;
    m = /^Code: (\d+)\.[\s\S]*\(([A-Z0-9_]+)\)$/.exec(message);
  }
  const code = Number(m?.[1] ?? 1001);
  const status = STATUS_BY_ERROR[m?.[2] ?? ''] ?? 500;
  return { status, code, text: `${message} (version ${version})\n` };
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Content-Type a ClickHouse server sends for each output format. */
function contentTypeFor(format: string): string {
  const f = format.toLowerCase();
  if (/^json(strings|compact|compactstrings)?eachrow|^jsonlines$|^ndjson$/.test(f)) return 'application/x-ndjson; charset=UTF-8';
  if (f.startsWith('json')) return 'application/json; charset=UTF-8';
  if (f.startsWith('csv')) return `text/csv; charset=UTF-8; header=${f.includes('withnames') ? 'present' : 'absent'}`;
  if (f.startsWith('tsv') || f.startsWith('tabseparated')) return 'text/tab-separated-values; charset=UTF-8';
  if (/^(parquet|arrow|native|rowbinary|orc|avro|msgpack|protobuf|capnproto)/.test(f)) return 'application/octet-stream';
  return 'text/plain; charset=UTF-8';
}

/** Rows in a line-oriented result (one per line, minus header lines); 0 where unknown. */
function resultRows(format: string, body: Buffer): number {
  const f = format.toLowerCase();
  if (!/eachrow|^tsv|^tabseparated|^csv|^jsonlines$/.test(f)) return 0;
  let lines = 0;
  for (let i = body.indexOf(0x0a); i !== -1; i = body.indexOf(0x0a, i + 1)) lines++;
  const header = f.includes('withnamesandtypes') ? 2 : f.includes('withnames') ? 1 : 0;
  return Math.max(0, lines - header);
}
