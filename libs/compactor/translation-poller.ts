// Where history translations run (issue 15 item 2): the API writes a `pending` receipt; this
// poller, in the process holding the master key (the embedded runner, the fleet's compactor),
// picks pending receipts up — at start (so a request survives a crash: its receipt is its
// journal), every `everyMs`, and at once on kick() — and runs each inside `exclusive`, never
// alongside an overwrite batch.
import { safeErrorFields } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { HistoryTranslator } from './history-translation.js';
import type { TranslationReceiptStore } from './translation-receipts.js';

export interface TranslationPoller {
  /** look for pending requests now (the embedded API calls it after writing one) */
  kick(): void;
  /** resolves once the current pass is done; no pass starts after */
  stop(): Promise<void>;
}

export function startTranslationPoller(opts: {
  receipts: Pick<TranslationReceiptStore, 'pending' | 'read'>;
  translator: HistoryTranslator;
  /** wraps each request: the embedded runner's exclusive section, the fleet's lease */
  exclusive: <T>(f: () => Promise<T>) => Promise<T>;
  everyMs?: number;
  logger: Logger;
}): TranslationPoller {
  let running: Promise<void> | null = null;
  let again = false;
  let stopped = false;

  async function pass(): Promise<void> {
    do {
      again = false;
      for (const r of await opts.receipts.pending()) {
        if (stopped) return;
        // NOTE: read again inside the section: another compactor (or an earlier pass) may have run it meanwhile
        const done = await opts.exclusive(async () => {
          const current = await opts.receipts.read(r.request_id);
          return current?.status === 'pending' ? opts.translator.run(current) : null;
        });
        if (done) opts.logger.info({ requestId: done.request_id, status: done.status }, 'history translation finished');
      }
    } while (again && !stopped);
  }
  const kick = (): void => {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = pass()
      .catch((err: unknown) => opts.logger.warn({ ...safeErrorFields(err) }, 'history translations not run: retrying at the next poll'))
      .finally(() => {
        running = null;
      });
  };
  kick();
  const timer = setInterval(kick, opts.everyMs ?? 5_000);
  timer.unref();
  return {
    kick,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
