// One round of the compactor: a set of commands with at most one per subject, taken through
// every step in order — register, stage, read, count, write, mutate, merge, verify — with a
// receipt written before anything is changed, after the rewrite (`applied`) and at the end
// (`verified`). A step that throws fails the round; compactor.ts retries it.
import type { ClickHouseClient } from '@clickhouse/client';
import { insertAccounts } from '../clickhouse/tables/accounts.js';
import { insertOverwriteValues } from '../clickhouse/tables/overwrite-values.js';
import { insertReplacedIds } from '../clickhouse/tables/replaced-ids.js';
import { flag } from '../clickhouse/tables/row-values.js';
import { insertSuppressedEvents } from '../clickhouse/tables/suppressed-events.js';
import { insertSuppressions } from '../clickhouse/tables/suppressions.js';
import { insertUsers } from '../clickhouse/tables/users.js';
import { faultPoint } from '../core/fault-points.js';
import type { Logger } from '../core/logger.js';
import type { OverwriteCommand } from '../events/overwrite-command.js';
import type { CompactedTable, CompactorTarget } from './compactor-target.js';
import { deadLettersHolding, deletedEventCounts, eventsHoldSnapshots, historyValuesOf, lateSuppressedEvents, replacedEventCounts } from './history-scans.js';
import { moveLegacySnapshots } from './legacy-snapshots.js';
import type { LookupStaging } from './lookup-staging.js';
import {
  accountHistoryMutation,
  DEAD_LETTERS_MUTATION,
  deleteEventsMutation,
  ERASE_ACCOUNTS_MUTATION,
  ERASE_USERS_MUTATION,
  FORGET_REPLACEMENTS_MUTATION,
  HISTORY_TABLES,
  OPTIMIZE_ACCOUNTS,
  OPTIMIZE_USERS,
  replaceIdsMutation,
  suppressEventsMutation,
  userHistoryMutation,
  type HistoryTable,
} from './mutation-sql.js';
import type { OverwriteRegistry } from './overwrite-registry.js';
import { deletesEvents, erasesRow, keyOf, maxCounts, planCommand, replacesId, stageCommand, suppresses, type Plan, type Staged } from './round-plan.js';
import { readStored } from './dimension-reads.js';
import type { Receipt } from './receipts.js';
import type { IdSeal } from '../privacy/id-seal.js';
import type { SubjectHash } from '../privacy/subject-hash.js';
import type { Verification } from './verification.js';

export interface RoundDeps {
  client: ClickHouseClient;
  target: CompactorTarget;
  registry: OverwriteRegistry;
  subjectHash: SubjectHash;
  /** seals replacing requests' new ids for the sinks (replaced_ids); without one only this process's registry has them */
  idSeal?: IdSeal;
  staging: LookupStaging;
  verification: Verification;
  writeReceipts(receipts: readonly Receipt[]): Promise<void>;
  now(): number;
  log: Logger;
  piiTraits?: (tenantId: string) => readonly string[];
  guard?: () => void;
  afterRegister?: () => Promise<void>;
}

/**
 * Runs one round and returns its milliseconds per step. `receipts` holds a receipt per command
 * of the round, updated in place.
 */
export type RunRound = (cmds: readonly OverwriteCommand[], receipts: ReadonlyMap<string, Receipt>) => Promise<Record<string, number>>;

export function createRoundRunner(deps: RoundDeps): RunRound {
  const { client, registry } = deps;
  const idHash = (cmd: OverwriteCommand): string => deps.subjectHash(cmd.tenant_id, cmd.id);
  const alter = (sql: string): Promise<void> => deps.target.alter(sql);

  /** The registry first: from then on the sink rewrites late events of these subjects too. */
  async function register(staged: readonly Staged[]): Promise<void> {
    await insertOverwriteValues(
      client,
      staged.flatMap((p) => {
        // NOTE: the id only as its hash: these rows outlive the request by the race window
        const base = { request_id: p.cmd.request_id, tenant_id: p.cmd.tenant_id, subject: p.cmd.subject, id: '', id_hash: idHash(p.cmd), mode: p.cmd.mode, delete_events: flag(p.cmd.delete_events), requested_at: p.cmd.requested_at };
        return [
          ...Object.entries(p.rewrite.repl).map(([attr, new_value]) => ({ ...base, attr, new_value })),
          ...p.rewrite.drop.map((attr) => ({ ...base, attr, new_value: null })),
        ];
      }),
    );
    registry.record(
      staged.map((p) => ({
        request_id: p.cmd.request_id,
        tenant_id: p.cmd.tenant_id,
        subject: p.cmd.subject,
        id_hash: idHash(p.cmd),
        requested_at: p.cmd.requested_at,
        rewrite: p.rewrite,
        delete_events: deletesEvents(p.cmd),
      })),
    );
    // NOTE: a replacing request's new id, for events received before it but sunk after: sealed,
    // and only until the request is verified (forget below)
    const replacements = staged.flatMap((p) => (replacesId(p.cmd) ? [{ request_id: p.cmd.request_id, tenant_id: p.cmd.tenant_id, id_hash: idHash(p.cmd), new_id: p.cmd.replacement_id, requested_at: p.cmd.requested_at }] : []));
    if (replacements.length > 0) {
      const seal = deps.idSeal;
      if (seal) await insertReplacedIds(client, replacements.map(({ new_id, ...r }) => ({ ...r, sealed: seal.seal(new_id, r) })));
      registry.recordReplacements(replacements);
    }
    const suppressions = staged
      .filter((p) => suppresses(p.cmd))
      .map((p) => ({ tenant_id: p.cmd.tenant_id, subject_id_hash: idHash(p.cmd), request_id: p.cmd.request_id, requested_at: p.cmd.requested_at }));
    if (suppressions.length > 0) {
      await insertSuppressions(client, suppressions);
      registry.recordSuppressions(suppressions);
    }
    if (deps.afterRegister) await deps.afterRegister();
  }

  /** A suppressed user's late events go, counted before they do, per request and day (as the sink counts its drops). */
  async function dropSuppressed(plans: readonly Plan[]): Promise<void> {
    const late = await lateSuppressedEvents(client);
    if (late.length === 0) return;
    const requestOf = new Map(plans.filter((p) => suppresses(p.cmd)).map((p) => [keyOf(p.cmd), p.cmd.request_id]));
    for (const t of HISTORY_TABLES) await alter(suppressEventsMutation(t));
    await insertSuppressedEvents(
      client,
      late.map((r) => ({ tenant_id: r.tenant_id, request_id: requestOf.get(r.key) ?? '', day: r.day, events: r.events })),
    );
  }

  /**
   * Verified: the new ids leave replaced_ids (and this process's registry), and the parts that
   * held them the disk. From here nothing links a new id to the old one.
   */
  async function forgetReplacements(replacing: readonly Plan[]): Promise<void> {
    const requestIds = replacing.map((p) => p.cmd.request_id);
    registry.forgetReplacements(requestIds);
    if (!deps.idSeal) return;
    const since = Date.now();
    await deps.staging.stageReplacedRequests(requestIds);
    await alter(FORGET_REPLACEMENTS_MUTATION);
    await deps.verification.waitForOldParts(since, ['replaced_ids']);
  }

  return async (cmds, receipts) => {
    const timings: Record<string, number> = {};
    const timed = async <T>(name: string, f: () => Promise<T>): Promise<T> => {
      deps.guard?.();
      const t0 = Date.now();
      try {
        return await f();
      } finally {
        timings[name] = (timings[name] ?? 0) + Date.now() - t0;
      }
    };
    const receiptOf = (cmd: OverwriteCommand): Receipt => {
      const r = receipts.get(cmd.request_id);
      if (!r) throw new Error('a command of the round has no receipt');
      return r;
    };
    const staged = cmds.map((cmd) => stageCommand(cmd, deps.piiTraits?.(cmd.tenant_id) ?? []));

    await timed('register', () => register(staged));
    // NOTE: fault points (libs/core/fault-points.ts) are test-only crashes, no-ops in a build
    faultPoint('compactor.registry');
    await timed('stage', () => deps.staging.stage(staged));

    const stored = await timed('read', () => readStored(client, cmds));
    const t = deps.now();
    const plans = staged.map((s) => planCommand(s, stored, receiptOf(s.cmd), t));

    // NOTE: trait snapshots are in identify_snapshots; `events` holds some only from before
    // migration 0010 (or from a sink of an older version during an upgrade): moved out first,
    // and rewritten too only if some arrived meanwhile.
    const historyTables: HistoryTable[] = ['identify_snapshots'];
    let movedLegacy = false;
    if (await timed('capture', () => eventsHoldSnapshots(client))) {
      await timed('legacy_move', () => moveLegacySnapshots(client, deps.target));
      movedLegacy = true;
      if (await timed('capture', () => eventsHoldSnapshots(client))) historyTables.push('events');
    }
    // Old values of history, captured before the rewrite: memory only.
    const rewritten = new Map<string, Record<string, number>>();
    for (const subject of ['user', 'account'] as const) {
      if (!plans.some((p) => p.cmd.subject === subject)) continue;
      const history = await timed('capture', () => historyValuesOf(client, subject, historyTables.map((t) => `default.${t}`)));
      for (const p of plans) {
        if (p.cmd.subject !== subject) continue;
        const h = history.get(keyOf(p.cmd));
        for (const v of h?.values ?? []) if (!p.newValues.has(v)) p.oldValues.add(v);
        rewritten.set(p.cmd.request_id, { events: h?.n ?? 0 });
      }
    }
    const deletedEvents = plans.some((p) => deletesEvents(p.cmd)) ? await timed('capture', () => deletedEventCounts(client)) : new Map<string, number>();
    const replacing = plans.filter((p) => replacesId(p.cmd));
    const replacedEvents = replacing.length > 0 ? await timed('capture', () => replacedEventCounts(client)) : new Map<string, number>();
    const deadLetters = await timed('dead_letters', () => deadLettersHolding(client, plans));
    for (const p of plans) {
      const rw = rewritten.get(p.cmd.request_id) ?? {};
      if (p.cmd.subject === 'user') rw.users = p.newUser ? 1 : 0;
      else rw.accounts = p.newAccount ? 1 : 0;
      if (deletesEvents(p.cmd)) {
        rw.events_deleted = deletedEvents.get(keyOf(p.cmd)) ?? 0;
        rw.events = 0;
      }
      if (replacesId(p.cmd)) rw.ids_replaced = replacedEvents.get(keyOf(p.cmd)) ?? 0;
      const letters = deadLetters.perRequest.get(p.cmd.request_id);
      if (letters) rw.dead_letters_deleted = letters;
      p.receipt.rows_rewritten = maxCounts(p.receipt.rows_rewritten, rw);
    }
    // TRICKY: counted before anything is written or deleted, and kept (still pending) before it
    // is: a round run again after a crash from here on counts only what is left to do.
    await deps.writeReceipts(plans.map((p) => p.receipt));

    const users = plans.flatMap((p) => (p.newUser ? [p.newUser] : []));
    const accounts = plans.flatMap((p) => (p.newAccount ? [p.newAccount] : []));
    await timed('dimensions', async () => {
      await insertUsers(client, users);
      await insertAccounts(client, accounts);
    });
    await timed('mutation', async () => {
      if (deadLetters.hashes.length > 0) {
        await deps.staging.stageDeadLetters(deadLetters.hashes);
        await alter(DEAD_LETTERS_MUTATION);
      }
      for (const t of historyTables) {
        if (plans.some((p) => p.cmd.subject === 'user')) await alter(userHistoryMutation(t));
        if (plans.some((p) => p.cmd.subject === 'account')) await alter(accountHistoryMutation(t));
      }
      faultPoint('compactor.mutation');
      // NOTE: after the trait rewrite, which finds the rows by their old ids
      if (replacing.length > 0) for (const t of HISTORY_TABLES) await alter(replaceIdsMutation(t));
      if (plans.some((p) => deletesEvents(p.cmd))) for (const t of HISTORY_TABLES) await alter(deleteEventsMutation(t));
      if (plans.some((p) => suppresses(p.cmd))) await dropSuppressed(plans);
    });
    // NOTE: the history tables need no OPTIMIZE: the mutation rewrote every physical copy
    // (redelivered duplicates included); users/accounts hold superseded versions until merged.
    await timed('merge', async () => {
      if (users.length > 0) await alter(OPTIMIZE_USERS);
      if (accounts.length > 0) await alter(OPTIMIZE_ACCOUNTS);
      faultPoint('compactor.merge');
      if (plans.some((p) => erasesRow(p.cmd) && p.cmd.subject === 'user')) await alter(ERASE_USERS_MUTATION);
      if (plans.some((p) => p.cmd.mode === 'delete' && p.cmd.subject === 'account')) await alter(ERASE_ACCOUNTS_MUTATION);
    });
    const rewrittenAt = deps.now();
    for (const p of plans) Object.assign(p.receipt, { status: 'applied', applied_at: rewrittenAt, reason: null });
    await deps.writeReceipts(plans.map((p) => p.receipt));
    // NOTE: superseded parts hold old values until removed: migration 0006 keeps them briefly.
    // NOTE: only the tables this round rewrote: `events` is not one of them unless it held
    // snapshots or the round deletes events, so its background merges never delay a round.
    const touched = new Set<CompactedTable>(historyTables);
    if (movedLegacy) touched.add('events');
    if (plans.some((p) => deletesEvents(p.cmd) || suppresses(p.cmd) || replacesId(p.cmd))) for (const t of HISTORY_TABLES) touched.add(t);
    if (plans.some((p) => p.cmd.subject === 'user')) touched.add('users');
    if (plans.some((p) => p.cmd.subject === 'account')) touched.add('accounts');
    if (deadLetters.hashes.length > 0) touched.add('dead_letters');
    await timed('old_parts', () => deps.verification.waitForOldParts(Date.now(), [...touched]));
    await timed('verify', () => {
      faultPoint('compactor.verify');
      return deps.verification.verify(plans);
    });
    if (replacing.length > 0) await timed('forget', () => forgetReplacements(replacing));
    // NOTE: emptied before the receipt says verified: they hold the round's ids
    await timed('clear', () => deps.staging.clear());
    const verifiedAt = deps.now();
    for (const p of plans) Object.assign(p.receipt, { status: 'verified', verified_at: verifiedAt });
    await deps.writeReceipts(plans.map((p) => p.receipt));
    deps.log.info({ commands: plans.length, users: users.length, accounts: accounts.length, ms: timings }, 'overwrite batch verified');
    return timings;
  };
}
