// The compactor's reads of ClickHouse: rows come back as untyped JSON (64-bit integers as
// numbers from chDB, as strings over HTTP) and are parsed field by field, never cast.
import type { ClickHouseClient } from '@clickhouse/client';
import { toNumber } from '../clickhouse/client.js';
import { accountSourceSchema, type JsonMap } from '../events/envelope.js';
import type { AccountRow, UserRow } from '../sink/event-rows.js';

export type RawRow = Readonly<Record<string, unknown>>;

/** The rows of a JSONEachRow query, unparsed. */
export async function queryRows(client: ClickHouseClient, query: string, query_params?: Record<string, unknown>): Promise<RawRow[]> {
  const rs = await client.query({ query, format: 'JSONEachRow', ...(query_params ? { query_params } : {}) });
  return rs.json<Record<string, unknown>>();
}

export function str(x: unknown): string {
  if (typeof x === 'string') return x;
  if (typeof x === 'number' || typeof x === 'bigint') return String(x);
  throw new TypeError(`expected a string, got ${typeof x}`);
}
export function nullableStr(x: unknown): string | null {
  return x === null || x === undefined ? null : str(x);
}
export function strArray(x: unknown): string[] {
  if (!Array.isArray(x)) throw new TypeError(`expected an array, got ${typeof x}`);
  return x.map(str);
}
export function strMap(x: unknown): JsonMap {
  if (x === null || typeof x !== 'object' || Array.isArray(x)) throw new TypeError(`expected a map, got ${typeof x}`);
  const out: JsonMap = {};
  for (const [k, v] of Object.entries(x)) out[k] = str(v);
  return out;
}
function flag(x: unknown): 0 | 1 {
  return toNumber(x) ? 1 : 0;
}

/** A `users` row; the time columns selected as epoch milliseconds. */
export function parseUserRow(r: RawRow): UserRow {
  return {
    tenant_id: str(r.tenant_id),
    user_id: str(r.user_id),
    email: nullableStr(r.email),
    first_name: nullableStr(r.first_name),
    last_name: nullableStr(r.last_name),
    name: nullableStr(r.name),
    phone: nullableStr(r.phone),
    title: nullableStr(r.title),
    company: nullableStr(r.company),
    account_id: nullableStr(r.account_id),
    traits: strMap(r.traits),
    first_seen: toNumber(r.first_seen),
    last_seen: toNumber(r.last_seen),
    identity_anonymized: flag(r.identity_anonymized),
    version: toNumber(r.version),
    is_deleted: flag(r.is_deleted),
    updated_at: toNumber(r.updated_at),
  };
}

/** An `accounts` row; `updated_at` selected as epoch milliseconds. */
export function parseAccountRow(r: RawRow): AccountRow {
  return {
    tenant_id: str(r.tenant_id),
    account_id: str(r.account_id),
    domain: nullableStr(r.domain),
    source: accountSourceSchema.parse(r.source),
    name: nullableStr(r.name),
    traits: strMap(r.traits),
    version: toNumber(r.version),
    is_deleted: flag(r.is_deleted),
    updated_at: toNumber(r.updated_at),
  };
}
