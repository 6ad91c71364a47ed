// The registry of recent overwrites the sink consults before inserting (DESIGN.md §5 step 4):
// an event received before a request but sunk after it gets the same rewrite the compactor's
// mutation applied to history; an event of a suppressed user received after the request is
// dropped and counted; an event of a user whose id an erasure replaced (replaceId) received
// before it takes the new id. In memory, backed by `overwrite_values`, `suppressions` and
// `replaced_ids`.
import { randomUUID } from 'node:crypto';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Logger } from '../core/logger.js';
import { drop, ok, type Result } from '../core/result.js';
import type { CleanEvent, JsonMap } from '../events/envelope.js';
import { toNumber } from '../clickhouse/client.js';
import type { OverwriteSubject } from '../events/overwrite-command.js';
import { overwriteValueGroupsQuery, parseOverwriteValueGroup } from '../clickhouse/tables/overwrite-values.js';
import type { JsonRow } from '../clickhouse/tables/row-values.js';
import { insertSuppressedEvents, type SuppressedEventsRow } from '../clickhouse/tables/suppressed-events.js';
import { earliestSuppressionsQuery, parseEarliestSuppression, type SuppressionRow } from '../clickhouse/tables/suppressions.js';
import { rewriteMap, type MapRewrite } from './overwrite-plan.js';
import { parseReplacedIdRow, RECENT_REPLACED_IDS_QUERY } from '../clickhouse/tables/replaced-ids.js';
import type { IdSeal } from '../privacy/id-seal.js';
import type { SubjectHash } from '../privacy/subject-hash.js';

export interface RegisteredOverwrite {
  request_id: string;
  tenant_id: string;
  subject: OverwriteSubject;
  /** keyed hash of the user/account id (subject-hash.ts): the registry (and overwrite_values) never hold it in clear */
  id_hash: string;
  requested_at: number;
  rewrite: MapRewrite;
  /** mode delete + delete_events: events received before the request are dropped */
  delete_events: boolean;
}

/** A user's suppression: its `suppressions` row (the user id as its keyed hash). */
export type RegisteredSuppression = SuppressionRow;

/** A replacing request's new id for a user (its id as the keyed hash); null once verified and forgotten. */
export interface RegisteredReplacement {
  request_id: string;
  tenant_id: string;
  id_hash: string;
  new_id: string | null;
}

export interface OverwriteRegistry {
  /** Remembers overwrites (in memory; the compactor persists them in overwrite_values). */
  record(entries: readonly RegisteredOverwrite[]): void;
  /** Remembers suppressed users (the compactor persists them in `suppressions`). */
  recordSuppressions(entries: readonly RegisteredSuppression[]): void;
  /** Remembers users' new ids (the compactor persists them sealed in `replaced_ids`). */
  recordReplacements(entries: readonly RegisteredReplacement[]): void;
  /** Forgets the new ids of these (verified) requests: a later straggler takes a random id of its own. */
  forgetReplacements(requestIds: readonly string[]): void;
  /**
   * Loads the persisted overwrites requested since `sinceMs` and the suppressions requested
   * since `suppressionsSinceMs` (default: all). Returns how many entries were new.
   */
  load(sinceMs: number, suppressionsSinceMs?: number): Promise<number>;
  /** Loads what was registered since the last load or refresh (fleet sinks poll this). */
  refresh(): Promise<number>;
  /** Writes the counts of suppressed events dropped since the last call to `suppressed_events`. */
  flushSuppressedCounts(): Promise<number>;
  /**
   * The registry's say on one event, as a stage result: it rewrites the traits of an event
   * received at or before a recorded request for its user (and account traits for its account);
   * `drop` ({@link EVENTS_DELETED}) for one of a deleted user whose events were deleted, and
   * `drop` ({@link SUPPRESSED}, counted) for one of a suppressed user received after the
   * suppression. The user id (and an alias's previous id) of a replaced user takes its new id.
   * An event without a matching entry is returned as it is (the same object).
   */
  applyPending(event: CleanEvent): Result<CleanEvent>;
  readonly size: number;
}

/** Drop reason of an event of a suppressed user received after the suppression. */
export const SUPPRESSED = 'user suppressed';
/** Drop reason of an event received before a deletion that deleted the user's events. */
export const EVENTS_DELETED = 'user events deleted';

/**
 * How far back a process loads overwrites at start: an event received before a request can
 * still be on its way to ClickHouse this long after it (Kafka retention of the clean topic is
 * the real bound; overwrite_values keeps 30 days). Suppressions are loaded in full.
 */
export const OVERWRITE_RACE_WINDOW_MS = 30 * 24 * 3600 * 1000;
const REFRESH_OVERLAP_MS = 10_000;

function key(subject: OverwriteSubject, tenantId: string, idHash: string): string {
  return `${subject}\u0000${tenantId}\u0000${idHash}`;
}

export interface OverwriteRegistryDeps {
  /** the hash the compactor registered ids under (the same TRACKLANE_ID_HASH_KEY) */
  subjectHash: SubjectHash;
  /**
   * opens the new ids in `replaced_ids` (the same key); without it a replaced user's late event
   * takes a random id of its own (never its old one)
   */
  idSeal?: IdSeal;
  client?: ClickHouseClient;
  logger?: Logger;
  /**
   * false: remember nothing (a process that applies overwrites but sinks no events — the
   * fleet compactor — has no use for them). Default true.
   */
  keep?: boolean;
}

export function createOverwriteRegistry(deps: OverwriteRegistryDeps): OverwriteRegistry {
  const keep = deps.keep ?? true;
  // NOTE: per key, sorted by requested_at and deduplicated by request_id; an event gets every
  // overwrite requested at or after its receipt, oldest first, so the latest value wins.
  const byKey = new Map<string, RegisteredOverwrite[]>();
  // tenants with overwrites: only their events' ids are hashed for a lookup
  const tenantsWithOverwrites = new Set<string>();
  let size = 0;
  // tenant → user id hash → suppression; an event's user id is hashed only for tenants here
  const suppressed = new Map<string, Map<string, RegisteredSuppression>>();
  // `${tenant}\u0000${request}\u0000${day}` → events dropped, until flushed
  let counts = new Map<string, number>();
  // request id → the replaced user's new id (null: forgotten once the request was verified)
  const replacements = new Map<string, RegisteredReplacement>();

  function recordReplacements(entries: readonly RegisteredReplacement[]): void {
    if (!keep) return;
    for (const e of entries) {
      const prior = replacements.get(e.request_id);
      // NOTE: a forgotten id stays forgotten (a stale read may still hold it)
      replacements.set(e.request_id, prior && prior.new_id === null ? prior : e);
    }
  }

  function forgetReplacements(requestIds: readonly string[]): void {
    for (const id of requestIds) {
      const r = replacements.get(id);
      if (r) replacements.set(id, { ...r, new_id: null });
    }
  }

  /** the new id of a replaced user's event received before the request, or null: not replaced */
  function newIdOf(overwrites: readonly RegisteredOverwrite[]): string | null {
    for (const o of overwrites) {
      const r = replacements.get(o.request_id);
      // TRICKY: a forgotten one still replaces: with a random id of its own, never the old one
      if (r) return r.new_id ?? `anon-${randomUUID()}`;
    }
    return null;
  }

  function recordSuppressions(entries: readonly RegisteredSuppression[]): void {
    if (!keep) return;
    for (const e of entries) {
      const forTenant = suppressed.get(e.tenant_id) ?? new Map<string, RegisteredSuppression>();
      const prior = forTenant.get(e.subject_id_hash);
      // NOTE: the earliest suppression of a user decides from when its events are dropped
      if (!prior || prior.requested_at > e.requested_at) {
        if (!prior) size++;
        forTenant.set(e.subject_id_hash, e);
      }
      suppressed.set(e.tenant_id, forTenant);
    }
  }

  function suppressedBy(e: CleanEvent): RegisteredSuppression | undefined {
    if (e.user_id === null) return undefined;
    const forTenant = suppressed.get(e.tenant_id);
    if (!forTenant) return undefined;
    const s = forTenant.get(deps.subjectHash(e.tenant_id, e.user_id));
    return s && e.received_at > s.requested_at ? s : undefined;
  }

  async function flushSuppressedCounts(): Promise<number> {
    if (counts.size === 0) return 0;
    const taken = counts;
    counts = new Map();
    const rows = [...taken].map(([k, events]): SuppressedEventsRow => {
      const [tenant_id = '', request_id = '', day = ''] = k.split('\u0000');
      return { tenant_id, request_id, day, events };
    });
    const total = rows.reduce((n, r) => n + r.events, 0);
    try {
      if (deps.client) await insertSuppressedEvents(deps.client, rows);
      deps.logger?.info({ events: total, requests: rows.length }, 'events of suppressed users dropped');
      return total;
    } catch (err) {
      for (const [k, n] of taken) counts.set(k, (counts.get(k) ?? 0) + n); // kept for the next flush
      throw err;
    }
  }

  let lastPrune = Date.now();
  /** forgets overwrites requested before the race window (suppressions are kept) */
  function prune(): void {
    const cutoff = Date.now() - OVERWRITE_RACE_WINDOW_MS;
    for (const [k, list] of byKey) {
      const kept = list.filter((o) => o.requested_at >= cutoff);
      size -= list.length - kept.length;
      if (kept.length === 0) byKey.delete(k);
      else if (kept.length !== list.length) byKey.set(k, kept);
    }
    // a replacement matters only while its request's overwrite is kept
    const live = new Set([...byKey.values()].flatMap((list) => list.map((o) => o.request_id)));
    for (const id of replacements.keys()) if (!live.has(id)) replacements.delete(id);
    lastPrune = Date.now();
  }

  function record(entries: readonly RegisteredOverwrite[]): void {
    if (!keep) return;
    for (const e of entries) {
      const k = key(e.subject, e.tenant_id, e.id_hash);
      tenantsWithOverwrites.add(e.tenant_id);
      const list = byKey.get(k) ?? [];
      if (list.some((x) => x.request_id === e.request_id)) continue;
      list.push(e);
      list.sort((a, b) => a.requested_at - b.requested_at);
      byKey.set(k, list);
      size++;
    }
  }

  // ClickHouse's clock (ms) at the last fetch: refresh() asks for rows registered since then
  let watermark: number | null = null;

  async function fetch(since: { requestedMs: number; suppressionsRequestedMs: number } | { registeredMs: number }): Promise<number> {
    const client = deps.client;
    if (!client) return 0;
    const [clock] = await (await client.query({ query: 'SELECT toUnixTimestamp64Milli(now64(3)) AS ms', format: 'JSONEachRow' })).json<{ ms: unknown }>();
    const byRegistration = 'registeredMs' in since;
    const where = (forSuppressions: boolean) =>
      byRegistration ? 'registered_at >= fromUnixTimestamp64Milli({since:Int64})' : `requested_at >= fromUnixTimestamp64Milli({${forSuppressions ? 'supSince' : 'since'}:Int64})`;
    const query_params = byRegistration ? { since: since.registeredMs } : { since: since.requestedMs, supSince: since.suppressionsRequestedMs };
    const before = size;
    const sup = await client.query({ query: earliestSuppressionsQuery(where(true)), query_params, format: 'JSONEachRow' });
    recordSuppressions((await sup.json<JsonRow>()).map(parseEarliestSuppression));
    const ids = await client.query({ query: RECENT_REPLACED_IDS_QUERY, query_params: { since: Date.now() - OVERWRITE_RACE_WINDOW_MS }, format: 'JSONEachRow' });
    recordReplacements(
      (await ids.json<JsonRow>()).map(parseReplacedIdRow).map((r) => ({
        request_id: r.request_id,
        tenant_id: r.tenant_id,
        id_hash: r.id_hash,
        new_id: r.sealed === '' ? null : (deps.idSeal?.open(r.sealed, r) ?? null),
      })),
    );
    const rs = await client.query({ query: overwriteValueGroupsQuery(where(false)), query_params, format: 'JSONEachRow' });
    record(
      (await rs.json<JsonRow>()).map(parseOverwriteValueGroup).map((r) => {
        // overwrite_values stores events-map keys with JSON-encoded values (see compactor.ts)
        const rewrite: MapRewrite = { repl: {}, drop: [] };
        for (const [attr, v] of r.attrs) {
          if (v === null) rewrite.drop.push(attr);
          else rewrite.repl[attr] = v;
        }
        return {
          request_id: r.request_id,
          tenant_id: r.tenant_id,
          subject: r.subject,
          id_hash: r.id_hash,
          requested_at: r.requested_at,
          rewrite,
          delete_events: r.delete_events === 1,
        };
      }),
    );
    watermark = toNumber(clock?.ms);
    return size - before;
  }

  const load = (sinceMs: number, suppressionsSinceMs = 0) => fetch({ requestedMs: sinceMs, suppressionsRequestedMs: suppressionsSinceMs });
  // NOTE: a margin for inserts that were in progress at the last fetch (entries are deduplicated)
  const refresh = async () => {
    if (Date.now() - lastPrune > 60_000) prune();
    return watermark === null ? load(Date.now() - OVERWRITE_RACE_WINDOW_MS) : fetch({ registeredMs: watermark - REFRESH_OVERLAP_MS });
  };

  function pending(subject: OverwriteSubject, tenantId: string, id: string | null, receivedAt: number): RegisteredOverwrite[] {
    if (id === null || !tenantsWithOverwrites.has(tenantId)) return [];
    const list = byKey.get(key(subject, tenantId, deps.subjectHash(tenantId, id)));
    return list ? list.filter((o) => receivedAt <= o.requested_at) : [];
  }

  function applyPending(e: CleanEvent): Result<CleanEvent> {
    if (byKey.size === 0 && suppressed.size === 0) return ok(e);
    const s = suppressedBy(e);
    if (s) {
      const k = `${s.tenant_id}\u0000${s.request_id}\u0000${new Date(e.received_at).toISOString().slice(0, 10)}`;
      counts.set(k, (counts.get(k) ?? 0) + 1);
      return drop(SUPPRESSED);
    }
    const forUser = pending('user', e.tenant_id, e.user_id, e.received_at);
    const forAccount = pending('account', e.tenant_id, e.account_id, e.received_at);
    // an alias's previous id is a user id too: a replaced one takes its new id
    const forPrevious = e.previous_id === null || replacements.size === 0 ? [] : pending('user', e.tenant_id, e.previous_id, e.received_at);
    if (forUser.length === 0 && forAccount.length === 0 && forPrevious.length === 0) return ok(e);
    if (forUser.some((o) => o.delete_events)) return drop(EVENTS_DELETED);
    let traits: JsonMap = e.traits;
    let accountTraits: JsonMap = e.account_traits;
    // NOTE: a group event's traits are the account's: user rewrites leave them alone
    if (e.type !== 'group') for (const o of forUser) traits = rewriteMap(traits, o.rewrite);
    for (const o of forAccount) {
      accountTraits = rewriteMap(accountTraits, o.rewrite);
      // NOTE: a group call may carry its account traits Segment-style in `traits`.
      if (e.type === 'group') traits = rewriteMap(traits, o.rewrite);
    }
    const userId = replacements.size === 0 ? null : newIdOf(forUser);
    const previousId = newIdOf(forPrevious);
    if (traits === e.traits && accountTraits === e.account_traits && userId === null && previousId === null) return ok(e);
    return ok({ ...e, traits, account_traits: accountTraits, user_id: userId ?? e.user_id, previous_id: previousId ?? e.previous_id });
  }

  return {
    record,
    recordSuppressions,
    recordReplacements,
    forgetReplacements,
    flushSuppressedCounts,
    load,
    refresh,
    applyPending,
    get size() {
      return size;
    },
  };
}
