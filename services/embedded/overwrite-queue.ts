// Embedded mode's path for overwrite commands: `pending` receipts written when a request is
// accepted, then an in-process queue the compactor drains — everything queued at the time in
// one batch (a Data Loader run arrives as many requests and becomes a few large batches).
// NOTE: queued commands live in memory until applied; a crash in between leaves their
// receipts `pending` and the request must be sent again — the fleet queues them in Kafka.
import type { Compactor } from '../../libs/compactor/compactor.js';
import type { ReceiptStore, RequestReceipt } from '../../libs/compactor/receipts.js';
import { safeErrorFields } from '../../libs/core/errors.js';
import type { Logger } from '../../libs/core/logger.js';
import type { OverwriteCommand } from '../../libs/kafka/record-types.js';

export interface OverwriteQueue {
  submit(commands: OverwriteCommand[]): Promise<void>;
  receipt(requestId: string): Promise<RequestReceipt | undefined>;
  /** resolves when everything submitted so far was applied (or failed); idempotent */
  close(): Promise<void>;
}

/**
 * commands per compactor batch: bounds a round's memory and its Join table. Large on purpose:
 * a round's fixed costs (forced merges, waiting for superseded parts to leave the disk:
 * seconds) dwarf its per-command cost, so a Data Loader run should take few rounds.
 */
const MAX_BATCH = 100_000;
/** a batch starts once submissions pause this long (a loader sends chunks back to back) … */
const GATHER_QUIET_MS = 300;
/** … or after this long at most */
const GATHER_MAX_MS = 2_000;

export function createOverwriteQueue(deps: { compactor: Compactor; receipts: ReceiptStore; logger: Logger; maxBatch?: number }): OverwriteQueue {
  const maxBatch = deps.maxBatch ?? MAX_BATCH;
  const queued: OverwriteCommand[] = [];
  let draining: Promise<void> | null = null;
  let closed = false;
  let lastSubmit = 0;

  async function gather(): Promise<void> {
    const started = Date.now();
    while (!closed && queued.length < maxBatch && Date.now() - lastSubmit < GATHER_QUIET_MS && Date.now() - started < GATHER_MAX_MS) {
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async function drain(): Promise<void> {
    while (queued.length > 0) {
      await gather();
      const batch = queued.splice(0, maxBatch);
      try {
        await deps.compactor.apply(batch);
      } catch (err) {
        // NOTE: the compactor writes `failed` receipts itself; this is a failure to even do that.
        deps.logger.error({ ...safeErrorFields(err), commands: batch.length }, 'overwrite batch failed');
      }
    }
    draining = null;
  }

  return {
    async submit(commands) {
      if (closed) throw new Error('overwrite queue is closed');
      await deps.receipts.writePending(commands);
      queued.push(...commands);
      lastSubmit = Date.now();
      draining ??= drain();
    },
    receipt: (requestId) => deps.receipts.forRequest(requestId),
    async close() {
      closed = true;
      await draining;
    },
  };
}
