// The fault harness's ledger: a load generator that records every batch the
// collector answered 2xx for (and when), and the check of ClickHouse against it — lost
// (acknowledged, not stored), stored more than once through FINAL, physical copies before merges.
//
// NOTE: event ids are `<idPrefix><batch, 9 digits>.<i>` and a batch is acknowledged as a whole,
// so the ledger keeps one entry per batch (a soak acknowledges millions of events), and the
// zero-padded batch keeps ids in batch order in the table's sort key (tenant_id, event_id): a
// poll for recent batches reads a key range, not the tenant's whole history.
import type { ClickHouseClient } from '@clickhouse/client';
import { sendBatch } from '../../test/support/fleet.js';

export interface AckedBatch {
  batch: number;
  /** when the 2xx arrived (ms since epoch) */
  at: number;
  /** set by the latency poller once all its events are visible */
  seen?: boolean;
}

export interface Ledger {
  readonly tenantId: string;
  readonly idPrefix: string;
  readonly batchSize: number;
  /** batches answered 2xx, in the order they were */
  readonly acked: AckedBatch[];
  /** requests answered otherwise (503 while Kafka is away is expected; -1: no answer), by status */
  readonly refused: Map<number, number>;
  acknowledgedEvents(): number;
  /** events per second from now on */
  setRate(eventsPerSec: number): void;
  stop(): Promise<void>;
}

export interface LoadOptions {
  /** the collector's address, asked before every request (a restarted collector listens elsewhere) */
  url: () => string;
  writeKey: string;
  tenantId: string;
  idPrefix: string;
  eventsPerSec: number;
  batch?: number;
  /** distinct user ids (`user-<n>`) the events carry */
  users?: number;
  /** concurrent requests (1: one at a time, paced) */
  concurrency?: number;
}

export const eventId = (idPrefix: string, batch: number, i: number): string => `${batchKey(idPrefix, batch)}.${i}`;
export const batchKey = (idPrefix: string, batch: number): string => `${idPrefix}${String(batch).padStart(9, '0')}`;
export const clearUserId = (n: number): string => `user-${n}`;

/** Posts batches of fresh events at about `eventsPerSec` until stopped; never gives up on errors. */
export function startLoad(opts: LoadOptions): Ledger {
  const batchSize = opts.batch ?? 50;
  const users = opts.users ?? 24;
  const acked: AckedBatch[] = [];
  const refused = new Map<number, number>();
  let nextBatch = 0;
  let running = true;
  let periodMs = (1000 * batchSize) / opts.eventsPerSec;
  const worker = async (): Promise<void> => {
    let next = Date.now();
    while (running) {
      const batch = nextBatch++;
      const events = Array.from({ length: batchSize }, (_, i) => ({
        type: 'track',
        event: 'Fault Load',
        messageId: eventId(opts.idPrefix, batch, i),
        userId: clearUserId((batch + i) % users),
      }));
      const status = await sendBatch(opts.url(), opts.writeKey, events).catch(() => -1);
      if (status >= 200 && status < 300) acked.push({ batch, at: Date.now() });
      else refused.set(status, (refused.get(status) ?? 0) + 1);
      next += periodMs * (opts.concurrency ?? 1);
      const wait = next - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      else next = Date.now();
    }
  };
  const loops = Array.from({ length: opts.concurrency ?? 1 }, () => worker());
  return {
    tenantId: opts.tenantId,
    idPrefix: opts.idPrefix,
    batchSize,
    acked,
    refused,
    acknowledgedEvents: () => acked.length * batchSize,
    setRate(eventsPerSec) {
      periodMs = (1000 * batchSize) / eventsPerSec;
    },
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

export interface LedgerCheck {
  acknowledged: number;
  /** acknowledged ids not stored (all of them; the report prints the first few) */
  lost: string[];
  /** ids stored more than once through FINAL (must be none; at most 1000 listed) */
  duplicated: string[];
  duplicatedCount: number;
  /** rows before merges beyond one per id (redeliveries; allowed) */
  physicalCopies: number;
}

const rows = async <T>(ch: ClickHouseClient, query: string, params: Record<string, unknown>): Promise<T[]> =>
  (await ch.query({ query, query_params: params, format: 'JSONEachRow' })).json<T>();

/** Stored rows of the ledger's tenant by batch, through FINAL and physically. */
export async function checkLedger(ch: ClickHouseClient, ledger: Ledger): Promise<LedgerCheck> {
  const params = { t: ledger.tenantId, p: ledger.idPrefix, l: ledger.idPrefix.length };
  const batchExpr = "toUInt64OrZero(splitByChar('.', substring(event_id, {l:UInt32} + 1))[1])";
  const perBatch = await rows<{ b: string; n: string }>(
    ch,
    `SELECT ${batchExpr} AS b, uniqExact(event_id) AS n FROM events FINAL WHERE tenant_id = {t:String} AND startsWith(event_id, {p:String}) GROUP BY b`,
    params,
  );
  const stored = new Map(perBatch.map((r) => [Number(r.b), Number(r.n)]));
  const incomplete = ledger.acked.filter((a) => (stored.get(a.batch) ?? 0) < ledger.batchSize).map((a) => a.batch);
  const lost: string[] = [];
  if (incomplete.length > 0) {
    const present = new Set(
      (
        await rows<{ event_id: string }>(
          ch,
          `SELECT event_id FROM events FINAL WHERE tenant_id = {t:String} AND startsWith(event_id, {p:String}) AND ${batchExpr} IN {bs:Array(UInt64)}`,
          { ...params, bs: incomplete },
        )
      ).map((r) => r.event_id),
    );
    for (const b of incomplete) for (let i = 0; i < ledger.batchSize; i++) if (!present.has(eventId(ledger.idPrefix, b, i))) lost.push(eventId(ledger.idPrefix, b, i));
  }
  const dups = await rows<{ event_id: string }>(
    ch,
    'SELECT event_id FROM events FINAL WHERE tenant_id = {t:String} GROUP BY event_id HAVING count() > 1 LIMIT 1000',
    params,
  );
  const [totals] = await rows<{ physical: string; distinct: string; final: string }>(
    ch,
    `SELECT (SELECT count() FROM events WHERE tenant_id = {t:String}) AS physical,
            (SELECT uniqExact(event_id) FROM events WHERE tenant_id = {t:String}) AS distinct,
            (SELECT count() FROM events FINAL WHERE tenant_id = {t:String}) AS final`,
    params,
  );
  const distinct = Number(totals?.distinct ?? 0);
  return {
    acknowledged: ledger.acknowledgedEvents(),
    lost,
    duplicated: dups.map((r) => r.event_id),
    duplicatedCount: Number(totals?.final ?? 0) - distinct,
    physicalCopies: Number(totals?.physical ?? 0) - distinct,
  };
}

/** Rows of some tenants through FINAL (for recovery times). */
export async function storedCount(ch: ClickHouseClient, tenantIds: readonly string[]): Promise<number> {
  const [r] = await rows<{ n: string }>(ch, 'SELECT count() AS n FROM events FINAL WHERE tenant_id IN {t:Array(String)}', { t: tenantIds });
  return Number(r?.n ?? 0);
}
