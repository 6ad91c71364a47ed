// Column values of a ClickHouse JSON row (JSONEachRow, @clickhouse/client's `json()`), read
// without casts: every table module's parse is built from these.
// NOTE: 64-bit integers come back as numbers from chDB and as strings from the HTTP server
// (DESIGN.md §4); DateTime64 columns as ms when selected through selectList(), else as
// 'YYYY-MM-DD hh:mm:ss.fff' in UTC (the tables' time zone). Both are accepted.
import { toNumber } from '../client.js';

/** A row as @clickhouse/client returns it for JSONEachRow. */
export type JsonRow = Readonly<Record<string, unknown>>;

export function str(x: unknown): string {
  return typeof x === 'string' ? x : String(x);
}

export function nullableStr(x: unknown): string | null {
  return x === null || x === undefined ? null : str(x);
}

export function num(x: unknown): number {
  return toNumber(x);
}

export function nullableNum(x: unknown): number | null {
  return x === null || x === undefined ? null : toNumber(x);
}

/** UInt8 flags (0 / 1; chDB and the server may also send booleans). */
export function flag(x: unknown): 0 | 1 {
  return x === true || (x !== false && toNumber(x) !== 0) ? 1 : 0;
}

/** Map(String, String): every value kept as a string. */
export function stringMap(x: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (x && typeof x === 'object') for (const [k, v] of Object.entries(x)) out[k] = str(v);
  return out;
}

/** Map(String, UInt64) and the like: every value as a number. */
export function numberMap(x: unknown): Record<string, number> {
  const out: Record<string, number> = {};
  if (x && typeof x === 'object') for (const [k, v] of Object.entries(x)) out[k] = toNumber(v);
  return out;
}

export function stringArray(x: unknown): string[] {
  return Array.isArray(x) ? x.map(str) : [];
}

const DATE_TIME = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d+)?$/;

/** A DateTime64 column in ms since the epoch. */
export function ms(x: unknown): number {
  if (typeof x === 'string' && DATE_TIME.test(x)) {
    const parsed = Date.parse(`${x.replace(' ', 'T')}Z`);
    if (!Number.isNaN(parsed)) return parsed;
  }
  return toNumber(x);
}

export function nullableMs(x: unknown): number | null {
  return x === null || x === undefined ? null : ms(x);
}

/** `value` if it is one of `allowed`, else a TypeError naming the column. */
export function oneOf<T extends string>(allowed: readonly T[], x: unknown, column: string): T {
  const found = allowed.find((a) => a === x);
  if (found === undefined) throw new TypeError(`${column}: unexpected value ${JSON.stringify(x)}`);
  return found;
}

/** A SELECT list of `columns`, DateTime64 ones (`timeColumns`) as ms, so parse reads them as numbers. */
export function selectList(columns: readonly string[], timeColumns: ReadonlySet<string>): string {
  return columns.map((c) => (timeColumns.has(c) ? `toUnixTimestamp64Milli(${c}) AS ${c}` : c)).join(', ');
}
