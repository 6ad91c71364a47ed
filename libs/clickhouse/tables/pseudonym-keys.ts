// The `pseudonym_keys` and `pseudonym_key_shreds` tables (schemas/clickhouse/0009_pseudonym_keys.sql):
// ClickHouse's copy of the wrapped pseudonym keys (a WrappedKeyStore, libs/privacy/stored-keys.ts)
// and the shred receipts. Neither is an analyst table.
import type { ClickHouseClient } from '@clickhouse/client';
import type { CompactorTarget } from '../../compactor/compactor-target.js';
import type { WrappedKeyStore } from '../../privacy/stored-keys.js';
import { quoteString } from '../analyst-settings.js';
import { toNumber } from '../client.js';
import { ms, nullableMs, nullableStr, num, numberMap, oneOf, selectList, str, stringArray, type JsonRow } from './row-values.js';
import { insertRows, type AllColumnsListed } from './table-columns.js';

interface PseudonymKeyRow {
  tenant_id: string;
  version: number;
  wrapped_base64: string;
  created_at: number;
}

export const PSEUDONYM_KEY_COLUMNS = ['tenant_id', 'version', 'wrapped_base64', 'created_at'] as const satisfies readonly (keyof PseudonymKeyRow)[];
const allKeyColumnsListed: AllColumnsListed<PseudonymKeyRow, typeof PSEUDONYM_KEY_COLUMNS> = true;
void allKeyColumnsListed;

/** How long a shred waits for the superseded parts (which still hold the key) to leave the disk. */
export const SHRED_PARTS_WAIT_MS = 60_000;

/**
 * The ClickHouse copy. `target` runs the delete mutation (on a cluster: every replica) and
 * names every physical copy for the check that follows it.
 * NOTE: the mutation text holds the tenant id and the version only, never key material.
 */
export function clickhouseKeyStore(client: ClickHouseClient, target: CompactorTarget, opts: { now?: () => number; partsWaitMs?: number } = {}): WrappedKeyStore {
  const now = opts.now ?? Date.now;
  const where = (t: string, v: number) => `tenant_id = ${quoteString(t)} AND version = ${Math.trunc(v)}`;

  async function get(t: string, v: number): Promise<Buffer | undefined> {
    const rs = await client.query({
      query: 'SELECT wrapped_base64 FROM pseudonym_keys FINAL WHERE tenant_id = {t:String} AND version = {v:UInt32} LIMIT 1',
      query_params: { t, v },
      format: 'JSONEachRow',
    });
    const row = (await rs.json<JsonRow>())[0];
    return row === undefined ? undefined : Buffer.from(str(row.wrapped_base64), 'base64');
  }

  async function physicalCopies(t: string, v: number): Promise<number> {
    const rs = await client.query({ query: `SELECT count() AS n FROM ${target.everyCopy('pseudonym_keys')} WHERE ${where(t, v)}`, format: 'JSONEachRow' });
    return toNumber((await rs.json<JsonRow>())[0]?.n);
  }

  /** Outdated parts of the table: a mutation leaves the old part (the key in it) for old_parts_lifetime. */
  async function outdatedParts(): Promise<number> {
    const rs = await client.query({ query: `SELECT count() AS n FROM ${target.parts} WHERE database = 'default' AND table = '${target.partsTable('pseudonym_keys')}' AND active = 0`, format: 'JSONEachRow' });
    return toNumber((await rs.json<JsonRow>())[0]?.n);
  }

  return {
    place: 'clickhouse',
    get,
    async putIfAbsent(t, v, wrapped) {
      const kept = await get(t, v);
      if (kept !== undefined) return kept;
      await insertRows<PseudonymKeyRow>(client, 'pseudonym_keys', PSEUDONYM_KEY_COLUMNS, [{ tenant_id: t, version: v, wrapped_base64: wrapped.toString('base64'), created_at: now() }]);
      return Buffer.from(wrapped);
    },
    async delete(t, v) {
      const before = await physicalCopies(t, v);
      if (before > 0) await target.alter(`ALTER TABLE default.pseudonym_keys DELETE WHERE ${where(t, v)} SETTINGS mutations_sync = 2`);
      const deadline = now() + (opts.partsWaitMs ?? SHRED_PARTS_WAIT_MS);
      while (before > 0 && (await outdatedParts()) > 0) {
        if (now() > deadline) throw new Error(`superseded parts of pseudonym_keys still on disk after ${opts.partsWaitMs ?? SHRED_PARTS_WAIT_MS} ms`);
        await new Promise((r) => setTimeout(r, 250));
      }
      return before;
    },
  };
}

export const SHRED_STATUSES = ['verified', 'failed'] as const;
export type ShredStatus = (typeof SHRED_STATUSES)[number];

/** The receipt of a shredded key version. NOTE: no key material, ever. */
export interface ShredReceipt {
  tenant_id: string;
  version: number;
  status: ShredStatus;
  /** place → copies destroyed there */
  destroyed: Record<string, number>;
  /** places still holding a copy when checked (empty when verified) */
  remaining: string[];
  /** copies outside Tracklane's reach, the operator's to purge */
  outside_copies: string[];
  reason: string | null;
  verified_at: number | null;
  updated_at: number;
}

export const SHRED_COLUMNS = ['tenant_id', 'version', 'status', 'destroyed', 'remaining', 'outside_copies', 'reason', 'verified_at', 'updated_at'] as const satisfies readonly (keyof ShredReceipt)[];
const allShredColumnsListed: AllColumnsListed<ShredReceipt, typeof SHRED_COLUMNS> = true;
void allShredColumnsListed;

const SHRED_SELECT = selectList(SHRED_COLUMNS, new Set(['verified_at', 'updated_at']));

export function parseShredReceipt(r: JsonRow): ShredReceipt {
  return {
    tenant_id: str(r.tenant_id),
    version: num(r.version),
    status: oneOf(SHRED_STATUSES, r.status, 'pseudonym_key_shreds.status'),
    destroyed: numberMap(r.destroyed),
    remaining: stringArray(r.remaining),
    outside_copies: stringArray(r.outside_copies),
    reason: nullableStr(r.reason),
    verified_at: nullableMs(r.verified_at),
    updated_at: ms(r.updated_at),
  };
}

export interface ShredReceiptStore {
  write(receipt: ShredReceipt): Promise<void>;
  /** a tenant's receipts, by version */
  forTenant(tenantId: string): Promise<ShredReceipt[]>;
  /** `<version>:<tenant>` of every verified shred: the keeper does those once only */
  verified(): Promise<Set<string>>;
}

export function clickhouseShredReceipts(client: ClickHouseClient): ShredReceiptStore {
  return {
    write: (receipt) => insertRows<ShredReceipt>(client, 'pseudonym_key_shreds', SHRED_COLUMNS, [receipt]),
    async forTenant(tenantId) {
      const rs = await client.query({
        query: `SELECT ${SHRED_SELECT} FROM pseudonym_key_shreds FINAL WHERE tenant_id = {t:String} ORDER BY version`,
        query_params: { t: tenantId },
        format: 'JSONEachRow',
      });
      return (await rs.json<JsonRow>()).map(parseShredReceipt);
    },
    async verified() {
      const rs = await client.query({ query: `SELECT tenant_id, version FROM pseudonym_key_shreds FINAL WHERE status = 'verified'`, format: 'JSONEachRow' });
      return new Set((await rs.json<JsonRow>()).map((r) => `${num(r.version)}:${str(r.tenant_id)}`));
    },
  };
}

/** Whether any event of the tenant is stored under a pseudonym of `version` (the keeper's usedBefore). */
export function historyUnderVersion(client: ClickHouseClient): (tenantId: string, version: number) => Promise<boolean> {
  return async (tenantId, version) => {
    const rs = await client.query({
      query: 'SELECT count() AS n FROM (SELECT 1 FROM events WHERE tenant_id = {t:String} AND identity_anonymized = 1 AND key_version = {v:UInt16} LIMIT 1)',
      query_params: { t: tenantId, v: version },
      format: 'JSONEachRow',
    });
    return toNumber((await rs.json<JsonRow>())[0]?.n) > 0;
  };
}
