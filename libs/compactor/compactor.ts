// The compactor (DESIGN.md §5): applies a batch of overwrite commands to ClickHouse — new
// users/accounts versions, PII-free batched mutations of history, forced merges, removal of
// superseded parts — then proves the result and writes receipts. This module owns the batch:
// aliases, receipts of earlier runs, rounds (one command per subject each) and their retries;
// overwrite-round.ts runs one round.
import type { ClickHouseClient } from '@clickhouse/client';
import { safeErrorFields } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { OverwriteCommand } from '../events/overwrite-command.js';
import { RoundAbortedError, VerificationError } from './compactor-errors.js';
import { singleNodeTarget, type CompactorTarget } from './compactor-target.js';
import { anonymizedTenants } from './history-scans.js';
import { createExclusive } from './exclusive.js';
import { createLookupStaging } from './lookup-staging.js';
import { createOverwriteRegistry, type OverwriteRegistry } from './overwrite-registry.js';
import { createRoundRunner } from './overwrite-round.js';
import { createReceiptStore, pendingReceipt, type Receipt } from './receipts.js';
import { keyOf } from './round-plan.js';
import type { IdSeal } from '../privacy/id-seal.js';
import type { SubjectHash } from '../privacy/subject-hash.js';
import { createVerification } from './verification.js';

export type { Receipt, ReceiptStatus } from './receipts.js';
export { RoundAbortedError, VerificationError } from './compactor-errors.js';

export interface CompactorOptions {
  /** queries and inserts (on a cluster: through the Distributed tables) */
  client: ClickHouseClient;
  /** one node (default: the client's), or a cluster (compactor-target.ts) */
  target?: CompactorTarget;
  /** how subject ids are kept in receipts, the registry and suppressions (libs/privacy/subject-hash.ts) */
  subjectHash: SubjectHash;
  /**
   * seals an erasure's new id (replaceId) for the sinks (`replaced_ids`, libs/privacy/id-seal.ts):
   * a fleet compactor needs it; without one only this process's registry knows the new ids
   */
  idSeal?: IdSeal;
  logger: Logger;
  now?: () => number;
  /** the tenant's PII traits (scrubbed by anonymize/delete); default none */
  piiTraits?: (tenantId: string) => readonly string[];
  /** shared with the sink; one is created when absent */
  registry?: OverwriteRegistry;
  /** attempts per batch round before its receipts say failed (default 3) */
  maxAttempts?: number;
  /** bound on waiting for superseded parts to leave disk (default 60 s) */
  oldPartsTimeoutMs?: number;
  /**
   * Other ids the same subject is stored under — for a user of an anonymizing tenant, the
   * pseudonyms of its id under each key version. Each becomes a command of its own
   * (`<request_id>/p<n>`, never inserting a missing row), so history stored under a pseudonym
   * is rewritten too; its receipt counts in the request's. `anonymizedTenants`: the batch's
   * tenants that have pseudonymized events stored.
   */
  aliases?: (cmd: OverwriteCommand, anonymizedTenants: ReadonlySet<string>) => string[];
  /** called before every step of a round; throws a RoundAbortedError to stop the batch (the fleet: the lease was lost) */
  guard?: () => void;
  /**
   * Runs after a round's overwrites are registered, before history is rewritten: the fleet
   * waits here until every sink has loaded them (DESIGN.md §5 step 4).
   */
  afterRegister?: () => Promise<void>;
}

export interface Compactor {
  apply(commands: readonly OverwriteCommand[]): Promise<Receipt[]>;
  readonly registry: OverwriteRegistry;
  /** per-step milliseconds of the last verified round (read, stage, capture, mutation, merge, old_parts, verify, …) */
  lastTimings(): Record<string, number>;
}

function withAliases(
  commands: readonly OverwriteCommand[],
  aliases: NonNullable<CompactorOptions['aliases']>,
  anonymized: ReadonlySet<string>,
): OverwriteCommand[] {
  const out: OverwriteCommand[] = [];
  for (const cmd of commands) {
    const ids = aliases(cmd, anonymized).filter((id) => id !== cmd.id);
    // NOTE: an anonymizing tenant's rows are keyed by pseudonyms: a row to insert is created
    // under the current key version's (the last alias), never under the clear id.
    out.push(ids.length > 0 ? { ...cmd, insert_missing: false } : cmd);
    ids.forEach((id, n) => {
      out.push({ ...cmd, request_id: `${cmd.request_id}/p${n + 1}`, id, insert_missing: n === ids.length - 1 ? cmd.insert_missing : false });
    });
  }
  return out;
}

/**
 * TRICKY: the Join table holds one entry per (subject, tenant, id), so two commands for one
 * subject go in successive rounds, oldest request first.
 */
function roundsOf(commands: readonly OverwriteCommand[]): OverwriteCommand[][] {
  const rounds: OverwriteCommand[][] = [];
  const roundsOfKey = new Map<string, number>();
  for (const cmd of [...commands].sort((a, b) => a.requested_at - b.requested_at)) {
    const n = roundsOfKey.get(keyOf(cmd)) ?? 0;
    roundsOfKey.set(keyOf(cmd), n + 1);
    (rounds[n] ??= []).push(cmd);
  }
  return rounds;
}

export function createCompactor(opts: CompactorOptions): Compactor {
  const { client } = opts;
  const target = opts.target ?? singleNodeTarget(client);
  const log = opts.logger.child({ module: 'compactor' });
  const now = opts.now ?? Date.now;
  const registry = opts.registry ?? createOverwriteRegistry({ client, subjectHash: opts.subjectHash });
  const maxAttempts = opts.maxAttempts ?? 3;
  let lastVersion = 0;
  let lastTimings: Record<string, number> = {};
  // NOTE: the Join/Set tables hold one batch at a time: batches run strictly one after another.
  const oneAtATime = createExclusive();

  const version = (): number => (lastVersion = Math.max(lastVersion + 1, now()));
  const receiptStore = createReceiptStore(client, opts.subjectHash);
  const writeReceipts = (receipts: readonly Receipt[]): Promise<void> => receiptStore.write(receipts, version());
  const staging = createLookupStaging(target, log);
  const runRound = createRoundRunner({
    client,
    target,
    registry,
    subjectHash: opts.subjectHash,
    staging,
    verification: createVerification({ client, target, oldPartsTimeoutMs: opts.oldPartsTimeoutMs ?? 60_000 }),
    writeReceipts,
    now,
    log,
    ...(opts.piiTraits ? { piiTraits: opts.piiTraits } : {}),
    ...(opts.idSeal ? { idSeal: opts.idSeal } : {}),
    ...(opts.guard ? { guard: opts.guard } : {}),
    ...(opts.afterRegister ? { afterRegister: opts.afterRegister } : {}),
  });

  /**
   * After a failed step: a mutation the client gave up on may still run on the server, and
   * would read the lookup tables the next attempt (or round) refills.
   */
  async function stopUnfinished(): Promise<void> {
    try {
      const stopped = await target.killUnfinished();
      if (stopped > 0) log.warn({ stopped }, 'stopped mutations of a failed round still running');
    } catch (err) {
      log.warn({ ...safeErrorFields(err) }, 'could not look for mutations of a failed round still running');
    }
  }

  /** Runs a round until it is verified, or fails its receipts after maxAttempts. */
  async function runWithRetries(round: readonly OverwriteCommand[], receipts: ReadonlyMap<string, Receipt>): Promise<void> {
    const mine = round.flatMap((c) => receipts.get(c.request_id) ?? []);
    for (let attempt = 1; ; attempt++) {
      for (const r of mine) r.attempts++;
      try {
        lastTimings = await runRound(round, receipts);
        return;
      } catch (err) {
        if (err instanceof RoundAbortedError) throw err;
        const step = err instanceof VerificationError ? `verification failed: ${err.message}` : `step failed: ${Object.values(safeErrorFields(err)).join(' ')}`;
        log.warn({ attempt, maxAttempts, commands: round.length, ...safeErrorFields(err) }, 'overwrite round failed');
        await stopUnfinished();
        if (attempt >= maxAttempts) {
          for (const r of mine) Object.assign(r, { status: 'failed', reason: step });
          // NOTE: if even this fails, apply() rejects: the fleet's consumer then redelivers
          // the commands instead of committing past them with no receipt.
          await writeReceipts(mine);
          // NOTE: a verified round empties them itself (overwrite-round.ts), before its receipts
          await staging.clear();
          return;
        }
        await new Promise((res) => setTimeout(res, 200 * 2 ** attempt));
      }
    }
  }

  async function applyBatch(requested: readonly OverwriteCommand[]): Promise<Receipt[]> {
    if (requested.length === 0) return [];
    const commands = opts.aliases ? withAliases(requested, opts.aliases, await anonymizedTenants(client, requested)) : requested;
    const existing = await receiptStore.read([...new Set(commands.map((c) => c.request_id))]);
    const receipts = new Map<string, Receipt>();
    const todo: OverwriteCommand[] = [];
    for (const cmd of commands) {
      const prior = existing.get(cmd.request_id);
      // NOTE: a verified request is done: redelivery changes nothing and returns its receipt.
      if (prior?.status === 'verified' || receipts.has(cmd.request_id)) {
        if (prior) receipts.set(cmd.request_id, prior);
        continue;
      }
      // NOTE: with what an earlier run of it counted (it may have died before the receipt said applied)
      receipts.set(cmd.request_id, { ...pendingReceipt(cmd, opts.subjectHash, prior?.attempts ?? 0), rows_rewritten: { ...prior?.rows_rewritten } });
      todo.push(cmd);
    }
    if (todo.length > 0) await writeReceipts(todo.flatMap((c) => receipts.get(c.request_id) ?? []));

    for (const round of roundsOf(todo)) await runWithRetries(round, receipts);
    // one receipt per requested command, in input order
    return requested.flatMap((c) => receipts.get(c.request_id) ?? []);
  }

  return {
    registry,
    lastTimings: () => ({ ...lastTimings }),
    apply: (commands) => oneAtATime(() => applyBatch(commands)),
  };
}
