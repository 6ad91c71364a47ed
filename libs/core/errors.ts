// What of an error may be logged (see safeErrorFields).
/**
 * What of an error may be logged: ClickHouse's error code and type, else the error's class
 * name. NOTE: never the message — ClickHouse parse errors quote the offending row (user ids,
 * IPs, user agents) and pino's path redaction cannot see inside a string.
 * TRICKY: duck-typed, not `instanceof ClickHouseError`: chDB throws the ClickHouseError of
 * its own copy of @clickhouse/client-common, a different class (measured, chdb 3.4.0).
 */
export function safeErrorFields(err: unknown): { code?: string; type?: string; error: string } {
  const name = err instanceof Error ? err.name : typeof err;
  if (err instanceof Error && 'code' in err && 'type' in err) {
    const { code, type } = err as { code: unknown; type: unknown };
    // NOTE: Node system errors have a string `code` (ECONNREFUSED) but no `type`.
    if (typeof code === 'string' && /^\d+$/.test(code) && typeof type === 'string') return { code, type, error: name };
  }
  const sysCode = err instanceof Error && 'code' in err && typeof err.code === 'string' && /^[A-Z_]+$/.test(err.code) ? err.code : undefined;
  return sysCode ? { error: `${name} ${sysCode}` } : { error: name };
}
