// Receipts of overwrite commands in `overwrite_requests` (one row per command, latest version
// wins): written `pending` when a request is accepted, then by the compactor as it goes; and
// read back per API request (an erasure or a Data Loader chunk is one request of many commands).
// In the fleet a pending command outlived by the overwrites topic's retention is `failed`
// (`expired before applied`), and a receipt says by when Kafka's copies are gone (copiesExpireBy).
import type { ClickHouseClient } from '@clickhouse/client';
import { toNumber } from '../clickhouse/client.js';
import { copiesHorizonMs, type BrokerRetention } from '../kafka/topic-retention.js';
import type { OverwriteCommand } from '../events/overwrite-command.js';
import type { SubjectHash } from '../privacy/subject-hash.js';
import {
  OVERWRITE_REQUEST_SELECT,
  RECEIPT_STATUSES,
  insertOverwriteRequests,
  parseOverwriteRequestRow,
  parseReceipt,
  type Receipt,
  type ReceiptStatus,
} from '../clickhouse/tables/overwrite-requests.js';
import { ms, nullableMs, nullableStr, numberMap, oneOf, str, type JsonRow } from '../clickhouse/tables/row-values.js';

export type { Receipt, ReceiptStatus };

/** What `GET /v1/admin/requests/:id` answers: the request's commands summed up. */
export interface RequestReceipt {
  requestId: string;
  /** the tenant that made the request (every command of a request is of one tenant) */
  tenantId: string;
  status: ReceiptStatus;
  /** commands the request was split into (one per user of an erasure, per row of a load) */
  commands: number;
  rowsRewritten: Record<string, number>;
  reason: string | null;
  requestedAt: number;
  verifiedAt: number | null;
  /** later events of suppressed users dropped so far */
  suppressedEvents: number;
  /**
   * ms: by when every copy of the subject's data in transit is gone — in the fleet the request
   * time + the longest retention of the topics that held it (requestReceipt()); embedded, the
   * verification time once the queue's journal no longer holds the commands. null: not known (yet;
   * in the fleet also when the brokers' settings could not be read). NOTE: it assumes the pipeline
   * had no lag: a copy a stage wrote later (a fail-closed pause, a dead letter) lives longer.
   */
  copiesExpireBy: number | null;
}

export interface ReceiptStore {
  /** Writes receipts at `version` (the compactor passes its monotonic clock). */
  write(receipts: readonly Receipt[], version: number): Promise<void>;
  /** Writes `pending` receipts for newly accepted commands, below any version the compactor writes. */
  writePending(commands: readonly OverwriteCommand[]): Promise<void>;
  read(commandIds: readonly string[]): Promise<Map<string, Receipt>>;
  /** The request's receipt: its commands are `<requestId>` or `<requestId>/<n>` (copiesExpireBy: null). */
  forRequest(requestId: string): Promise<RequestReceipt | undefined>;
  /**
   * Marks `failed` (EXPIRED_BEFORE_APPLIED) the pending commands requested more than `ttlMs`
   * before `now` — of one request, or all. Returns how many.
   */
  expirePending(ttlMs: number, opts?: { requestId?: string; now?: number }): Promise<number>;
}

export const EXPIRED_BEFORE_APPLIED = 'expired before applied';

/** What the fleet's receipts need to know of Kafka's retention. */
export interface ReceiptRetention {
  /** the overwrites topic's retention.ms: a command still pending after it was deleted unapplied; null: kept forever */
  pendingTtlMs: number | null;
  /**
   * copiesExpireBy = request time + this (topic-retention.ts copiesHorizonMs); null: some topic
   * keeps records forever, or the brokers' settings could not all be read
   */
  copiesHorizonMs: number | null;
}

export function receiptRetention(broker: BrokerRetention): ReceiptRetention {
  // NOTE: an overwrites retention the broker did not tell is the configured one (readBrokerRetention):
  // good enough to expire pending commands by; the horizon, a promise to the caller, is then null.
  return { pendingTtlMs: broker.topics.overwrites.retentionMs, copiesHorizonMs: copiesHorizonMs(broker) };
}

/** How often the fleet re-reads the brokers' retention settings (a `kafka-configs --alter` needs no restart). */
export const BROKER_RETENTION_REFRESH_MS = 5 * 60_000;

export interface ReceiptRetentionWatch {
  /** the latest reading */
  current(): ReceiptRetention;
  stop(): Promise<void>;
}

/**
 * Reads the brokers' retention settings now (a failure is the caller's: the service does not
 * start), then every `everyMs`. A later reading that fails leaves the horizon unknown (null)
 * until one succeeds, and the pending TTL as last read. Warnings about what the brokers did not
 * tell are logged once until a reading tells everything again.
 */
export async function watchReceiptRetention(opts: {
  read: (logger: { warn(obj: object, msg: string): void }) => Promise<BrokerRetention>;
  everyMs?: number;
  logger: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
}): Promise<ReceiptRetentionWatch> {
  const warned = new Set<string>();
  const once = {
    warn(obj: object, msg: string) {
      if (warned.has(msg)) return;
      warned.add(msg);
      opts.logger.warn(obj, msg);
    },
  };
  const readNow = async (): Promise<ReceiptRetention> => {
    const r = receiptRetention(await opts.read(once));
    if (r.copiesHorizonMs !== null) warned.clear();
    return r;
  };
  let current = await readNow();
  let running: Promise<void> | null = null;
  const refresh = () => {
    running ??= readNow()
      .then(
        (next) => {
          if (next.pendingTtlMs !== current.pendingTtlMs || next.copiesHorizonMs !== current.copiesHorizonMs) {
            opts.logger.info({ pendingTtlMs: next.pendingTtlMs, copiesHorizonMs: next.copiesHorizonMs }, 'the brokers\' retention settings changed');
          }
          current = next;
        },
        (err: unknown) => {
          // NOTE: what the brokers hold now is not known: promise no horizon meanwhile
          if (current.copiesHorizonMs !== null) opts.logger.warn({ err: err instanceof Error ? err.name : 'error' }, 'cannot re-read the brokers\' retention settings: receipts carry no copiesExpireBy until they are read');
          current = { ...current, copiesHorizonMs: null };
        },
      )
      .finally(() => {
        running = null;
      });
  };
  const timer = setInterval(refresh, opts.everyMs ?? BROKER_RETENTION_REFRESH_MS);
  timer.unref();
  return {
    current: () => current,
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}

/**
 * The fleet's receipt of a request, or undefined when there is none or `mayRead` refuses its
 * tenant. Its expired pending commands are failed (so an answer never says pending for a command
 * Kafka no longer holds) only after that check — a caller of another tenant causes no write —
 * then copiesExpireBy from the horizon.
 */
export async function requestReceipt(
  store: ReceiptStore,
  requestId: string,
  retention: ReceiptRetention,
  opts: { mayRead?: (tenantId: string) => boolean; now?: number } = {},
): Promise<RequestReceipt | undefined> {
  const now = opts.now ?? Date.now();
  let receipt = await store.forRequest(requestId);
  if (!receipt || (opts.mayRead && !opts.mayRead(receipt.tenantId))) return undefined;
  // NOTE: requestedAt is the request's oldest command: none older than the TTL, nothing to expire
  if (retention.pendingTtlMs !== null && receipt.requestedAt < now - retention.pendingTtlMs) {
    if ((await store.expirePending(retention.pendingTtlMs, { requestId, now })) > 0) receipt = (await store.forRequest(requestId)) ?? receipt;
  }
  return { ...receipt, copiesExpireBy: retention.copiesHorizonMs === null ? null : receipt.requestedAt + retention.copiesHorizonMs };
}

/** How often the compactor fails expired pending commands (GET of a receipt does it for its own request at once). */
export const PENDING_EXPIRY_INTERVAL_MS = 5 * 60_000;

/**
 * The compactor's sweep: at start and every `everyMs`, pending commands older than `ttlMs()` fail
 * as EXPIRED_BEFORE_APPLIED. A failed sweep is logged and tried again at the next one.
 */
export function startPendingExpiry(opts: {
  store: Pick<ReceiptStore, 'expirePending'>;
  /** read at each sweep (the brokers' settings are re-read: watchReceiptRetention); null: no sweep */
  ttlMs: () => number | null;
  everyMs?: number;
  logger: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
}): { stop(): Promise<void> } {
  let running: Promise<void> | null = null;
  const sweep = () => {
    const ttlMs = opts.ttlMs();
    if (ttlMs === null) return;
    running ??= opts.store
      .expirePending(ttlMs)
      .then(
        (n) => {
          if (n > 0) opts.logger.info({ commands: n, ttlMs }, 'pending overwrite commands expired before applied');
        },
        (err: unknown) => opts.logger.warn({ err: err instanceof Error ? err.name : 'error' }, 'could not expire pending overwrite receipts'),
      )
      .finally(() => {
        running = null;
      });
  };
  sweep();
  const timer = setInterval(sweep, opts.everyMs ?? PENDING_EXPIRY_INTERVAL_MS);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}

/** the request a command belongs to (`<requestId>/<n>` → `<requestId>`) */
export const requestIdOf = (commandId: string): string => commandId.split('/')[0] ?? commandId;

export function pendingReceipt(cmd: OverwriteCommand, subjectHash: SubjectHash, attempts = 0): Receipt {
  return {
    request_id: cmd.request_id,
    tenant_id: cmd.tenant_id,
    subject: cmd.subject,
    subject_id_hash: subjectHash(cmd.tenant_id, cmd.id),
    mode: cmd.mode,
    status: 'pending',
    rows_rewritten: {},
    reason: null,
    attempts,
    requested_at: cmd.requested_at,
    applied_at: null,
    verified_at: null,
  };
}

// NOTE: the least advanced command decides the request's status.
const STATUS_ORDER = ['failed', 'pending', 'applied', 'verified'] as const;
// NOTE: ids go in query parameters: chunked so a 100k-command request stays far below URL limits.
const IDS_PER_QUERY = 2_000;
/** expired commands failed per query (a Data Loader request can hold 100k) */
const EXPIRE_BATCH = 10_000;
const ofRequest = `(request_id = {id:String} OR startsWith(request_id, concat({id:String}, '/')))`;

/** `subjectHash`: how pending receipts keep the subject id (the compactor's key: libs/privacy/subject-hash.ts) */
export function createReceiptStore(client: ClickHouseClient, subjectHash: SubjectHash): ReceiptStore {
  async function insert(receipts: readonly Receipt[], version: number): Promise<void> {
    await insertOverwriteRequests(client, receipts.map((r) => ({ ...r, version })));
  }

  return {
    write: insert,
    // TRICKY: version 0: a pending row written by the API (on another host, with another
    // clock) must never win over anything the compactor wrote.
    writePending: (commands) => insert(commands.map((c) => pendingReceipt(c, subjectHash)), 0),

    async read(ids) {
      const out = new Map<string, Receipt>();
      for (let i = 0; i < ids.length; i += IDS_PER_QUERY) {
        const rs = await client.query({
          query: `SELECT ${OVERWRITE_REQUEST_SELECT} FROM overwrite_requests FINAL WHERE request_id IN {ids:Array(String)}`,
          query_params: { ids: ids.slice(i, i + IDS_PER_QUERY) },
          format: 'JSONEachRow',
        });
        for (const r of await rs.json<JsonRow>()) out.set(str(r.request_id), parseReceipt(r));
      }
      return out;
    },

    async expirePending(ttlMs, opts = {}) {
      const cutoff = (opts.now ?? Date.now()) - ttlMs;
      let expired = 0;
      for (;;) {
        // NOTE: in WHERE `requested_at` is the select list's alias: milliseconds
        const rs = await client.query({
          query: `SELECT ${OVERWRITE_REQUEST_SELECT} FROM overwrite_requests FINAL
                  WHERE status = 'pending' AND requested_at < {cutoff:Int64}
                  ${opts.requestId !== undefined ? `AND ${ofRequest}` : ''}
                  LIMIT {limit:UInt32}`,
          query_params: { cutoff, limit: EXPIRE_BATCH, ...(opts.requestId !== undefined ? { id: opts.requestId } : {}) },
          format: 'JSONEachRow',
        });
        const rows = (await rs.json<JsonRow>()).map(parseOverwriteRequestRow);
        if (rows.length === 0) return expired;
        // TRICKY: the version is the instant the command expired — the same whoever writes it
        // (the compactor's sweep, any collector's read) — and above the row it replaces, so a
        // compactor that applies the command after all (its record outlived the retention in an
        // unrolled segment) writes later versions and wins.
        await insertOverwriteRequests(
          client,
          rows.map((r) => ({ ...r, status: 'failed', reason: EXPIRED_BEFORE_APPLIED, version: Math.max(r.requested_at + ttlMs, r.version + 1) })),
        );
        expired += rows.length;
        if (rows.length < EXPIRE_BATCH) return expired;
      }
    },

    async forRequest(requestId) {
      // NOTE: aggregated in ClickHouse: a Data Loader request can hold thousands of commands.
      const rs = await client.query({
        query: `SELECT status, any(tenant_id) AS tenant_id, count() AS n, sumMap(rows_rewritten) AS rw, any(reason) AS reason,
                       toUnixTimestamp64Milli(min(requested_at)) AS requested_at,
                       toUnixTimestamp64Milli(max(verified_at)) AS verified_at
                FROM overwrite_requests FINAL
                WHERE ${ofRequest}
                GROUP BY status`,
        query_params: { id: requestId },
        format: 'JSONEachRow',
      });
      const rows = (await rs.json<JsonRow>()).map((r) => ({
        status: oneOf(RECEIPT_STATUSES, r.status, 'overwrite_requests.status'),
        tenant_id: str(r.tenant_id),
        n: toNumber(r.n),
        rw: numberMap(r.rw),
        reason: nullableStr(r.reason),
        requested_at: ms(r.requested_at),
        verified_at: nullableMs(r.verified_at),
      }));
      if (rows.length === 0) return undefined;
      const rowsRewritten: Record<string, number> = {};
      for (const r of rows) for (const [table, n] of Object.entries(r.rw)) rowsRewritten[table] = (rowsRewritten[table] ?? 0) + n;
      const status = STATUS_ORDER.find((s) => rows.some((r) => r.status === s)) ?? 'pending';
      const sup = await client.query({
        query: `SELECT sum(events) AS n FROM suppressed_events
                WHERE request_id = {id:String} OR startsWith(request_id, concat({id:String}, '/'))`,
        query_params: { id: requestId },
        format: 'JSONEachRow',
      });
      const [suppressed] = await sup.json<{ n: unknown }>();
      return {
        requestId,
        tenantId: rows[0]?.tenant_id ?? '',
        status,
        commands: rows.reduce((n, r) => n + r.n, 0),
        rowsRewritten,
        reason: rows.find((r) => r.status === 'failed')?.reason ?? null,
        requestedAt: Math.min(...rows.map((r) => r.requested_at)),
        verifiedAt: status === 'verified' ? Math.max(...rows.map((r) => r.verified_at ?? 0)) : null,
        suppressedEvents: toNumber(suppressed?.n ?? 0),
        copiesExpireBy: null,
      };
    },
  };
}
