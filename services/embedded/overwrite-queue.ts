// Embedded mode's path for overwrite commands: `pending` receipts written when a request is
// accepted, then an in-process queue the compactor drains — everything queued at the time in
// one batch (a Data Loader run arrives as many requests and becomes a few large batches).
// NOTE: queued commands are journaled to a file in the data dir (mode 0600) before the API
// answers 202 and dropped from it once applied, so a crash loses none: the next start resumes
// them (the compactor is idempotent). The fleet queues them in Kafka instead.
// A receipt's copiesExpireBy is its verification time once the journal no longer holds any
// of its commands (the journal is the only copy of them outside ClickHouse).
import { appendFile, readFile, rename, writeFile } from 'node:fs/promises';
import type { Compactor } from '../../libs/compactor/compactor.js';
import { requestIdOf, type ReceiptStore, type RequestReceipt } from '../../libs/compactor/receipts.js';
import { safeErrorFields } from '../../libs/core/errors.js';
import type { Logger } from '../../libs/core/logger.js';
import { overwriteCommandSchema, type OverwriteCommand } from '../../libs/events/overwrite-command.js';

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

export interface OverwriteQueueDeps {
  compactor: Compactor;
  receipts: ReceiptStore;
  logger: Logger;
  /** JSONL journal of the commands not applied yet */
  journalPath: string;
  maxBatch?: number;
}

/** Opens the queue and resumes the commands a previous run journaled but did not apply. */
export async function openOverwriteQueue(deps: OverwriteQueueDeps): Promise<OverwriteQueue> {
  const resumed = await readJournal(deps.journalPath, deps.logger);
  const queue = createQueue(deps, resumed);
  if (resumed.length > 0) deps.logger.info({ commands: resumed.length }, 'resuming overwrite commands queued before the last stop');
  return queue;
}

async function readJournal(path: string, logger: Logger): Promise<OverwriteCommand[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: OverwriteCommand[] = [];
  let bad = 0;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      out.push(overwriteCommandSchema.parse(JSON.parse(line)));
    } catch {
      bad++; // NOTE: a torn last line of a crash mid-append: its request never got its 202
    }
  }
  if (bad > 0) logger.warn({ lines: bad }, 'overwrite journal: unreadable lines skipped');
  return out;
}

function createQueue(deps: OverwriteQueueDeps, resumed: OverwriteCommand[]): OverwriteQueue {
  const maxBatch = deps.maxBatch ?? MAX_BATCH;
  const queued: OverwriteCommand[] = [...resumed];
  /** batches the compactor could not even record as failed: kept for the next start */
  const retained: OverwriteCommand[] = [];
  // NOTE: appends and rewrites of the journal run one after another, never interleaved
  let journal: Promise<void> = Promise.resolve();
  const inJournal = <T>(f: () => Promise<T>): Promise<T> => {
    const run = journal.then(f);
    journal = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  };
  const lines = (cmds: readonly OverwriteCommand[]) => cmds.map((c) => `${JSON.stringify(c)}\n`).join('');
  /** the requests the journal file holds commands of (changed only in journal steps) */
  let journaled = new Set(resumed.map((c) => requestIdOf(c.request_id)));
  /** the journal becomes the commands still queued (atomically: write, then rename) */
  const compactJournal = () =>
    inJournal(async () => {
      const kept = [...retained, ...queued];
      await writeFile(`${deps.journalPath}.tmp`, lines(kept), { mode: 0o600 });
      await rename(`${deps.journalPath}.tmp`, deps.journalPath);
      journaled = new Set(kept.map((c) => requestIdOf(c.request_id)));
    });
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
        // The batch stays in the journal: the next start tries it again.
        deps.logger.error({ ...safeErrorFields(err), commands: batch.length }, 'overwrite batch failed');
        retained.push(...batch);
        continue;
      }
      await compactJournal().catch((err: unknown) => deps.logger.warn({ ...safeErrorFields(err) }, 'could not compact the overwrite journal'));
    }
    draining = null;
  }

  if (queued.length > 0) draining = drain();

  return {
    async submit(commands) {
      if (closed) throw new Error('overwrite queue is closed');
      // TRICKY: journaled before the receipts: if writing those fails the caller gets a 5xx, yet
      // the command is applied later; sending the request again only writes the same values.
      // NOTE: queued in the same journal step as the append: a compaction of the journal
      // (rewritten from memory) can never run between the two and drop these commands.
      await inJournal(async () => {
        await appendFile(deps.journalPath, lines(commands), { mode: 0o600 });
        queued.push(...commands);
        for (const c of commands) journaled.add(requestIdOf(c.request_id));
      });
      lastSubmit = Date.now();
      await deps.receipts.writePending(commands);
      draining ??= drain();
    },
    async receipt(requestId) {
      const receipt = await deps.receipts.forRequest(requestId);
      if (!receipt) return undefined;
      const gone = receipt.status === 'verified' && !journaled.has(requestId);
      return { ...receipt, copiesExpireBy: gone ? receipt.verifiedAt : null };
    },
    async close() {
      closed = true;
      await draining;
    },
  };
}
