// The proof a round ends with: superseded parts gone from disk, then, in every physical copy,
// no dead letter, trait snapshot (identify_snapshots, and `events` while it still holds any) or
// users/accounts row still holding an old value, no superseded version, no row, event or
// snapshot of an erased subject, no history row still under an id an erasure replaced. A check
// that fails throws a PII-free VerificationError.
import type { ClickHouseClient } from '@clickhouse/client';
import { toNumber } from '../clickhouse/client.js';
import type { AccountRow } from '../clickhouse/tables/accounts.js';
import type { UserRow } from '../clickhouse/tables/users.js';
import { VerificationError } from './compactor-errors.js';
import type { CompactedTable, CompactorTarget } from './compactor-target.js';
import { physicalRows } from './dimension-reads.js';
import { countDeletedEvents, countReplacedIds, countSuppressedEvents, deadLettersHolding, eventsHoldSnapshots, historyValuesOf } from './history-scans.js';
import { HISTORY_TABLES, type HistoryTable } from './mutation-sql.js';
import { deletesEvents, erasesRow, keyOf, replacesId, suppresses, type Plan } from './round-plan.js';
import { queryRows } from './row-parsers.js';

export interface Verification {
  /**
   * Waits until no part of `tables` superseded before `since` is left on disk.
   * NOTE: `tables` are those the round mutated or merged; a part another table's background
   * merge superseded holds nothing its active successor does not, and that is verified.
   */
  waitForOldParts(since: number, tables: readonly CompactedTable[]): Promise<number>;
  verify(plans: readonly Plan[]): Promise<void>;
}

/** Every string a row holds, in its columns and its traits map. */
function textsOf(row: UserRow | AccountRow): string[] {
  const fields: Readonly<Record<string, unknown>> = { ...row };
  return Object.values(fields).flatMap((v) => (typeof v === 'string' ? [v] : v && typeof v === 'object' ? Object.values(v).map(String) : []));
}

export function createVerification(opts: { client: ClickHouseClient; target: CompactorTarget; oldPartsTimeoutMs: number }): Verification {
  const { client, target, oldPartsTimeoutMs } = opts;

  async function waitForOldParts(since: number, tables: readonly CompactedTable[]): Promise<number> {
    const started = Date.now();
    if (tables.length === 0) return 0;
    const deadline = started + oldPartsTimeoutMs;
    for (;;) {
      // NOTE: a part created before the rewrite finished and now inactive may hold old
      // values on disk; parts created after it cannot (modification_time is in seconds).
      const [r] = await queryRows(
        client,
        `SELECT count() AS n FROM ${target.parts}
         WHERE database = 'default' AND table IN {tables:Array(String)} AND active = 0
           AND modification_time <= toDateTime({since:UInt32})`,
        { tables: tables.map(target.partsTable), since: Math.ceil((since + target.clockMarginMs) / 1000) },
      );
      if (toNumber(r?.n) === 0) return Date.now() - started;
      if (Date.now() > deadline) throw new VerificationError(`superseded parts still on disk after ${oldPartsTimeoutMs} ms`);
      await new Promise((res) => setTimeout(res, 250));
    }
  }

  /** The subject's stored rows after the merge: the new version, nothing older, no old value. */
  function checkRows(p: Plan, table: 'users' | 'accounts', mine: readonly (UserRow | AccountRow)[]): void {
    const expected = p.cmd.subject === 'user' ? p.newUser : p.newAccount;
    // NOTE: rows newer than the compactor's are the sink's, for events received after the
    // request (live traffic): they may differ, but never hold an old value (checked below).
    if (expected !== null && erasesRow(p.cmd)) {
      // the erased (or re-keyed) row is gone; a newer one can only be the sink's, for later events
      if (mine.some((r) => r.version <= expected.version)) throw new VerificationError(`${table} still holds a row of a ${p.cmd.mode === 'delete' ? 'deleted' : 're-keyed'} subject`);
    } else if (expected !== null) {
      if (mine.some((r) => r.version < expected.version)) throw new VerificationError(`${table} still holds a superseded version after the merge`);
      const row = mine.find((r) => r.version === expected.version);
      if (!row && mine.length === 0) throw new VerificationError(`${table} lacks the new version`);
      if (row) {
        const got: Readonly<Record<string, unknown>> = { ...row };
        const want: Readonly<Record<string, unknown>> = { ...expected };
        for (const col of [...Object.keys(p.changes.columns), 'is_deleted']) {
          if (got[col] !== want[col]) throw new VerificationError(`${table}.${col} does not hold the new value`);
        }
        for (const [k, v] of Object.entries(p.changes.traits)) {
          if ((row.traits[k] ?? null) !== (v === null ? null : JSON.stringify(v))) throw new VerificationError(`${table}.traits does not hold the new value`);
        }
      }
    }
    // no stored row (or a tombstone already): nothing to rewrite, but no old value either
    for (const row of mine) {
      if (textsOf(row).some((t) => p.oldValues.has(t) && !p.newValues.has(t))) throw new VerificationError(`${table} still holds an old value`);
    }
  }

  async function verify(plans: readonly Plan[]): Promise<void> {
    // NOTE: every physical copy is read (on a cluster: every replica, not one per shard)
    if ((await deadLettersHolding(client, plans, target.everyCopy('dead_letters'))).hashes.length > 0) {
      throw new VerificationError('a dead letter still holds an old value');
    }
    // NOTE: asked again here, not taken from the round: rows with traits may reach `events` meanwhile
    const historyTables: HistoryTable[] = ['identify_snapshots'];
    if (await eventsHoldSnapshots(client, target.everyCopy('events'))) historyTables.push('events');
    const copies = historyTables.map((t) => target.everyCopy(t));
    if (plans.some((p) => suppresses(p.cmd))) {
      for (const t of HISTORY_TABLES) {
        const n = await countSuppressedEvents(client, target.everyCopy(t));
        if (n > 0) throw new VerificationError(`${n} ${t} rows of a suppressed user remain`);
      }
    }
    if (plans.some((p) => replacesId(p.cmd))) {
      for (const t of HISTORY_TABLES) {
        const n = await countReplacedIds(client, t, target.everyCopy(t));
        if (n > 0) throw new VerificationError(`${n} ${t} rows still hold an id the erasure replaced`);
      }
    }
    if (plans.some((p) => deletesEvents(p.cmd))) {
      for (const t of HISTORY_TABLES) {
        const n = await countDeletedEvents(client, target.everyCopy(t));
        if (n > 0) throw new VerificationError(`${n} ${t} rows of a deleted user remain`);
      }
    }
    for (const subject of ['user', 'account'] as const) {
      const ps = plans.filter((p) => p.cmd.subject === subject);
      if (ps.length === 0) continue;
      // NOTE: a replacing command's history and row moved to its new id (staged as a key too):
      // checked there as a command of the same mode that keeps its id
      const underIds = ps.flatMap((p) => (replacesId(p.cmd) ? [p, { ...p, cmd: { ...p.cmd, id: p.cmd.replacement_id, replacement_id: undefined } }] : [p]));
      const history = await historyValuesOf(client, subject, copies);
      for (const p of underIds) {
        const h = history.get(keyOf(p.cmd));
        if (!h) continue;
        if (p.cmd.mode === 'delete' && p.cmd.delete_events && h.n > 0) throw new VerificationError('events of a deleted user remain');
        if (h.stale > 0) throw new VerificationError(`${h.stale} snapshot rows still hold a superseded value`);
        if (h.values.some((v) => p.oldValues.has(v) && !p.newValues.has(v))) throw new VerificationError('an old value remains in the trait snapshots');
      }
      // without FINAL: after the forced merge no version older than the compactor's remains
      const table = subject === 'user' ? 'users' : 'accounts';
      const physical = await physicalRows(client, subject, target.everyCopy(table));
      for (const p of underIds) checkRows(p, table, physical.get(keyOf(p.cmd)) ?? []);
    }
  }

  return { waitForOldParts, verify };
}
