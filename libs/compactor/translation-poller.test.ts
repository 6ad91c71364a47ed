// The poller: a pending receipt found at start runs (a request accepted before a crash is not
// lost: its receipt is its journal), inside the exclusive section, once; one another compactor
// finished meanwhile is skipped; a failing pass is retried at the next poll.
import { describe, expect, it } from 'vitest';
import { createLogger } from '../core/logger.js';
import { eventually } from '../../test/support/poll.js';
import { createExclusive } from './exclusive.js';
import type { HistoryTranslator } from './history-translation.js';
import { startTranslationPoller } from './translation-poller.js';
import { pendingTranslation, type TranslationReceipt } from './translation-receipts.js';

const logger = createLogger({ level: 'silent' });

function fakeStore(initial: TranslationReceipt[]) {
  const rows = new Map(initial.map((r) => [r.request_id, r]));
  return {
    rows,
    pending: async () => [...rows.values()].filter((r) => r.status === 'pending'),
    read: async (id: string) => rows.get(id),
  };
}

describe('startTranslationPoller', () => {
  it('runs the pending receipts found at start, in the exclusive section, once each', async () => {
    const store = fakeStore([pendingTranslation('r1', 't', 1, 2), { ...pendingTranslation('r2', 't', 1, 3), status: 'verified' }]);
    const ran: string[] = [];
    let inside = 0;
    const exclusive = createExclusive();
    const translator: HistoryTranslator = {
      async run(r) {
        inside++;
        ran.push(r.request_id);
        const done = { ...r, status: 'verified' as const };
        store.rows.set(r.request_id, done);
        inside--;
        return done;
      },
    };
    // an overwrite batch holds the section first: the translation waits for it
    let release = (): void => undefined;
    const batch = exclusive(() => new Promise<void>((res) => (release = res)));
    const poller = startTranslationPoller({ receipts: store, translator, exclusive, everyMs: 50, logger });
    await new Promise((r) => setTimeout(r, 120));
    expect(ran).toEqual([]);
    release();
    await batch;
    await eventually(() => ran.length === 1, 5_000, 'the pending request ran');
    poller.kick();
    await new Promise((r) => setTimeout(r, 150));
    await poller.stop();
    expect(ran).toEqual(['r1']);
    expect(inside).toBe(0);
  });

  it('skips a receipt no longer pending when its turn comes, and retries after a failed pass', async () => {
    const store = fakeStore([pendingTranslation('r1', 't', 1, 2)]);
    let reads = 0;
    const flaky = { ...store, pending: async () => (reads++ === 0 ? Promise.reject(new Error('ClickHouse down')) : store.pending()) };
    const ran: string[] = [];
    const translator: HistoryTranslator = { run: async (r) => (ran.push(r.request_id), { ...r, status: 'verified' }) };
    const poller = startTranslationPoller({
      receipts: { ...flaky, read: async (id) => (ran.length === 0 ? { ...pendingTranslation(id, 't', 1, 2), status: 'verified' } : store.read(id)) },
      translator,
      exclusive: createExclusive(),
      everyMs: 30,
      logger,
    });
    await eventually(() => reads >= 3, 5_000, 'polled again after the failure');
    await poller.stop();
    expect(ran).toEqual([]);
  });
});
