// Embedded mode's history translation (issue 15 item 2): the translator on the compactor's
// session, its receipts on the dimensions session, the poller that runs pending requests — at
// start too, so a request accepted before a crash still runs (its pending receipt is its
// journal) — inside the section the overwrite batches run in.
import type { ClickHouseClient } from '@clickhouse/client';
import type { KeyRing } from '../../libs/anonymize/key-ring.js';
import type { Exclusive } from '../../libs/compactor/exclusive.js';
import { createHistoryTranslator } from '../../libs/compactor/history-translation.js';
import { startTranslationPoller } from '../../libs/compactor/translation-poller.js';
import { createTranslationReceipts, type TranslationRequestReceipt } from '../../libs/compactor/translation-receipts.js';
import type { Logger } from '../../libs/core/logger.js';
import type { TenantStore } from '../../libs/tenants/tenant-store.js';
import type { HistoryTranslationDeps } from '../collector/history-translation-routes.js';

export interface EmbeddedTranslation {
  /** the admin route's deps */
  route: Omit<HistoryTranslationDeps, 'tenants'>;
  /** a translation's receipt; copiesExpireBy is its verification time (no Kafka holds copies here) */
  receipt(requestId: string): Promise<TranslationRequestReceipt | undefined>;
  stop(): Promise<void>;
}

export function startEmbeddedTranslation(opts: {
  compactorClient: ClickHouseClient;
  receiptsClient: ClickHouseClient;
  keys: KeyRing;
  tenants: TenantStore;
  exclusive: Exclusive;
  logger: Logger;
}): EmbeddedTranslation {
  const receipts = createTranslationReceipts(opts.receiptsClient);
  const translator = createHistoryTranslator({ client: opts.compactorClient, keys: opts.keys, flags: (t) => opts.tenants.get(t), receipts, logger: opts.logger });
  const poller = startTranslationPoller({ receipts, translator, exclusive: opts.exclusive, logger: opts.logger });
  return {
    route: {
      async request(r) {
        await receipts.writePending(r);
        poller.kick();
      },
    },
    receipt: (id) => receipts.forRequest(id, (r) => (r.status === 'verified' ? r.verified_at : null)),
    stop: () => poller.stop(),
  };
}
