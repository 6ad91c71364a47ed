// The registry of recent overwrites the sink consults before inserting (DESIGN.md §5 step 4):
// an event received before a request but sunk after it gets the same rewrite the compactor's
// mutation applied to history. In memory, backed by `overwrite_values` so a restart keeps it.
import type { ClickHouseClient } from '@clickhouse/client';
import type { CleanEvent, JsonMap } from '../events/envelope.js';
import { toNumber } from '../clickhouse/client.js';
import type { OverwriteSubject } from '../kafka/record-types.js';
import { rewriteMap, type MapRewrite } from './overwrite-plan.js';

export interface RegisteredOverwrite {
  request_id: string;
  tenant_id: string;
  subject: OverwriteSubject;
  id: string;
  requested_at: number;
  rewrite: MapRewrite;
  /** mode delete + delete_events: events received before the request are dropped */
  delete_events: boolean;
}

export interface OverwriteRegistry {
  /** Remembers overwrites (in memory; the compactor persists them in overwrite_values). */
  record(entries: readonly RegisteredOverwrite[]): void;
  /** Loads the persisted overwrites requested since `sinceMs` (at start-up). */
  load(sinceMs: number): Promise<number>;
  /**
   * Rewrites the traits of events received at or before a recorded request for their user
   * (and account traits for their account); drops those of a deleted user whose events were
   * deleted. Events without a matching overwrite are returned as they are (same objects).
   */
  applyPendingOverwrites(events: readonly CleanEvent[]): CleanEvent[];
  readonly size: number;
}

function key(subject: OverwriteSubject, tenantId: string, id: string): string {
  return `${subject}\u0000${tenantId}\u0000${id}`;
}

export function createOverwriteRegistry(deps: { client?: ClickHouseClient } = {}): OverwriteRegistry {
  // NOTE: per key, sorted by requested_at and deduplicated by request_id; an event gets every
  // overwrite requested at or after its receipt, oldest first, so the latest value wins.
  const byKey = new Map<string, RegisteredOverwrite[]>();
  let size = 0;

  function record(entries: readonly RegisteredOverwrite[]): void {
    for (const e of entries) {
      const k = key(e.subject, e.tenant_id, e.id);
      const list = byKey.get(k) ?? [];
      if (list.some((x) => x.request_id === e.request_id)) continue;
      list.push(e);
      list.sort((a, b) => a.requested_at - b.requested_at);
      byKey.set(k, list);
      size++;
    }
  }

  async function load(sinceMs: number): Promise<number> {
    if (!deps.client) return 0;
    const rs = await deps.client.query({
      query: `SELECT request_id, tenant_id, subject, id, any(delete_events) AS delete_events,
                toUnixTimestamp64Milli(any(requested_at)) AS requested_at,
                groupArray(tuple(attr, new_value)) AS attrs
              FROM overwrite_values FINAL
              WHERE requested_at >= fromUnixTimestamp64Milli({since:Int64})
              GROUP BY request_id, tenant_id, subject, id`,
      query_params: { since: sinceMs },
      format: 'JSONEachRow',
    });
    const rows = await rs.json<{
      request_id: string;
      tenant_id: string;
      subject: OverwriteSubject;
      id: string;
      delete_events: unknown;
      requested_at: unknown;
      attrs: [string, string | null][];
    }>();
    const before = size;
    record(
      rows.map((r) => {
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
          id: r.id,
          requested_at: toNumber(r.requested_at),
          rewrite,
          delete_events: toNumber(r.delete_events) === 1,
        };
      }),
    );
    return size - before;
  }

  function pending(subject: OverwriteSubject, tenantId: string, id: string | null, receivedAt: number): RegisteredOverwrite[] {
    if (id === null) return [];
    const list = byKey.get(key(subject, tenantId, id));
    return list ? list.filter((o) => receivedAt <= o.requested_at) : [];
  }

  function applyPendingOverwrites(events: readonly CleanEvent[]): CleanEvent[] {
    if (byKey.size === 0) return [...events];
    const out: CleanEvent[] = [];
    for (const e of events) {
      const forUser = pending('user', e.tenant_id, e.user_id, e.received_at);
      const forAccount = pending('account', e.tenant_id, e.account_id, e.received_at);
      if (forUser.length === 0 && forAccount.length === 0) {
        out.push(e);
        continue;
      }
      if (forUser.some((o) => o.delete_events)) continue;
      let traits: JsonMap = e.traits;
      let accountTraits: JsonMap = e.account_traits;
      for (const o of forUser) traits = rewriteMap(traits, o.rewrite);
      for (const o of forAccount) {
        accountTraits = rewriteMap(accountTraits, o.rewrite);
        // NOTE: a group call may carry its account traits Segment-style in `traits`.
        if (e.type === 'group') traits = rewriteMap(traits, o.rewrite);
      }
      out.push(traits === e.traits && accountTraits === e.account_traits ? e : { ...e, traits, account_traits: accountTraits });
    }
    return out;
  }

  return {
    record,
    load,
    applyPendingOverwrites,
    get size() {
      return size;
    },
  };
}
