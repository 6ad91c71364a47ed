// What a refused or failed analyst statement becomes: QueryRejectedError (always a 4xx), and the
// mapping of the engine's errors onto it, under which infrastructure failures pass through.

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

export function clip(s: string, max = 80): string {
  const one = s.replace(/\s+/g, ' ');
  return one.length <= max ? one : `${one.slice(0, max)}…`;
}

export function notAllowed(message: string): QueryRejectedError {
  return new QueryRejectedError('query_not_allowed', message);
}

/** Maps an engine error of one step to a QueryRejectedError; infrastructure failures pass through. */
export async function step<T>(phase: 'parse' | 'check' | 'run', fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof QueryRejectedError) throw err;
    const rejected = classifyEngineError(err, phase);
    if (rejected) throw rejected;
    throw err;
  }
}
