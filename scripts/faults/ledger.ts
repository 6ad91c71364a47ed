// The fault harness's ledger (issue 13): a load generator that records every event id the
// collector answered 2xx for, and the check of ClickHouse against it — lost (acknowledged, not
// stored), stored more than once through FINAL, physical copies before merges.
import type { ClickHouseClient } from '@clickhouse/client';
import { sendBatch } from '../../test/support/fleet.js';

export interface Ledger {
  /** ids answered 2xx, in the order they were */
  readonly acknowledged: string[];
  /** requests answered otherwise (503 while Kafka is away is expected), by status */
  readonly refused: Map<number, number>;
  stop(): Promise<void>;
}

/** Posts batches of fresh events at about `eventsPerSec` until stopped; never gives up on errors. */
export function startLoad(opts: { url: string; writeKey: string; idPrefix: string; eventsPerSec: number; batch?: number; users?: number }): Ledger {
  const batch = opts.batch ?? 50;
  const users = opts.users ?? 24;
  const acknowledged: string[] = [];
  const refused = new Map<number, number>();
  let n = 0;
  let running = true;
  const periodMs = (1000 * batch) / opts.eventsPerSec;
  const loop = (async () => {
    let next = Date.now();
    while (running) {
      const ids = Array.from({ length: batch }, () => `${opts.idPrefix}${n++}`);
      const status = await sendBatch(
        opts.url,
        opts.writeKey,
        ids.map((id, i) => ({ type: 'track', event: 'Fault Load', messageId: id, userId: `user-${(n + i) % users}` })),
      ).catch(() => -1);
      if (status >= 200 && status < 300) acknowledged.push(...ids);
      else refused.set(status, (refused.get(status) ?? 0) + 1);
      next += periodMs;
      const wait = next - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      else next = Date.now();
    }
  })();
  return {
    acknowledged,
    refused,
    async stop() {
      running = false;
      await loop;
    },
  };
}

export interface LedgerCheck {
  acknowledged: number;
  stored: number;
  /** acknowledged ids not stored */
  lost: string[];
  /** ids stored more than once through FINAL (must be none) */
  duplicated: string[];
  /** rows before merges beyond one per id (redeliveries; allowed) */
  physicalCopies: number;
}

/** Stored rows of a tenant by event id, through FINAL and physically. */
export async function checkLedger(ch: ClickHouseClient, tenantId: string, acknowledged: readonly string[]): Promise<LedgerCheck> {
  const rows = await (
    await ch.query({
      query: 'SELECT event_id, count() AS n FROM events FINAL WHERE tenant_id = {t:String} GROUP BY event_id',
      query_params: { t: tenantId },
      format: 'JSONEachRow',
    })
  ).json<{ event_id: string; n: string | number }>();
  const stored = new Map(rows.map((r) => [r.event_id, Number(r.n)]));
  const [physical] = await (
    await ch.query({ query: 'SELECT count() AS n FROM events WHERE tenant_id = {t:String}', query_params: { t: tenantId }, format: 'JSONEachRow' })
  ).json<{ n: string | number }>();
  return {
    acknowledged: acknowledged.length,
    stored: stored.size,
    lost: acknowledged.filter((id) => !stored.has(id)),
    duplicated: [...stored].filter(([, c]) => c > 1).map(([id]) => id),
    physicalCopies: Number(physical?.n ?? 0) - stored.size,
  };
}

/** Rows of a tenant through FINAL (for recovery times). */
export async function storedCount(ch: ClickHouseClient, tenantId: string): Promise<number> {
  const [r] = await (
    await ch.query({ query: 'SELECT count() AS n FROM events FINAL WHERE tenant_id = {t:String}', query_params: { t: tenantId }, format: 'JSONEachRow' })
  ).json<{ n: string | number }>();
  return Number(r?.n ?? 0);
}
