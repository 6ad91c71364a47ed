// Analyst SQL (DESIGN.md §8): the one place where SQL written by a tenant's analysts or by the
// operator runs. The engine parses every statement (formatQuery → EXPLAIN AST → EXPLAIN QUERY
// TREE), the parse is checked against allow-lists, and the statement runs read-only and bounded
// with a tenant's rows filtered by the engine (additional_table_filters) — never by patterns
// over SQL text.
// The checks live beside it: analyst-ast.ts, analyst-query-tree.ts, analyst-functions.ts; the
// settings in analyst-settings.ts, error mapping in analyst-errors.ts, engines in analyst-engines.ts.
import type { ClickHouseClient } from '@clickhouse/client';
import { analyzeAst, assertTenantNames, parseAstDump } from './analyst-ast.js';
import { chdbEngine, serverEngine, type Engine, type StatementContext, type Who } from './analyst-engines.js';
import { notAllowed, QueryRejectedError, step } from './analyst-errors.js';
import { assertOperatorTree, assertTenantTree, parseQueryTree } from './analyst-query-tree.js';
import {
  DEFAULT_QUERY_LIMITS,
  limitSettings,
  PLAIN_NAME,
  quoteString,
  TENANT_ID_PATTERN,
  tenantFilterSetting,
  type QueryLimits,
  type Settings,
} from './analyst-settings.js';

// ---------------------------------------------------------------------------------------------
// Public API

export { QueryRejectedError, type QueryRejectedCode } from './analyst-errors.js';
export { ANALYST_TABLES, DEFAULT_QUERY_LIMITS, TENANT_ID_PATTERN, type QueryLimits } from './analyst-settings.js';

export interface AnalystSql {
  /** a tenant `read` key: one SELECT over the analyst tables/views only, every row of `tenantId` only */
  tenantQuery(tenantId: string, sql: string): Promise<unknown[]>;
  /** the operator: any single read-only SELECT over any table (system.* too), never file/network access, bounded */
  operatorQuery(sql: string): Promise<unknown[]>;
  /** Refuses new statements and waits for running ones. Idempotent; never closes clients it was given. */
  close?(): Promise<void>;
}

interface CommonOptions {
  /** per-statement bounds; unset fields keep DEFAULT_QUERY_LIMITS */
  limits?: Partial<QueryLimits>;
  /**
   * analyst statements running at once (default 2). NOTE: a running chDB statement holds one of
   * libuv's worker threads (4 by default), which the sink's inserts and fs calls share.
   */
  maxConcurrent?: number;
  /** statements waiting for a slot before new ones get a 429 (default 16) */
  maxQueued?: number;
  /** SQL text longer than this is refused before the engine sees it (default 64 KiB) */
  maxSqlBytes?: number;
}

/**
 * Embedded mode: chDB in this process. Every statement gets fresh connections on the process's
 * one engine (same `dataDir` as the other clients), SET up with the bounds, the tenant's filters
 * and readonly = 1 before the statement is seen, and closed after it.
 */
export interface ChdbAnalystSqlOptions extends CommonOptions {
  engine: 'chdb';
  dataDir: string;
}

/**
 * A ClickHouse server over HTTP: the bounds, filters and readonly = 1 travel with every request.
 * `tenantClient` should log in as the read-only analyst user of
 * schemas/clickhouse-server/analyst-user.sql (its grants stop a tenant from reading anything
 * else); `operatorClient` may be Tracklane's own user (the statement still runs with readonly = 1
 * and never gets a file, URL or remote source). Both must be HTTP clients: a chDB-backed client
 * keeps per-query settings on its session.
 */
export interface ServerAnalystSqlOptions extends CommonOptions {
  engine: 'server';
  tenantClient: ClickHouseClient;
  operatorClient: ClickHouseClient;
  /** the database the analyst tables live in (CLICKHOUSE_DATABASE; default "default") */
  database?: string;
}

export type AnalystSqlOptions = ChdbAnalystSqlOptions | ServerAnalystSqlOptions;

export async function createAnalystSql(opts: AnalystSqlOptions): Promise<AnalystSql> {
  const limits: QueryLimits = { ...DEFAULT_QUERY_LIMITS, ...(opts.limits ?? {}) };
  for (const [k, v] of Object.entries(limits)) {
    if (!Number.isSafeInteger(v) || v <= 0) throw new Error(`analyst SQL limit ${k} must be a positive integer, got ${String(v)}`);
  }
  const maxSqlBytes = opts.maxSqlBytes ?? 64 * 1024;
  const gate = new Gate(opts.maxConcurrent ?? 2, opts.maxQueued ?? 16);
  const database = opts.engine === 'server' ? (opts.database ?? 'default') : 'default';
  if (!PLAIN_NAME.test(database)) throw new Error(`analyst SQL database must be a plain identifier, got ${JSON.stringify(database)}`);
  const engine = opts.engine === 'chdb' ? await chdbEngine(opts.dataDir) : serverEngine(opts.tenantClient, opts.operatorClient);

  let engineClosed = false;
  const run = async (who: Who, sql: string): Promise<unknown[]> => {
    if (typeof sql !== 'string' || sql.trim() === '') throw new QueryRejectedError('query_invalid', 'the query is empty');
    const bytes = Buffer.byteLength(sql, 'utf8');
    if (bytes > maxSqlBytes) {
      throw new QueryRejectedError('query_limit_exceeded', `the query is ${bytes} bytes; at most ${maxSqlBytes} are accepted`, { status: 413 });
    }
    return gate.run(() => runStatement({ engine, who, sql, limits, database }));
  };

  return {
    tenantQuery: (tenantId, sql) => {
      if (typeof tenantId !== 'string' || !TENANT_ID_PATTERN.test(tenantId)) {
        return Promise.reject(new QueryRejectedError('query_invalid', 'invalid tenant id'));
      }
      return run({ kind: 'tenant', tenantId }, sql);
    },
    operatorQuery: (sql) => run({ kind: 'operator' }, sql),
    close: async () => {
      await gate.close();
      if (!engineClosed) {
        engineClosed = true;
        engine.close();
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------
// One statement, step by step

async function runStatement(args: { engine: Engine; who: Who; sql: string; limits: QueryLimits; database: string }): Promise<unknown[]> {
  const { engine, who, sql, limits, database } = args;
  const filters: Settings = who.kind === 'tenant' ? { additional_table_filters: tenantFilterSetting(who.tenantId, database) } : {};
  const runSettings: Settings = { ...engine.extraSettings, ...limitSettings(limits), ...filters };
  // NOTE: EXPLAIN prints one row per line of the dump, and max_result_rows counts those rows too;
  // the checks run with a result bound that fits any statement under max_ast_elements.
  const checkSettings: Settings = { ...runSettings, max_result_rows: Math.max(limits.maxResultRows, 1_000_000), max_result_bytes: Math.max(limits.maxResultBytes, 256 * 1024 * 1024) };

  let formatted: string;
  const check = await engine.open(who, checkSettings);
  try {
    formatted = await step('parse', () => canonicalSql(check, sql));
    const ast = analyzeAst(parseAstDump(await step('parse', () => explainLines(check, `EXPLAIN AST ${formatted}`))), who.kind);
    if (who.kind === 'tenant') {
      // TRICKY: EXPLAIN QUERY TREE runs the analyzer, which evaluates scalar subqueries. Every
      // table the statement names is therefore checked from the AST first (by name, against the
      // tables that exist), so the analyzer only ever reads tables the tenant may read.
      const existing = await step('check', () => tablesOf(check, database));
      assertTenantNames(ast, existing, database);
    }
    const tree = parseQueryTree(await step('check', () => explainLines(check, `EXPLAIN QUERY TREE ${formatted}`)));
    if (who.kind === 'tenant') assertTenantTree(tree, database);
    else await assertOperatorTree(tree, check);
  } finally {
    check.close();
  }

  const exec = await engine.open(who, runSettings);
  try {
    return await step('run', () => exec.rows(formatted));
  } finally {
    exec.close();
  }
}

/**
 * The engine's own single-statement rendering of the text. TRICKY: the text travels as data
 * (hex) into formatQuery, which refuses several statements and never executes anything; only its
 * output — re-formatted once more to prove it is one stable statement — is ever placed into a
 * statement. A chDB connection runs every statement of a multi-statement text.
 */
async function canonicalSql(ctx: StatementContext, sql: string): Promise<string> {
  const hex = Buffer.from(sql, 'utf8').toString('hex');
  const [row] = await ctx.rows(`SELECT formatQuery(unhex('${hex}')) AS f, formatQuery(f) AS g`);
  const f = row?.f;
  if (typeof f !== 'string' || f !== row?.g) {
    throw new QueryRejectedError('query_invalid', 'the query has no stable canonical form (formatQuery)');
  }
  return f;
}

async function explainLines(ctx: StatementContext, sql: string): Promise<string[]> {
  // fail closed: whatever made the engine answer in another shape (an INSERT's own FORMAT or
  // VALUES can pick the output format of its EXPLAIN), nothing was verified
  const unverified = (): QueryRejectedError => notAllowed('the statement could not be verified (EXPLAIN did not return its parse)');
  let rows: Record<string, unknown>[];
  try {
    rows = await ctx.rows(sql);
  } catch (err) {
    if (err instanceof SyntaxError) throw unverified();
    throw err;
  }
  return rows.map((r) => {
    if (typeof r.explain !== 'string') throw unverified();
    return r.explain;
  });
}

async function tablesOf(ctx: StatementContext, database: string): Promise<Set<string>> {
  const rows = await ctx.rows(`SELECT name FROM system.tables WHERE database = ${quoteString(database)}`);
  return new Set(rows.map((r) => String(r.name)));
}

/** A bounded number of statements at once; a bounded queue behind them. */
class Gate {
  private active = 0;
  private readonly waiters: (() => void)[] = [];
  private closed = false;
  private idle: (() => void)[] = [];

  constructor(
    private readonly concurrency: number,
    private readonly maxQueued: number,
  ) {
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error('analyst SQL maxConcurrent must be ≥ 1');
  }

  async run<T>(job: () => Promise<T>): Promise<T> {
    if (this.closed) throw new Error('analyst SQL is closed');
    if (this.active >= this.concurrency) {
      if (this.waiters.length >= this.maxQueued) {
        throw new QueryRejectedError('query_limit_exceeded', 'too many analyst queries at once; retry shortly', { status: 429 });
      }
      await new Promise<void>((r) => this.waiters.push(r));
    } else {
      this.active++;
    }
    try {
      return await job();
    } finally {
      const next = this.waiters.shift();
      if (next) next();
      else {
        this.active--;
        if (this.active === 0) for (const r of this.idle.splice(0)) r();
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.active === 0) return;
    await new Promise<void>((r) => this.idle.push(r));
  }
}
