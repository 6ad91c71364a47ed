// Analyst SQL (DESIGN.md §8): the one place where SQL written by a tenant's analysts or by the
// operator runs. The engine parses every statement (formatQuery → EXPLAIN AST → EXPLAIN QUERY
// TREE), the parse is checked against allow-lists, and the statement runs read-only and bounded
// with a tenant's rows filtered by the engine (additional_table_filters) — never by patterns
// over SQL text.
import type { ClickHouseClient, ClickHouseSettings } from '@clickhouse/client';

// ---------------------------------------------------------------------------------------------
// Public API

export interface QueryLimits {
  maxMemoryBytes: number;
  maxRowsToRead: number;
  maxBytesToRead: number;
  maxResultRows: number;
  maxResultBytes: number;
  maxExecutionSeconds: number;
}

/**
 * Bounds of one analyst statement (each is enforced by the engine with overflow mode `throw`):
 * - 512 MiB memory: the embedded engine shares the process with the sink; two analyst queries at
 *   once (the default concurrency) stay under 1 GiB, and 512 MiB holds a GROUP BY over millions
 *   of keys. A memory bomb fails within a second at this bound (measured, see the tests).
 * - 100 M rows / 10 GiB read: a year of a busy tenant's events (≈ 300 k a day) is read in one
 *   scan; anything beyond is a runaway cross join or a scan of everything.
 * - 10 k result rows / 16 MiB: the answer travels as one JSON response to a dashboard or a
 *   notebook; more is an export, which is a different API.
 * - 20 s: below the HTTP client's 30 s request timeout (libs/clickhouse/client.ts) so the engine,
 *   not a socket, ends a slow query, and a clear 4xx reaches the analyst.
 */
export const DEFAULT_QUERY_LIMITS: QueryLimits = Object.freeze({
  maxMemoryBytes: 512 * 1024 * 1024,
  maxRowsToRead: 100_000_000,
  maxBytesToRead: 10 * 1024 * 1024 * 1024,
  maxResultRows: 10_000,
  maxResultBytes: 16 * 1024 * 1024,
  maxExecutionSeconds: 20,
});

export type QueryRejectedCode = 'query_not_allowed' | 'query_invalid' | 'query_limit_exceeded' | 'query_failed';

const STATUS_BY_CODE: Record<QueryRejectedCode, number> = {
  query_invalid: 400,
  query_not_allowed: 403,
  query_failed: 400,
  query_limit_exceeded: 422,
};

/** The statement was refused or failed because of what it asks (always a 4xx). */
export class QueryRejectedError extends Error {
  override readonly name = 'QueryRejectedError';
  readonly status: number;
  constructor(
    readonly code: QueryRejectedCode,
    message: string,
    opts: { status?: number; cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.status = opts.status ?? STATUS_BY_CODE[code];
  }
}

export interface AnalystSql {
  /** a tenant `read` key: one SELECT over the analyst tables/views only, every row of `tenantId` only */
  tenantQuery(tenantId: string, sql: string): Promise<unknown[]>;
  /** the operator: any single read-only SELECT over any table (system.* too), never file/network access, bounded */
  operatorQuery(sql: string): Promise<unknown[]>;
  /** Refuses new statements and waits for running ones. Idempotent; never closes clients it was given. */
  close?(): Promise<void>;
}

/** Tables and views a tenant may read; every one has a `tenant_id` column the engine filters on. */
export const ANALYST_TABLES: readonly string[] = Object.freeze([
  'events',
  'users',
  'accounts',
  'dead_letters',
  'overwrite_requests',
  'audit_log',
  // the shipped views (schemas/clickhouse/0004_views.sql)
  'daily_active_users',
  'sessions',
  'top_pages',
  'events_by_account',
  'events_by_country',
]);

export const TENANT_ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;

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

type Who = { kind: 'tenant'; tenantId: string } | { kind: 'operator' };
type Settings = Record<string, string | number>;

/** Statements on one engine-side context whose settings were fixed before any statement ran. */
interface StatementContext {
  /** runs one statement; returns its JSONEachRow rows */
  rows(sql: string): Promise<Record<string, unknown>[]>;
  close(): void;
}

interface Engine {
  open(who: Who, settings: Settings): Promise<StatementContext>;
  /** settings only this engine needs (chDB: spilling to disk off) */
  extraSettings: Settings;
  close(): void;
}

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

/** Maps an engine error of one step to a QueryRejectedError; infrastructure failures pass through. */
async function step<T>(phase: 'parse' | 'check' | 'run', fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof QueryRejectedError) throw err;
    const rejected = classifyEngineError(err, phase);
    if (rejected) throw rejected;
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// Settings

export function limitSettings(l: QueryLimits): Settings {
  return {
    max_memory_usage: l.maxMemoryBytes,
    max_rows_to_read: l.maxRowsToRead,
    max_bytes_to_read: l.maxBytesToRead,
    read_overflow_mode: 'throw',
    max_result_rows: l.maxResultRows,
    max_result_bytes: l.maxResultBytes,
    result_overflow_mode: 'throw',
    max_execution_time: l.maxExecutionSeconds,
    timeout_overflow_mode: 'throw',
  };
}

/**
 * The additional_table_filters value for a tenant: every analyst table and view, bare and
 * database-qualified, filtered on tenant_id. The engine applies it to the storage a table
 * expression reads wherever it appears (views, CTEs, subqueries, joins, IN, FINAL, aliases).
 */
export function tenantFilterSetting(tenantId: string, database = 'default'): string {
  if (!TENANT_ID_PATTERN.test(tenantId)) throw new Error('invalid tenant id');
  const filter = `tenant_id = ${quoteString(tenantId)}`;
  const entries = ANALYST_TABLES.flatMap((t) => [t, `${database}.${t}`]).map((k) => `${quoteString(k)}: ${quoteString(filter)}`);
  return `{${entries.join(', ')}}`;
}

/** A ClickHouse string literal: backslash and quote escaped, so nothing can end it early. */
export function quoteString(v: string): string {
  return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** `SET a = 1, b = 'x', …, readonly = 1`: one statement, so readonly cannot refuse its neighbours. */
export function setStatement(settings: Settings): string {
  const parts = Object.entries(settings).map(([k, v]) => {
    if (!PLAIN_NAME.test(k)) throw new Error(`invalid setting name ${JSON.stringify(k)}`);
    return `${k} = ${typeof v === 'number' ? String(v) : quoteString(v)}`;
  });
  parts.push('readonly = 1');
  return `SET ${parts.join(', ')}`;
}

// ---------------------------------------------------------------------------------------------
// EXPLAIN AST

export interface AstNode {
  type: string;
  /** the rest of the line after the type, without the alias and children suffixes */
  name: string;
  depth: number;
  children: AstNode[];
  parent: AstNode | null;
}

/**
 * Node types a statement may contain (default-deny). NOTE: `ColumnsApplyTransformer` (`* APPLY f`)
 * is left out because the dump does not name the function it applies; `Set` is a SETTINGS clause.
 */
const AST_TYPES = new Set([
  'SelectWithUnionQuery',
  'SelectIntersectExceptQuery',
  'SelectQuery',
  'ExpressionList',
  'WithElement',
  'Subquery',
  'TablesInSelectQuery',
  'TablesInSelectQueryElement',
  'TableExpression',
  'TableIdentifier',
  'TableJoin',
  'ArrayJoin',
  'SampleRatio',
  'Identifier',
  'Literal',
  'Function',
  'Asterisk',
  'QualifiedAsterisk',
  'ColumnsRegexpMatcher',
  'QualifiedColumnsRegexpMatcher',
  'ColumnsListMatcher',
  'QualifiedColumnsListMatcher',
  'ColumnsTransformerList',
  'ColumnsExceptTransformer',
  'ColumnsReplaceTransformer',
  'ColumnsReplaceTransformer::Replacement',
  'OrderByElement',
  'WindowDefinition',
  'WindowListElement',
  'InterpolateElement',
]);

const AST_LINE = /^( *)([A-Za-z_][A-Za-z0-9_]*(?:::[A-Za-z_][A-Za-z0-9_]*)?)(.*)$/;

/**
 * The dump as a tree (one node per line, indented one space per level).
 * TRICKY: names and aliases are printed raw, so a backquoted name with a newline can add lines of
 * the author's choosing. A real node's line always starts with its own type, so every check here
 * reads types and names context-free where it matters (functions, tables, SETTINGS), and a line
 * that is not a well-formed node of a known type, or a child count that does not add up, refuses
 * the statement.
 */
export function parseAstDump(lines: readonly string[]): AstNode {
  const stack: AstNode[] = [];
  const declared = new Map<AstNode, number>();
  let root: AstNode | null = null;
  for (const line of lines) {
    const m = AST_LINE.exec(line);
    if (!m) throw notAllowed('the statement contains a construct the analyst API cannot verify');
    const depth = (m[1] ?? '').length;
    const type = m[2] ?? '';
    let rest = m[3] ?? '';
    const children = / \(children (\d+)\)$/.exec(rest);
    if (children) rest = rest.slice(0, children.index);
    if (!AST_TYPES.has(type)) {
      if (depth === 0) throw notAllowed(`only a single SELECT statement is allowed (got ${describeRoot(type)})`);
      if (type === 'Set') throw notAllowed('SETTINGS clauses are not allowed');
      if (type === 'ColumnsApplyTransformer') throw notAllowed('APPLY column transformers are not allowed');
      throw notAllowed(`unsupported SQL construct (${type})`);
    }
    const alias = / \(alias ([\s\S]*)\)$/.exec(rest);
    const name = (alias ? rest.slice(0, alias.index) : rest).replace(/^ /, '');
    if (depth === 0) {
      if (root) throw notAllowed('only a single SELECT statement is allowed');
      root = { type, name, depth, children: [], parent: null };
      stack.push(root);
    } else {
      while (stack.length > depth) stack.pop();
      const parent = stack[stack.length - 1];
      if (!parent || stack.length !== depth) throw notAllowed('the statement contains a construct the analyst API cannot verify');
      const node: AstNode = { type, name, depth, children: [], parent };
      parent.children.push(node);
      stack.push(node);
    }
    const last = stack[stack.length - 1];
    if (last) declared.set(last, children ? Number(children[1]) : 0);
  }
  if (!root) throw notAllowed('empty statement');
  for (const [node, n] of declared) {
    if (node.children.length !== n) throw notAllowed('the statement contains a construct the analyst API cannot verify');
  }
  return root;
}

function describeRoot(type: string): string {
  if (type === 'Explain') return 'EXPLAIN';
  if (/^Show/.test(type)) return 'SHOW';
  if (type === 'DescribeQuery') return 'DESCRIBE';
  if (type === 'InsertQuery') return 'INSERT';
  if (type === 'Set' || type === 'SetQuery') return 'SET';
  return type;
}

export interface AstFacts {
  /** every function name as written */
  functions: string[];
  /** table functions (a Function directly under a TableExpression) */
  tableFunctions: string[];
  /** table expressions by name (TableIdentifier) */
  tables: string[];
  /** identifiers, any position (the right side of IN may name a table) */
  identifiers: string[];
  /** identifiers on the right side of IN / NOT IN / GLOBAL IN … */
  inTables: string[];
}

const IN_FUNCTIONS = new Set(
  ['in', 'notIn', 'globalIn', 'globalNotIn', 'nullIn', 'notNullIn', 'globalNullIn', 'globalNotNullIn'].flatMap((f) => [f, `${f}IgnoreSet`]),
);

/** Checks the node types and function names of a parsed dump and collects what names tables. */
export function analyzeAst(root: AstNode, kind: Who['kind']): AstFacts {
  if (root.type !== 'SelectWithUnionQuery') throw notAllowed(`only a single SELECT statement is allowed (got ${describeRoot(root.type)})`);
  // INTO OUTFILE (with its compression), FORMAT and SETTINGS of the statement are further
  // children of the root (measured on chDB 26.7); a plain SELECT has exactly its union list.
  if (root.children.length !== 1 || root.children[0]?.type !== 'ExpressionList') {
    const extra = root.children.slice(1);
    if (extra.some((c) => c.type === 'Literal')) throw notAllowed('INTO OUTFILE is not allowed');
    if (extra.some((c) => c.type === 'Identifier')) throw notAllowed('FORMAT is not allowed (results are always JSON rows)');
    throw notAllowed('only a plain SELECT is allowed');
  }
  const facts: AstFacts = { functions: [], tableFunctions: [], tables: [], identifiers: [], inTables: [] };
  const visit = (n: AstNode): void => {
    if (n.type === 'Function') {
      const fname = n.name;
      if (n.parent?.type === 'TableExpression') {
        facts.tableFunctions.push(fname);
        if (kind === 'tenant') throw notAllowed(`table functions are not allowed (${clip(fname)})`);
        if (!OPERATOR_TABLE_FUNCTIONS.has(fname)) throw notAllowed(`table function ${clip(fname)} is not allowed`);
      } else {
        facts.functions.push(fname);
        if (!isAllowedFunction(fname, kind)) throw notAllowed(`function ${clip(fname)} is not allowed`);
      }
      if (IN_FUNCTIONS.has(fname)) {
        const right = n.children[0]?.children[1];
        if (right?.type === 'Identifier') facts.inTables.push(right.name);
      }
    } else if (n.type === 'TableIdentifier') {
      facts.tables.push(n.name);
      if (kind === 'operator' && !n.name.split('.').every((p) => PLAIN_NAME.test(p))) {
        throw notAllowed(`table name ${clip(n.name)} is not allowed`);
      }
    } else if (n.type === 'Identifier') {
      facts.identifiers.push(n.name);
    }
    for (const c of n.children) visit(c);
  };
  visit(root);
  return facts;
}

const PLAIN_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Databases other than the analyst one: every table in them is off limits to tenants. */
const OTHER_DATABASES = new Set(['system', 'information_schema', 'INFORMATION_SCHEMA']);

/**
 * A tenant's table names, before the analyzer runs. A name the dump prints as `a.b` is read both
 * as database.table and as one table name. Allowed: an analyst table (bare or qualified with the
 * analyst database), or a bare plain name that is no table at all (a CTE, or unknown — the engine
 * says which). Anything naming an existing other table, or any other database, is refused.
 */
export function assertTenantNames(facts: AstFacts, existing: ReadonlySet<string>, database = 'default'): void {
  const allowed = new Set(ANALYST_TABLES);
  const forbiddenHere = (name: string): boolean => existing.has(name) && !allowed.has(name);
  const refuse = (name: string): never => {
    throw notAllowed(`table ${clip(name)} is not available to tenants (allowed: ${ANALYST_TABLES.join(', ')})`);
  };
  const checkTableRef = (name: string): void => {
    if (allowed.has(name)) return;
    const parts = name.split('.');
    if (parts.length === 2 && parts[0] === database && allowed.has(parts[1] ?? '')) return;
    if (parts.length === 1 && PLAIN_NAME.test(name) && !existing.has(name)) return;
    refuse(name);
  };
  for (const t of facts.tables) checkTableRef(t);
  for (const t of facts.inTables) checkTableRef(t);
  // NOTE: context-free, so a dump whose structure was bent by a crafted name still cannot name
  // another table: any identifier spelling an existing non-analyst table or another database.
  for (const id of facts.identifiers) {
    const parts = id.split('.');
    if (forbiddenHere(id)) refuse(id);
    if (parts.length >= 2 && OTHER_DATABASES.has(parts[0] ?? '')) refuse(id);
    if (parts.length >= 2 && parts[0] === database && forbiddenHere(parts[1] ?? '')) refuse(id);
  }
}

// ---------------------------------------------------------------------------------------------
// EXPLAIN QUERY TREE

export interface QueryTreeFacts {
  /** resolved tables, `database.table` */
  tables: string[];
  tableFunctions: string[];
}

const TREE_TABLE = /^TABLE id: \d+(?:, alias: [^,\s]+)?, table_name: ([^,\s]+)(?:, final: 1)?$/;
const TREE_TABLE_FUNCTION = /^TABLE_FUNCTION id: \d+(?:, alias: [^,\s]+)?, table_function_name: ([A-Za-z_][A-Za-z0-9_]*)$/;

/** The tables and table functions the analyzer resolved (CTEs are QUERY nodes, not tables). */
export function parseQueryTree(lines: readonly string[]): QueryTreeFacts {
  const facts: QueryTreeFacts = { tables: [], tableFunctions: [] };
  for (const raw of lines) {
    const line = raw.trim();
    if (line.startsWith('TABLE id:')) {
      const m = TREE_TABLE.exec(line);
      if (!m?.[1]) throw notAllowed('the statement reads a table the analyst API cannot verify');
      facts.tables.push(m[1]);
    } else if (line.startsWith('TABLE_FUNCTION ')) {
      const m = TREE_TABLE_FUNCTION.exec(line);
      if (!m?.[1]) throw notAllowed('the statement uses a table function the analyst API cannot verify');
      facts.tableFunctions.push(m[1]);
    }
  }
  return facts;
}

export function assertTenantTree(tree: QueryTreeFacts, database = 'default'): void {
  if (tree.tableFunctions.length > 0) throw notAllowed(`table functions are not allowed (${clip(tree.tableFunctions[0] ?? '')})`);
  const allowed = new Set(ANALYST_TABLES.map((t) => `${database}.${t}`));
  for (const t of tree.tables) {
    // system.one is the analyzer's implicit table of a SELECT without FROM (an explicit
    // system.one was refused from the AST)
    if (t === 'system.one' || allowed.has(t)) continue;
    throw notAllowed(`table ${clip(t)} is not available to tenants`);
  }
}

/** Table engines the operator may read: local data and system tables, never an external source. */
const OPERATOR_ENGINE = /^(?:(?:Replicated|Shared)?(?:Replacing|Summing|Aggregating|Collapsing|VersionedCollapsing|Coalescing|Graphite)?MergeTree|View|MaterializedView|Memory|Set|Join|Log|TinyLog|StripeLog|Buffer|Null|Distributed|System[A-Za-z0-9]*)$/;

async function assertOperatorTree(tree: QueryTreeFacts, ctx: StatementContext): Promise<void> {
  for (const f of tree.tableFunctions) if (!OPERATOR_TABLE_FUNCTIONS.has(f)) throw notAllowed(`table function ${clip(f)} is not allowed`);
  const names = [...new Set(tree.tables)];
  if (names.length === 0) return;
  const tuples = names.map((t) => {
    const dot = t.indexOf('.');
    return `(${quoteString(t.slice(0, dot))}, ${quoteString(t.slice(dot + 1))})`;
  });
  const rows = await step('check', () =>
    ctx.rows(`SELECT database, name, engine FROM system.tables WHERE (database, name) IN (${tuples.join(', ')})`),
  );
  const engines = new Map(rows.map((r) => [`${String(r.database)}.${String(r.name)}`, String(r.engine)]));
  for (const t of names) {
    const engine = engines.get(t);
    if (engine === undefined || !OPERATOR_ENGINE.test(engine)) {
      throw notAllowed(`table ${clip(t)} (${engine ?? 'not a stored table'}) is not readable through the analyst API`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Function allow-list (names compared case-insensitively, as the engine does for most of them)

/**
 * Curated by category from chDB 26.7's system.functions. Left out on purpose: file(), dictGet*,
 * joinGet*, the ai* functions (they call a model over the network), catboostEvaluate/evalMLMethod,
 * introspection, host/user/server/setting/query-id getters, sleep*, formatRow (format schemas are
 * files), URL functions with a custom TLD list, regionTo* (embedded dictionaries), and anything
 * internal.
 */
const SCALAR_FUNCTIONS = `
  and or not xor if multiIf caseWithExpression caseWithoutExpression greatest least clamp
  equals notEquals less greater lessOrEquals greaterOrEquals isDistinctFrom isNotDistinctFrom
  in notIn globalIn globalNotIn nullIn notNullIn globalNullIn globalNotNullIn exists
  like notLike ilike notILike match
  plus minus multiply divide intDiv intDivOrZero intDivOrNull divideOrNull modulo moduloOrZero moduloOrNull
  positiveModulo positiveModuloOrNull negate abs gcd lcm max2 min2 avg2 midpoint isFinite isInfinite isNaN
  ifNotFinite sqr byteSwap divideDecimal multiplyDecimal mod pmod power ln ceiling truncate
  tuple tupleElement untuple array arrayElement arrayElementOrNull map lambda identity materialize ignore
  assumeNotNull coalesce firstNonDefault ifNull isNotNull isNull isNullable isZeroOrNull nullIf toNullable
  ceil floor round roundAge roundBankers roundDown roundDuration roundToExp2 trunc
  acos acosh asin asinh atan atan2 atanh cbrt cos cosh degrees e erf erfc exp exp10 exp2 factorial hypot
  intExp10 intExp2 isPrime lgamma log log10 log1p log2 pi pow proportionsZTest radians sigmoid sign sin sinh
  sqrt tan tanh tgamma widthBucket width_bucket
  bitAnd bitCount bitHammingDistance bitNot bitOr bitRotateLeft bitRotateRight bitShiftLeft bitShiftRight
  bitSlice bitTest bitTestAll bitTestAny bitXor
  bitmapAnd bitmapAndCardinality bitmapAndnot bitmapAndnotCardinality bitmapBuild bitmapCardinality
  bitmapContains bitmapHasAll bitmapHasAny bitmapMax bitmapMin bitmapOr bitmapOrCardinality
  bitmapSubsetInRange bitmapSubsetLimit bitmapToArray bitmapTransform bitmapXor bitmapXorCardinality subBitmap
  arrayAll arrayAUCPR arrayAvg arrayCompact arrayConcat arrayCount arrayCumSum arrayCumSumNonNegative
  arrayDifference arrayDistinct arrayDotProduct arrayEnumerate arrayEnumerateDense arrayEnumerateDenseRanked
  arrayEnumerateUniq arrayEnumerateUniqRanked arrayExcept arrayExists arrayFill arrayFilter arrayFirst
  arrayFirstIndex arrayFirstOrNull arrayFlatten arrayFold arrayIntersect arrayJaccardIndex arrayJoin arrayLast
  arrayLastIndex arrayLastOrNull arrayLevenshteinDistance arrayMap arrayMax arrayMin arrayPartialReverseSort
  arrayPartialSort arrayPopBack arrayPopFront arrayProduct arrayPushBack arrayPushFront arrayROCAUC
  arrayReduce arrayReduceInRanges arrayRemove arrayResize arrayReverse arrayReverseFill arrayReverseSort
  arrayReverseSplit arrayRotateLeft arrayRotateRight arrayShiftLeft arrayShiftRight arraySlice arraySort
  arraySplit arraySum arraySymmetricDifference arrayTopK arrayUnion arrayUniq arrayWithConstant arrayZip
  arrayZipUnaligned arrayShingles arraySimilarity countEqual empty notEmpty has hasAll hasAny hasSubstr
  indexOf length range replicate reverse flatten unnest arrayStringConcat
  emptyArrayDate emptyArrayDateTime emptyArrayFloat32 emptyArrayFloat64 emptyArrayInt16 emptyArrayInt32
  emptyArrayInt64 emptyArrayInt8 emptyArrayString emptyArrayToSingle emptyArrayUInt16 emptyArrayUInt32
  emptyArrayUInt64 emptyArrayUInt8
  extractKeyValuePairs extractKeyValuePairsWithEscaping mapAdd mapAll mapApply mapConcat mapContains
  mapContainsKey mapContainsKeyLike mapContainsValue mapContainsValueLike mapExists mapExtractKeyLike
  mapExtractValueLike mapFilter mapFromArrays mapKeys mapPartialReverseSort mapPartialSort mapPopulateSeries
  mapReverseSort mapSort mapSubtract mapUpdate mapValues
  dotProduct flattenTuple tupleConcat tupleDivide tupleDivideByNumber tupleHammingDistance tupleIntDiv
  tupleIntDivByNumber tupleIntDivOrZero tupleIntDivOrZeroByNumber tupleMinus tupleModulo tupleModuloByNumber
  tupleMultiply tupleMultiplyByNumber tupleNames tupleNegate tuplePlus tuplePositiveModuloByNumber
  tupleToNameValuePairs
  L1Distance L1Norm L1Normalize L2Distance L2Norm L2Normalize L2SquaredDistance L2SquaredNorm LinfDistance
  LinfNorm LinfNormalize LpDistance LpNorm LpNormalize cosineDistance
  now now64 today yesterday timezone timeZone timezoneOf timeZoneOf timezoneOffset timeZoneOffset serverTimezone
  toTimezone toTimeZone UTCTimestamp toUTCTimestamp fromUTCTimestamp current_date current_timestamp curdate localtimestamp
  toYear toQuarter toMonth toDayOfYear toDayOfMonth toDayOfWeek toHour toMinute toSecond toMillisecond
  toMicrosecond toNanosecond toISOYear toISOWeek toWeek toYearWeek toDaysInMonth toLastDayOfMonth
  toLastDayOfWeek toMonday toUnixTimestamp toRelativeYearNum toRelativeQuarterNum toRelativeMonthNum
  toRelativeWeekNum toRelativeDayNum toRelativeHourNum toRelativeMinuteNum toRelativeSecondNum
  toMonthNumSinceEpoch toYearNumSinceEpoch toDaysSinceYearZero fromDaysSinceYearZero fromDaysSinceYearZero32
  toModifiedJulianDay toModifiedJulianDayOrNull fromModifiedJulianDay fromModifiedJulianDayOrNull
  toStartOfYear toStartOfISOYear toStartOfQuarter toStartOfMonth toStartOfWeek toStartOfDay toStartOfHour
  toStartOfMinute toStartOfSecond toStartOfMillisecond toStartOfMicrosecond toStartOfNanosecond
  toStartOfFiveMinutes toStartOfFiveMinute toStartOfTenMinutes toStartOfFifteenMinutes toStartOfInterval
  toYYYYMM toYYYYMMDD toYYYYMMDDhhmmss YYYYMMDDToDate YYYYMMDDToDate32 YYYYMMDDhhmmssToDateTime
  YYYYMMDDhhmmssToDateTime64 dateDiff date_diff timestampDiff timestamp_diff age dateName dateTrunc date_trunc
  date_bin time_bucket monthName formatDateTime formatDateTimeInJodaSyntax date_format fromUnixTimestamp
  from_unixtime fromUnixTimestampInJodaSyntax to_unixtime makeDate makeDate32 makeDateTime makeDateTime64
  timeSlot timeSlots timeDiff toTimeWithFixedDate addDate subDate addInterval subtractInterval
  addTupleOfIntervals subtractTupleOfIntervals addYears addQuarters addMonths addWeeks addDays addHours
  addMinutes addSeconds addMilliseconds addMicroseconds addNanoseconds subtractYears subtractQuarters
  subtractMonths subtractWeeks subtractDays subtractHours subtractMinutes subtractSeconds
  subtractMilliseconds subtractMicroseconds subtractNanoseconds changeYear changeMonth changeDay changeHour
  changeMinute changeSecond year quarter month week yearweek day dayofmonth dayofweek dayofyear hour minute
  second last_day to_days from_days str_to_date
  tumble tumbleStart tumbleEnd hop hopStart hopEnd windowID
  CAST accurateCast accurateCastOrDefault accurateCastOrNull DATE timestamp toBool toString toStringCutToZero
  toFixedString toLowCardinality toDecimalString toInterval toIntervalYear toIntervalQuarter toIntervalMonth
  toIntervalWeek toIntervalDay toIntervalHour toIntervalMinute toIntervalSecond toIntervalMillisecond
  toIntervalMicrosecond toIntervalNanosecond toDate toDate32 toDateTime toDateTime32 toDateTime64 toTime toTime64
  toUUID toUUIDOrZero toUUIDOrNull toUUIDOrDefault toIPv4 toIPv4OrDefault toIPv4OrNull toIPv4OrZero toIPv6
  toIPv6OrDefault toIPv6OrNull toIPv6OrZero
  parseDateTime parseDateTimeOrNull parseDateTimeOrZero parseDateTimeInJodaSyntax
  parseDateTimeInJodaSyntaxOrNull parseDateTimeInJodaSyntaxOrZero parseDateTime64 parseDateTime64OrNull
  parseDateTime64OrZero parseDateTime64InJodaSyntax parseDateTime64InJodaSyntaxOrNull
  parseDateTime64InJodaSyntaxOrZero parseDateTimeBestEffort parseDateTimeBestEffortOrNull
  parseDateTimeBestEffortOrZero parseDateTimeBestEffortUS parseDateTimeBestEffortUSOrNull
  parseDateTimeBestEffortUSOrZero parseDateTime32BestEffort parseDateTime32BestEffortOrNull
  parseDateTime32BestEffortOrZero parseDateTime64BestEffort parseDateTime64BestEffortOrNull
  parseDateTime64BestEffortOrZero parseDateTime64BestEffortUS parseDateTime64BestEffortUSOrNull
  parseDateTime64BestEffortUSOrZero
  fromUnixTimestamp64Second fromUnixTimestamp64Milli fromUnixTimestamp64Micro fromUnixTimestamp64Nano
  toUnixTimestamp64Second toUnixTimestamp64Milli toUnixTimestamp64Micro toUnixTimestamp64Nano
  reinterpret reinterpretAsDate reinterpretAsDateTime reinterpretAsFixedString reinterpretAsFloat32
  reinterpretAsFloat64 reinterpretAsInt8 reinterpretAsInt16 reinterpretAsInt32 reinterpretAsInt64
  reinterpretAsInt128 reinterpretAsInt256 reinterpretAsString reinterpretAsUInt8 reinterpretAsUInt16
  reinterpretAsUInt32 reinterpretAsUInt64 reinterpretAsUInt128 reinterpretAsUInt256 reinterpretAsUUID
  CRC32 CRC32IEEE CRC64 appendTrailingCharIfAbsent ascii base32Decode base32Encode base58Decode base58Encode
  base64Decode base64Encode base64URLDecode base64URLEncode tryBase32Decode tryBase58Decode tryBase64Decode
  tryBase64URLDecode basename byteHammingDistance caseFoldUTF8 compareSubstrings concat concatAssumeInjective
  concatWithSeparator concatWithSeparatorAssumeInjective concat_ws damerauLevenshteinDistance
  decodeHTMLComponent decodeXMLComponent editDistance editDistanceUTF8 levenshteinDistance
  levenshteinDistanceUTF8 encodeXMLComponent endsWith endsWithCaseInsensitive endsWithCaseInsensitiveUTF8
  endsWithUTF8 extractTextFromHTML firstLine initcap initcapUTF8 isValidASCII isValidUTF8 jaroSimilarity
  jaroWinklerSimilarity left leftPad leftPadUTF8 leftUTF8 lpad rpad lengthUTF8 char_length character_length
  octet_length lower lowerUTF8 lcase upper upperUTF8 ucase naturalSortKey normalizeUTF8NFC normalizeUTF8NFD
  normalizeUTF8NFKC normalizeUTF8NFKD removeDiacriticsUTF8 repeat reverseUTF8 right rightPad rightPadUTF8
  rightUTF8 soundex space startsWith startsWithCaseInsensitive startsWithCaseInsensitiveUTF8 startsWithUTF8
  stringJaccardIndex stringJaccardIndexUTF8 substring substr mid substringIndex substring_index
  substringIndexUTF8 substringUTF8 toValidUTF8 trim trimBoth trimLeft ltrim trimRight rtrim hex unhex bin unbin
  char bitmaskToArray bitmaskToList bitPositionsToArray format overlay overlayUTF8 printf regexpQuoteMeta
  replace replaceAll replaceOne replaceRegexpAll replaceRegexpOne regexp_replace translate translateUTF8
  countMatches countMatchesCaseInsensitive countSubstrings countSubstringsCaseInsensitive
  countSubstringsCaseInsensitiveUTF8 extract regexp_extract regexpExtract extractAll extractAllGroups
  extractAllGroupsHorizontal extractAllGroupsVertical extractGroups hasToken hasTokenCaseInsensitive
  hasTokenCaseInsensitiveOrNull hasTokenOrNull hasSubsequence hasSubsequenceCaseInsensitive
  hasSubsequenceCaseInsensitiveUTF8 hasSubsequenceUTF8 locate instr position positionCaseInsensitive
  positionCaseInsensitiveUTF8 positionUTF8 multiMatchAny multiMatchAnyIndex multiMatchAllIndices
  multiSearchAllPositions multiSearchAllPositionsUTF8 multiSearchAny multiSearchAnyUTF8
  multiSearchAnyCaseInsensitive multiSearchAnyCaseInsensitiveUTF8 multiSearchFirstIndex
  multiSearchFirstIndexUTF8 multiSearchFirstPosition multiSearchFirstPositionUTF8 ngramDistance
  ngramDistanceUTF8 ngramSearch ngramSearchUTF8 regexpPosition
  alphaTokens ngrams splitByChar splitByNonAlpha splitByRegexp splitByString splitByWhitespace tokens
  reverseBySeparator
  MD4 MD5 SHA1 SHA224 SHA256 SHA384 SHA512 SHA512_256 RIPEMD160 cityHash64 farmFingerprint64 farmHash64
  halfMD5 intHash32 intHash64 javaHash metroHash64 murmurHash2_32 murmurHash2_64 murmurHash3_32
  murmurHash3_64 murmurHash3_128 sipHash64 sipHash128 xxHash32 xxHash64 xxh3 xxh3_128 wyHash64 URLHash
  jumpConsistentHash kostikConsistentHash
  IPv4CIDRToRange IPv4NumToString IPv4NumToStringClassC IPv4StringToNum IPv4StringToNumOrDefault
  IPv4StringToNumOrNull IPv4ToIPv6 IPv6CIDRToRange IPv6NumToString IPv6StringToNum IPv6StringToNumOrDefault
  IPv6StringToNumOrNull cutIPv6 isIPAddressInRange isIPv4String isIPv6String MACNumToString MACStringToNum
  MACStringToOUI
  JSONArrayLength JSONExtract JSONExtractArrayRaw JSONExtractBool JSONExtractFloat JSONExtractInt
  JSONExtractKeys JSONExtractKeysAndValues JSONExtractKeysAndValuesRaw JSONExtractRaw JSONExtractString
  JSONExtractUInt JSONHas JSONKey JSONLength JSONType JSON_EXISTS JSON_QUERY JSON_VALUE JSONMergePatch
  isValidJSON toJSONString simpleJSONExtractBool simpleJSONExtractFloat simpleJSONExtractInt
  simpleJSONExtractRaw simpleJSONExtractString simpleJSONExtractUInt simpleJSONHas visitParamExtractBool
  visitParamExtractFloat visitParamExtractInt visitParamExtractRaw visitParamExtractString
  visitParamExtractUInt visitParamHas JSONAllPaths JSONAllPathsWithTypes JSONDynamicPaths
  JSONDynamicPathsWithTypes JSONSharedDataPaths JSONSharedDataPathsWithTypes dynamicElement dynamicType
  variantElement variantType getSubcolumn
  protocol domain domainRFC domainWithoutWWW domainWithoutWWWRFC topLevelDomain topLevelDomainRFC
  firstSignificantSubdomain firstSignificantSubdomainRFC cutToFirstSignificantSubdomain
  cutToFirstSignificantSubdomainRFC cutToFirstSignificantSubdomainWithWWW
  cutToFirstSignificantSubdomainWithWWWRFC port portRFC path pathFull queryString fragment
  queryStringAndFragment extractURLParameter extractURLParameters extractURLParameterNames URLHierarchy
  URLPathHierarchy encodeURLComponent decodeURLComponent encodeURLFormComponent decodeURLFormComponent netloc
  cutWWW cutQueryString cutFragment cutQueryStringAndFragment cutURLParameter
  UUIDNumToString UUIDStringToNum UUIDToNum UUIDv7ToDateTime generateUUIDv4 generateUUIDv7
  rand rand32 rand64 randCanonical randConstant randUniform randNormal randBernoulli randomString
  randomFixedString randomPrintableASCII
  toTypeName toColumnTypeName isConstant throwIf transform finalizeAggregation initializeAggregation
  runningAccumulate runningDifference runningDifferenceStartingWithFirstValue neighbor bar visibleWidth
  formatReadableSize formatReadableDecimalSize formatReadableQuantity formatReadableTimeDelta
  parseReadableSize parseReadableSizeOrNull parseReadableSizeOrZero parseTimeDelta countDigits
  errorCodeToName byteSize grouping
`;

/** Integer and float conversions: the engine generates these families (toInt8 … toUInt256OrDefault). */
const NUMERIC_CONVERSION = /^to(?:U?Int(?:8|16|32|64|128|256)|Float(?:32|64)|BFloat16|Decimal(?:32|64|128|256)|Date|Date32|DateTime|DateTime64|Time|Time64)(?:OrZero|OrNull|OrDefault)?$/i;

const AGGREGATE_FUNCTIONS = `
  count sum avg min max any anyLast anyHeavy any_value first_value last_value argMin argMax argAndMin argAndMax
  min_by max_by avgWeighted sumWithOverflow sumKahan sumCount uniq uniqExact uniqCombined uniqCombined64
  uniqHLL12 uniqTheta uniqUpTo groupArray groupArrayLast groupArraySorted groupArraySample groupArrayInsertAt
  groupArrayIntersect groupUniqArray groupArrayMovingAvg groupArrayMovingSum groupConcat group_concat
  string_agg array_agg array_concat_agg groupBitAnd groupBitOr groupBitXor groupBitmap groupBitmapAnd
  groupBitmapOr groupBitmapXor bit_and bit_or bit_xor topK topKWeighted approx_top_k approx_top_count
  approx_top_sum histogram sumMapWithOverflow sumMapFiltered sumMapFilteredWithOverflow
  sumMappedArrays minMappedArrays maxMappedArrays
  quantile quantiles quantileExact quantilesExact quantileExactLow quantilesExactLow quantileExactHigh
  quantilesExactHigh quantileExactExclusive quantilesExactExclusive quantileExactInclusive
  quantilesExactInclusive quantileExactWeighted quantilesExactWeighted quantileExactWeightedInterpolated
  quantilesExactWeightedInterpolated quantileInterpolatedWeighted quantilesInterpolatedWeighted
  quantileTiming quantilesTiming quantileTimingWeighted quantilesTimingWeighted quantileTDigest
  quantilesTDigest quantileTDigestWeighted quantilesTDigestWeighted quantileBFloat16 quantilesBFloat16
  quantileBFloat16Weighted quantilesBFloat16Weighted quantileDeterministic quantilesDeterministic quantileDD
  quantilesDD quantileGK quantilesGK median medianExact medianExactLow medianExactHigh medianExactWeighted
  medianTiming medianTimingWeighted medianTDigest medianTDigestWeighted medianBFloat16 medianDeterministic
  medianDD medianGK medianInterpolatedWeighted
  stddevPop stddevSamp stddevPopStable stddevSampStable varPop varSamp varPopStable varSampStable std stddev
  stddev_pop stddev_samp var_pop var_samp covarPop covarSamp covarPopStable covarSampStable covar_pop
  covar_samp corr corrStable corrMatrix covarPopMatrix covarSampMatrix skewPop skewSamp kurtPop kurtSamp
  entropy simpleLinearRegression rankCorr boundingRatio deltaSum deltaSumTimestamp exponentialMovingAverage
  exponentialTimeDecayedAvg exponentialTimeDecayedCount exponentialTimeDecayedMax exponentialTimeDecayedSum
  intervalLengthSum maxIntersections maxIntersectionsPosition sparkbar sparkBar largestTriangleThreeBuckets
  lttb nonNegativeDerivative singleValueOrNull cramersV cramersVBiasCorrected theilsU contingency
  categoricalInformationValue studentTTest welchTTest mannWhitneyUTest meanZTest kolmogorovSmirnovTest
  studentTTestOneSample analysisOfVariance anova
  windowFunnel retention sequenceMatch sequenceCount sequenceNextNode sequenceMatchEvents
  row_number rank dense_rank denseRank percent_rank percentRank cume_dist ntile lag lead lagInFrame
  leadInFrame nth_value
  anyRespectNulls anyLastRespectNulls firstValueRespectNulls lastValueRespectNulls first_value_respect_nulls
  last_value_respect_nulls any_respect_nulls anyLast_respect_nulls any_value_respect_nulls
  anyValueRespectNulls
`;

/** Aggregate function combinators (system.aggregate_function_combinators), longest first. */
const COMBINATORS = ['MergeState', 'SimpleState', 'OrDefault', 'Distinct', 'Resample', 'ForEach', 'OrNull', 'ArgMax', 'ArgMin', 'Array', 'State', 'Merge', 'Tuple', 'Null', 'Map', 'If'].map((c) =>
  c.toLowerCase(),
);

/** What the operator may use beyond the tenants' list: introspection of the server itself. */
const OPERATOR_FUNCTIONS = `
  version uptime hostName fqdn currentDatabase currentUser getSetting getSettingOrDefault serverUUID
  blockSize rowNumberInBlock rowNumberInAllBlocks formatQuery formatQuerySingleLine normalizeQuery
  normalizedQueryHash hasColumnInTable joinGet joinGetOrNull dumpColumnStructure toColumnTypeName
`;

/** Table functions of the operator: generated rows only, no files, URLs, remotes or dictionaries. */
const OPERATOR_TABLE_FUNCTIONS = new Set(['numbers', 'numbers_mt', 'zeros', 'zeros_mt', 'values', 'generate_series', 'generateSeries']);

const words = (s: string): Set<string> => new Set(s.split(/\s+/).filter(Boolean).map((w) => w.toLowerCase()));
const SCALAR_SET = words(SCALAR_FUNCTIONS);
const AGGREGATE_SET = words(AGGREGATE_FUNCTIONS);
const OPERATOR_SET = words(OPERATOR_FUNCTIONS);

/** The allow-lists as written, for tests that check every name exists in the engine. */
export const FUNCTION_ALLOW_LISTS = Object.freeze({
  scalar: [...SCALAR_FUNCTIONS.split(/\s+/).filter(Boolean)],
  aggregate: [...AGGREGATE_FUNCTIONS.split(/\s+/).filter(Boolean)],
  operator: [...OPERATOR_FUNCTIONS.split(/\s+/).filter(Boolean)],
  operatorTableFunctions: [...OPERATOR_TABLE_FUNCTIONS],
});

export function isAllowedFunction(name: string, kind: Who['kind']): boolean {
  const lower = name.toLowerCase();
  if (SCALAR_SET.has(lower) || AGGREGATE_SET.has(lower) || NUMERIC_CONVERSION.test(name)) return true;
  if (kind === 'operator' && OPERATOR_SET.has(lower)) return true;
  // an aggregate with combinators: sumIf, uniqMerge, countDistinct, avgOrNull, sumArrayIfOrNull …
  let base = lower;
  for (let stripped = true; stripped; ) {
    stripped = false;
    for (const c of COMBINATORS) {
      if (base.length > c.length && base.endsWith(c)) {
        base = base.slice(0, -c.length);
        stripped = true;
        if (AGGREGATE_SET.has(base)) return true;
        break;
      }
    }
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Engine errors → QueryRejectedError

const LIMIT_TYPES = new Set([
  'MEMORY_LIMIT_EXCEEDED',
  'TOO_MANY_ROWS',
  'TOO_MANY_BYTES',
  'TOO_MANY_ROWS_OR_BYTES',
  'TIMEOUT_EXCEEDED',
  'TOO_SLOW',
  'SET_SIZE_LIMIT_EXCEEDED',
  'TOO_DEEP_AST',
  'TOO_BIG_AST',
  'QUERY_IS_TOO_LARGE',
  'TOO_DEEP_SUBQUERIES',
  'TOO_DEEP_RECURSION',
  'TOO_MANY_COLUMNS',
  'TOO_MANY_TEMPORARY_COLUMNS',
  'TOO_MANY_TEMPORARY_NON_CONST_COLUMNS',
  'TOO_LARGE_ARRAY_SIZE',
  'TOO_LARGE_STRING_SIZE',
]);
const INVALID_TYPES = new Set(['SYNTAX_ERROR', 'UNKNOWN_QUERY_PARAMETER', 'BAD_QUERY_PARAMETER', 'EMPTY_QUERY']);
const NOT_ALLOWED_TYPES = new Set(['ACCESS_DENIED', 'NOT_ENOUGH_PRIVILEGES', 'INTO_OUTFILE_NOT_ALLOWED', 'FUNCTION_NOT_ALLOWED', 'QUERY_IS_PROHIBITED', 'SUPPORT_IS_DISABLED']);
/** The engine or the network, not the statement: these stay non-4xx. */
const INFRA_TYPES = new Set([
  'NETWORK_ERROR',
  'SOCKET_TIMEOUT',
  'ALL_CONNECTION_TRIES_FAILED',
  'TOO_MANY_SIMULTANEOUS_QUERIES',
  'LOGICAL_ERROR',
  'CANNOT_ALLOCATE_MEMORY',
  'ABORTED',
  'STD_EXCEPTION',
  'UNKNOWN_SETTING',
  'KEEPER_EXCEPTION',
  'ALL_REPLICAS_ARE_STALE',
  'NO_AVAILABLE_REPLICA',
]);

/** ClickHouse's error code/type/message from a chDB error or a @clickhouse/client ClickHouseError. */
export function engineErrorFields(err: unknown): { code: number; type: string; message: string } | null {
  if (!(err instanceof Error)) return null;
  const e = err as Error & { code?: unknown; type?: unknown };
  if (typeof e.type === 'string' && typeof e.code === 'string' && /^\d+$/.test(e.code)) {
    return { code: Number(e.code), type: e.type, message: e.message };
  }
  const m = /Code: (\d+)\. DB::Exception: ([\s\S]*?)\. \(([A-Z0-9_]+)\)(?: \(version [^)]*\))?\s*$/.exec(e.message);
  if (!m) return null;
  return { code: Number(m[1]), type: m[3] ?? '', message: m[2] ?? '' };
}

export function classifyEngineError(err: unknown, phase: 'parse' | 'check' | 'run' = 'run'): QueryRejectedError | null {
  const f = engineErrorFields(err);
  if (!f) return null;
  const msg = `${f.type}: ${clip(stripNested(f.message), 400)}`;
  if (INFRA_TYPES.has(f.type)) return null;
  if (f.type === 'MEMORY_LIMIT_EXCEEDED' && /\(total\)/.test(f.message)) return null;
  const opts = { cause: err };
  if (f.type === 'READONLY' && /Cannot modify '[^']*' setting/.test(f.message)) {
    // EXPLAIN AST applies a statement's own SETTINGS clause, which readonly refuses. Past the
    // parse, statements carry no SETTINGS (refused from the AST), so the engine refusing a
    // setting means it refused Tracklane's own (a server profile that does not match the
    // configured limits): an operations problem, not the analyst's.
    if (phase === 'parse') return new QueryRejectedError('query_not_allowed', 'SETTINGS clauses are not allowed', opts);
    return null;
  }
  if (LIMIT_TYPES.has(f.type)) return new QueryRejectedError('query_limit_exceeded', msg, opts);
  if (f.type === 'UNKNOWN_QUERY_PARAMETER') return new QueryRejectedError('query_invalid', `query parameters ({name:Type}) are not supported; ${msg}`, opts);
  if (INVALID_TYPES.has(f.type)) return new QueryRejectedError('query_invalid', msg, opts);
  if (NOT_ALLOWED_TYPES.has(f.type) || f.type === 'READONLY') return new QueryRejectedError('query_not_allowed', msg, opts);
  return new QueryRejectedError(phase === 'parse' ? 'query_invalid' : 'query_failed', msg, opts);
}

/**
 * chDB wraps some messages in a second `Code: N. DB::Exception:` prefix; the analyzer appends the
 * statement (`In scope SELECT …`), which is the analyst's own text or our wrapper around it.
 */
function stripNested(message: string): string {
  return message
    .replace(/^(?:Code: \d+\. DB::Exception: )+/, '')
    .replace(/ \(version [^)]*\)/g, '')
    .replace(/[.:]? *in scope [\s\S]*$/i, '')
    .replace(/[\s.:]+$/, '');
}

function clip(s: string, max = 80): string {
  const one = s.replace(/\s+/g, ' ');
  return one.length <= max ? one : `${one.slice(0, max)}…`;
}

function notAllowed(message: string): QueryRejectedError {
  return new QueryRejectedError('query_not_allowed', message);
}

// ---------------------------------------------------------------------------------------------
// Engines

/**
 * chDB: a connection per step group on the process's one engine.
 * TRICKY: chDB keeps every SET (and per-query settings, which the chDB connection turns into SETs)
 * on the connection for the rest of its life, and readonly = 1 refuses later SETs. So each
 * statement's connections are opened fresh, SET up in ONE statement ending in readonly = 1 (one
 * SET is checked against the settings before it, so readonly does not refuse its neighbours), and
 * closed once their statements settled (closing a busy chDB connection aborts the engine).
 */
async function chdbEngine(dataDir: string): Promise<Engine> {
  const { Session } = await import('chdb');
  // NOTE: an idle connection held for the lifetime of this object keeps the engine up: with no
  // connection left, chDB shuts the engine down and the next one boots it again (≈ 40 ms to open
  // and 7–17 ms to close, blocking the event loop, instead of 0.2 ms and 0.04 ms; measured).
  const anchor = new Session(dataDir);
  try {
    await anchor.queryAsync('SELECT 1');
  } catch (err) {
    anchor.close();
    throw err;
  }
  return {
    close: () => anchor.close(),
    // NOTE: spilling to disk would turn a memory bound into a disk-filling one (chDB defaults to
    // spilling GROUP BY / ORDER BY / JOIN at half the memory limit).
    extraSettings: { max_bytes_ratio_before_external_group_by: 0, max_bytes_ratio_before_external_sort: 0, max_bytes_ratio_before_external_join: 0 },
    open: async (_who, settings) => {
      const session = new Session(dataDir);
      let busy = 0;
      let closeWanted = false;
      const settle = (): void => {
        if (closeWanted && busy === 0) session.close();
      };
      const rows = async (sql: string): Promise<Record<string, unknown>[]> => {
        busy++;
        try {
          return parseJsonEachRow((await session.queryAsync(sql, { format: 'JSONEachRow' })).text());
        } finally {
          busy--;
          settle();
        }
      };
      try {
        await rows(setStatement(settings));
      } catch (err) {
        session.close();
        throw err;
      }
      return {
        rows,
        close: () => {
          closeWanted = true;
          settle();
        },
      };
    },
  };
}

/** A ClickHouse server: every request carries the settings (readonly among them), so a statement cannot change them. */
function serverEngine(tenantClient: ClickHouseClient, operatorClient: ClickHouseClient): Engine {
  return {
    extraSettings: {},
    close: () => undefined,
    open: async (who, settings) => {
      const client = who.kind === 'tenant' ? tenantClient : operatorClient;
      const clickhouse_settings: ClickHouseSettings = {
        ...settings,
        readonly: '1',
        default_format: 'JSONEachRow',
        // an error after the first bytes would otherwise arrive inside a 200 response
        wait_end_of_query: 1,
      };
      return {
        rows: async (sql) => {
          // NOTE: exec sends the statement as is (query() would append its own FORMAT clause)
          const res = await client.exec({ query: sql, clickhouse_settings });
          const chunks: Buffer[] = [];
          for await (const chunk of res.stream as AsyncIterable<Buffer | string>) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
          return parseJsonEachRow(Buffer.concat(chunks).toString('utf8'));
        },
        close: () => undefined,
      };
    },
  };
}

function parseJsonEachRow(text: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const line of text.split('\n')) if (line.trim() !== '') out.push(JSON.parse(line) as Record<string, unknown>);
  return out;
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
