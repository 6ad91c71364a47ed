// Receipts of history translations (issue 15 item 2) in `history_translations`: the API writes a
// `pending` one (version 0, below anything the compactor writes), the compactor polls for them
// and writes its progress; `GET /v1/admin/requests/:id` reads them as it reads an erasure's.
import type { ClickHouseClient } from '@clickhouse/client';
import {
  HISTORY_TRANSLATION_SELECT,
  insertHistoryTranslations,
  parseTranslationRow,
  type TranslationReceipt,
} from '../clickhouse/tables/history-translations.js';
import type { RequestReceipt } from './receipts.js';

export type { TranslationReceipt };

/** What the receipt route answers for a translation: an erasure's receipt and what it translated to. */
export interface TranslationRequestReceipt extends RequestReceipt {
  kind: 'pseudonymize-history';
  /** the version the history was translated to (null until the compactor picked it) */
  keyVersion: number | null;
  /** what was received before this instant (ms) was translated */
  anonymizeSince: number;
}

export interface TranslationReceiptStore {
  /** the API's receipt of a new request (version 0) */
  writePending(receipt: TranslationReceipt): Promise<void>;
  /** the compactor's, at `version` (monotonic) */
  write(receipt: TranslationReceipt, version: number): Promise<void>;
  /** every pending request, oldest first */
  pending(): Promise<TranslationReceipt[]>;
  read(requestId: string): Promise<TranslationReceipt | undefined>;
  /** `copiesExpireBy`: the fleet passes (receipt) → anonymizeSince + the topics' horizon; embedded the verification time */
  forRequest(requestId: string, copiesExpireBy: (r: TranslationReceipt) => number | null): Promise<TranslationRequestReceipt | undefined>;
}

export function pendingTranslation(requestId: string, tenantId: string, anonymizeSince: number, requestedAt: number): TranslationReceipt {
  return {
    request_id: requestId,
    tenant_id: tenantId,
    status: 'pending',
    key_version: 0,
    anonymize_since: anonymizeSince,
    rows_rewritten: {},
    reason: null,
    attempts: 0,
    requested_at: requestedAt,
    applied_at: null,
    verified_at: null,
  };
}

export function createTranslationReceipts(client: ClickHouseClient): TranslationReceiptStore {
  const select = async (where: string, params: Record<string, unknown>): Promise<TranslationReceipt[]> => {
    const rs = await client.query({
      query: `SELECT ${HISTORY_TRANSLATION_SELECT} FROM history_translations FINAL WHERE ${where} ORDER BY requested_at`,
      query_params: params,
      format: 'JSONEachRow',
    });
    return (await rs.json<Record<string, unknown>>()).map((r) => {
      const { version: _version, ...receipt } = parseTranslationRow(r);
      return receipt;
    });
  };
  const read = async (requestId: string): Promise<TranslationReceipt | undefined> => (await select('request_id = {id:String}', { id: requestId }))[0];
  return {
    writePending: (r) => insertHistoryTranslations(client, [{ ...r, version: 0 }]),
    write: (r, version) => insertHistoryTranslations(client, [{ ...r, version }]),
    pending: () => select(`status = 'pending'`, {}),
    read,
    async forRequest(requestId, copiesExpireBy) {
      const r = await read(requestId);
      if (!r) return undefined;
      return {
        kind: 'pseudonymize-history',
        requestId: r.request_id,
        tenantId: r.tenant_id,
        status: r.status,
        commands: 1,
        rowsRewritten: r.rows_rewritten,
        reason: r.reason,
        requestedAt: r.requested_at,
        verifiedAt: r.status === 'verified' ? r.verified_at : null,
        suppressedEvents: 0,
        copiesExpireBy: copiesExpireBy(r),
        keyVersion: r.key_version === 0 ? null : r.key_version,
        anonymizeSince: r.anonymize_since,
      };
    },
  };
}
