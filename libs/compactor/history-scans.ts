// Scans of the history a round rewrites — trait snapshots (identify_snapshots, and `events` rows
// written before it existed), a deleted user's events, a suppressed user's late events, dead
// letters — keyed by the staged lookup tables, so no id or value goes into any SQL text. Used
// before the rewrite (to count and capture old values) and after it (to verify).
import type { ClickHouseClient } from '@clickhouse/client';
import { toNumber } from '../clickhouse/client.js';
import { parseDeadLetterPayload } from '../clickhouse/tables/dead-letters.js';
import { jsonStrings } from '../core/json-strings.js';
import type { OverwriteCommand, OverwriteSubject } from '../events/overwrite-command.js';
import { affectedExpr, DEAD_LETTER_HASH, DELETED_EVENTS_WHERE, GROUP_TRAITS, historyWhere, idExprOf, REPLACED_USER_WHERE, replacedWhere, staleExpr, SUPPRESSED_WHERE, USER_ID, type HistoryTable } from './mutation-sql.js';
import { keyOf, type Plan } from './round-plan.js';
import { nullableStr, queryRows, str, strArray } from './row-parsers.js';

export interface HistoryOfSubject {
  /** event (or snapshot) rows whose maps hold an affected key */
  n: number;
  /** the distinct values under the affected keys */
  values: string[];
  /** event rows still holding something other than the new values */
  stale: number;
}

/**
 * Per subject key: rows of `from` (identify_snapshots or events, HISTORY_TABLES) whose maps hold
 * affected keys, and the distinct values there.
 */
export async function historyValues(client: ClickHouseClient, subject: OverwriteSubject, from: string): Promise<Map<string, HistoryOfSubject>> {
  const id = idExprOf(subject);
  const maps = subject === 'user' ? ['traits'] : ['account_traits', GROUP_TRAITS];
  const affected = maps.map((m) => affectedExpr(m, subject, id));
  const stale = maps.map((m) => staleExpr(m, subject, id)).join(' OR ');
  const found = await queryRows(
    client,
    `SELECT tenant_id, ${id} AS id,
            countIf(${affected.map((a) => `notEmpty(${a})`).join(' OR ')}) AS n,
            countIf(${stale}) AS stale,
            groupUniqArrayArray(arrayConcat(${affected.map((a) => `mapValues(${a})`).join(', ')})) AS vals
     FROM ${from} WHERE ${historyWhere(subject)} GROUP BY tenant_id, id`,
  );
  const out = new Map<string, HistoryOfSubject>();
  for (const r of found) {
    out.set(keyOf({ subject, tenant_id: str(r.tenant_id), id: str(r.id) }), { n: toNumber(r.n), values: strArray(r.vals), stale: toNumber(r.stale) });
  }
  return out;
}

/** historyValues of several tables as one: rows and stale rows summed, values united. */
export async function historyValuesOf(client: ClickHouseClient, subject: OverwriteSubject, from: readonly string[]): Promise<Map<string, HistoryOfSubject>> {
  const out = new Map<string, HistoryOfSubject>();
  for (const table of from) {
    for (const [k, h] of await historyValues(client, subject, table)) {
      const seen = out.get(k);
      out.set(k, seen ? { n: seen.n + h.n, stale: seen.stale + h.stale, values: [...new Set([...seen.values, ...h.values])] } : h);
    }
  }
  return out;
}

/**
 * Whether `from` (events) still holds any trait map: rows written before migration 0010 moved
 * the snapshots to identify_snapshots. A round that finds some moves them (legacy-snapshots.ts);
 * while any remain, it rewrites `events` too and verification scans it.
 * NOTE: a query, every round and again at verification, never a flag: a row with traits in
 * `events` (an old-version sink during an upgrade, a restored backup) is always seen. It reads
 * two columns of `events` and stops at the first row found.
 */
export async function eventsHoldSnapshots(client: ClickHouseClient, from = 'default.events'): Promise<boolean> {
  const [r] = await queryRows(client, `SELECT count() AS n FROM (SELECT 1 FROM ${from} WHERE notEmpty(traits) OR notEmpty(account_traits) LIMIT 1)`);
  return toNumber(r?.n) > 0;
}

/** Per user key: how many of its events (FINAL) match `where`. */
async function eventCountsPerUser(client: ClickHouseClient, where: string): Promise<Map<string, number>> {
  const found = await queryRows(client, `SELECT tenant_id, ${USER_ID} AS id, count() AS n FROM default.events FINAL WHERE ${where} GROUP BY tenant_id, id`);
  return new Map(found.map((r) => [keyOf({ subject: 'user', tenant_id: str(r.tenant_id), id: str(r.id) }), toNumber(r.n)]));
}

/** Per user key: how many of its events received before the request a delete removes. */
export const deletedEventCounts = (client: ClickHouseClient): Promise<Map<string, number>> => eventCountsPerUser(client, DELETED_EVENTS_WHERE);

/**
 * Per replaced user key: how many of its events received before the request take its new id.
 * NOTE: by user_id; an event naming the user only as another's previous id is rewritten too,
 * but counted under its own user.
 */
export const replacedEventCounts = (client: ClickHouseClient): Promise<Map<string, number>> => eventCountsPerUser(client, REPLACED_USER_WHERE);

/** How many rows of `from` (a copy of `table`) still hold a replaced id (every copy, no FINAL). */
export async function countReplacedIds(client: ClickHouseClient, table: HistoryTable, from: string): Promise<number> {
  const [r] = await queryRows(client, `SELECT count() AS n FROM ${from} WHERE ${replacedWhere(table)}`);
  return toNumber(r?.n);
}

export interface LateEvents {
  tenant_id: string;
  /** user key (keyOf) */
  key: string;
  /** YYYY-MM-DD of received_at */
  day: string;
  events: number;
}

/** A suppressed user's events received after the request, per user and day. */
export async function lateSuppressedEvents(client: ClickHouseClient): Promise<LateEvents[]> {
  const found = await queryRows(
    client,
    `SELECT tenant_id, ${USER_ID} AS id, toString(toDate(received_at)) AS day, count() AS n
     FROM default.events WHERE ${SUPPRESSED_WHERE} GROUP BY tenant_id, id, day`,
  );
  return found.map((r) => {
    const tenantId = str(r.tenant_id);
    return { tenant_id: tenantId, key: keyOf({ subject: 'user', tenant_id: tenantId, id: str(r.id) }), day: str(r.day), events: toNumber(r.n) };
  });
}

/** How many of a deleted user's events received before the request remain in `from` (every copy, no FINAL). */
export async function countDeletedEvents(client: ClickHouseClient, from: string): Promise<number> {
  const [r] = await queryRows(client, `SELECT count() AS n FROM ${from} WHERE ${DELETED_EVENTS_WHERE}`);
  return toNumber(r?.n);
}

/** How many of a suppressed user's late events remain in `from`. */
export async function countSuppressedEvents(client: ClickHouseClient, from: string): Promise<number> {
  const [r] = await queryRows(client, `SELECT count() AS n FROM ${from} WHERE ${SUPPRESSED_WHERE}`);
  return toNumber(r?.n);
}

/** The batch's tenants that have pseudonymized events stored. */
export async function anonymizedTenants(client: ClickHouseClient, cmds: readonly OverwriteCommand[]): Promise<Set<string>> {
  const found = await queryRows(client, `SELECT DISTINCT tenant_id FROM default.events WHERE tenant_id IN {tenants:Array(String)} AND identity_anonymized = 1`, {
    tenants: [...new Set(cmds.map((c) => c.tenant_id))],
  });
  return new Set(found.map((r) => str(r.tenant_id)));
}

/**
 * The text of a dead letter an old value could be in: every string of its input (nested JSON
 * text included, as stored), or the bytes of an unreadable record read as UTF-8.
 */
function deadLetterText(payload: string, error: string | null): string {
  const parsed = parseDeadLetterPayload(payload);
  const parts: string[] = [error ?? ''];
  if ('unreadable' in parsed) parts.push(parsed.unreadable.toString('utf8'));
  else jsonStrings(parsed.input, parts);
  return parts.join('\n');
}

export interface DeadLettersHolding {
  /** DEAD_LETTER_HASH of each dead letter holding an old value */
  hashes: string[];
  /** per request id: how many such dead letters */
  perRequest: Map<string, number>;
}

/**
 * Dead letters of the batch's tenants, received before its requests, that contain an old
 * value: their hashes, and per request how many. Searched here in memory (the input's strings,
 * an unreadable record's bytes, the error), so no value goes into any SQL.
 */
export async function deadLettersHolding(client: ClickHouseClient, plans: readonly Plan[], from = 'default.dead_letters'): Promise<DeadLettersHolding> {
  const perRequest = new Map<string, number>();
  const hashes: string[] = [];
  const byTenant = new Map<string, Plan[]>();
  for (const p of plans) {
    if (p.oldValues.size === 0) continue;
    const list = byTenant.get(p.cmd.tenant_id);
    if (list) list.push(p);
    else byTenant.set(p.cmd.tenant_id, [p]);
  }
  if (byTenant.size === 0) return { hashes, perRequest };
  const until = Math.max(...plans.map((p) => p.cmd.requested_at));
  const found = await queryRows(
    client,
    `SELECT tenant_id, toString(${DEAD_LETTER_HASH}) AS h, payload, error FROM ${from}
     WHERE tenant_id IN {tenants:Array(String)} AND received_at <= fromUnixTimestamp64Milli({until:Int64})`,
    { tenants: [...byTenant.keys()], until },
  );
  for (const r of found) {
    const text = deadLetterText(str(r.payload), nullableStr(r.error));
    const matching = (byTenant.get(str(r.tenant_id)) ?? []).filter((p) => [...p.oldValues].some((v) => v.length >= 2 && !p.newValues.has(v) && text.includes(v)));
    if (matching.length === 0) continue;
    hashes.push(str(r.h));
    for (const p of matching) perRequest.set(p.cmd.request_id, (perRequest.get(p.cmd.request_id) ?? 0) + 1);
  }
  return { hashes, perRequest };
}
