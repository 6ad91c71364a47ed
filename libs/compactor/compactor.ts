// The compactor's embedded-mode core (DESIGN.md §5, issue 4): applies a batch of overwrite
// commands to ClickHouse — new users/accounts versions, PII-free batched mutations of history,
// forced merges, removal of superseded parts — then proves the result and writes receipts.
import { TupleParam, type ClickHouseClient } from '@clickhouse/client';
import { toNumber } from '../clickhouse/client.js';
import { safeErrorFields } from '../core/errors.js';
import { faultPoint } from '../core/fault-points.js';
import type { Logger } from '../core/logger.js';
import type { JsonMap } from '../events/envelope.js';
import type { OverwriteCommand, OverwriteSubject } from '../kafka/record-types.js';
import { ACCOUNT_ROW_COLUMNS, USER_ROW_COLUMNS, type AccountRow, type UserRow } from '../sink/event-rows.js';
import {
  attributeChanges,
  mapRewrite,
  newAccountRow,
  newUserRow,
  valuesOf,
  type AttributeChanges,
  type MapRewrite,
} from './overwrite-plan.js';
import { COMPACTED_TABLES, singleNodeTarget, type CompactorTarget } from './compactor-target.js';
import { createOverwriteRegistry, type OverwriteRegistry } from './overwrite-registry.js';
import type { SubjectHash } from './subject-hash.js';
import { createReceiptStore, pendingReceipt, type Receipt } from './receipts.js';

export type { Receipt, ReceiptStatus } from './receipts.js';

export interface CompactorOptions {
  /** queries and inserts (on a cluster: through the Distributed tables) */
  client: ClickHouseClient;
  /** one node (default: the client's), or a cluster (compactor-target.ts) */
  target?: CompactorTarget;
  /** how subject ids are kept in receipts, the registry and suppressions (subject-hash.ts) */
  subjectHash: SubjectHash;
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

/** The original record bytes a fleet dead letter keeps (base64 in its payload), as text. */
function originalRecordText(payload: string): string {
  if (!payload.includes('value_base64')) return '';
  try {
    const b64 = (JSON.parse(payload) as { value_base64?: unknown }).value_base64;
    return typeof b64 === 'string' ? Buffer.from(b64, 'base64').toString('utf8') : '';
  } catch {
    return '';
  }
}

/** Thrown by a guard: the batch stops at once, writes no receipt, and is redelivered. */
export class RoundAbortedError extends Error {
  override readonly name: string = 'RoundAbortedError';
}

/** A verification that did not hold: retried like any failed step, its reason is PII-free. */
export class VerificationError extends Error {
  override readonly name = 'VerificationError';
}

const JOIN = 'default.overwrite_join';
const KEYS = 'default.overwrite_keys';
const DELETE_KEYS = 'default.overwrite_delete_keys';
const SUPPRESS_KEYS = 'default.overwrite_suppress_keys';
const DEAD_LETTER_HASHES = 'default.overwrite_dead_letter_hashes';
const ERASE_KEYS = 'default.overwrite_erase_keys';
const LOOKUP_TABLES = [JOIN, KEYS, DELETE_KEYS, SUPPRESS_KEYS, ERASE_KEYS, DEAD_LETTER_HASHES] as const;

// NOTE: the mutation texts below are constants: every value comes from the Join table, so
// system.mutations / query_log never see one (checked in compactor.integration.test.ts).
const jg = (col: string, subject: OverwriteSubject, idExpr: string): string =>
  `joinGet('${JOIN}', '${col}', '${subject}', tenant_id, ${idExpr})`;
const USER_ID = 'assumeNotNull(user_id)';
const ACCOUNT_ID = 'assumeNotNull(account_id)';

/** rewritten map: present keys in repl take the new value, keys in drop_keys go. */
function rewriteExpr(mapCol: string, subject: OverwriteSubject, idExpr: string): string {
  return (
    `mapFilter((k, v) -> NOT has(${jg('drop_keys', subject, idExpr)}, k), ` +
    `mapApply((k, v) -> (k, if(mapContains(${jg('repl', subject, idExpr)}, k), ${jg('repl', subject, idExpr)}[k], v)), ${mapCol}))`
  );
}
/** the part of a map the batch's rewrite concerns (its old or new values) */
function affectedExpr(mapCol: string, subject: OverwriteSubject, idExpr: string): string {
  return `mapFilter((k, v) -> mapContains(${jg('repl', subject, idExpr)}, k) OR has(${jg('drop_keys', subject, idExpr)}, k), ${mapCol})`;
}
/** a map still holding something other than the new values for the batch's keys */
function staleExpr(mapCol: string, subject: OverwriteSubject, idExpr: string): string {
  return (
    `arrayExists((k, v) -> has(${jg('drop_keys', subject, idExpr)}, k) OR (mapContains(${jg('repl', subject, idExpr)}, k) AND v != ${jg('repl', subject, idExpr)}[k]), ` +
    `mapKeys(${mapCol}), mapValues(${mapCol}))`
  );
}
const idCol = (subject: OverwriteSubject): string => (subject === 'user' ? 'user_id' : 'account_id');
const idExprOf = (subject: OverwriteSubject): string => (subject === 'user' ? USER_ID : ACCOUNT_ID);
// NOTE: on a group event `traits` holds the account's traits (Segment), not the user's: user
// rewrites skip group events, and account rewrites touch `traits` only on them.
function historyWhere(subject: OverwriteSubject): string {
  const id = idExprOf(subject);
  const base = `${idCol(subject)} IS NOT NULL AND ('${subject}', tenant_id, ${id}) IN ${KEYS} AND received_at <= ${jg('requested_at', subject, id)}`;
  return subject === 'user' ? `${base} AND type != 'group'` : base;
}
const GROUP_TRAITS = "if(type = 'group', traits, CAST(map(), 'Map(String, String)'))";

export const USER_HISTORY_MUTATION =
  `ALTER TABLE default.events UPDATE traits = ${rewriteExpr('traits', 'user', USER_ID)} ` +
  `WHERE ${historyWhere('user')} SETTINGS mutations_sync = 2`;
// NOTE: a group call may carry the account's traits Segment-style in `traits` too.
export const ACCOUNT_HISTORY_MUTATION =
  `ALTER TABLE default.events UPDATE account_traits = ${rewriteExpr('account_traits', 'account', ACCOUNT_ID)}, ` +
  `traits = if(type = 'group', ${rewriteExpr('traits', 'account', ACCOUNT_ID)}, traits) ` +
  `WHERE ${historyWhere('account')} SETTINGS mutations_sync = 2`;
export const DELETE_EVENTS_MUTATION =
  `ALTER TABLE default.events DELETE WHERE user_id IS NOT NULL AND (tenant_id, ${USER_ID}) IN ${DELETE_KEYS} ` +
  `AND received_at <= ${jg('requested_at', 'user', USER_ID)} SETTINGS mutations_sync = 2`;

/** A command with its changes, before the stored rows are read. */
interface Staged {
  cmd: OverwriteCommand;
  changes: AttributeChanges;
  rewrite: MapRewrite;
}

const DEAD_LETTER_HASH = "cityHash64(payload, ifNull(error, ''))";
/** a deleted subject leaves no row at all (after the merge only its scrubbed tombstone was left) */
export const ERASE_USERS_MUTATION = `ALTER TABLE default.users DELETE WHERE ('user', tenant_id, user_id) IN ${ERASE_KEYS} SETTINGS mutations_sync = 2`;
export const OPTIMIZE_USERS = 'OPTIMIZE TABLE default.users FINAL';
export const OPTIMIZE_ACCOUNTS = 'OPTIMIZE TABLE default.accounts FINAL';
export const ERASE_ACCOUNTS_MUTATION = `ALTER TABLE default.accounts DELETE WHERE ('account', tenant_id, account_id) IN ${ERASE_KEYS} SETTINGS mutations_sync = 2`;
/** dead letters (poison records, kept as sent) holding an old value of the batch go entirely */
export const DEAD_LETTERS_MUTATION = `ALTER TABLE default.dead_letters DELETE WHERE ${DEAD_LETTER_HASH} IN ${DEAD_LETTER_HASHES} SETTINGS mutations_sync = 2`;

const suppresses = (c: OverwriteCommand): boolean => c.subject === 'user' && c.suppress;
const SUPPRESSED_WHERE =
  `user_id IS NOT NULL AND (tenant_id, ${USER_ID}) IN ${SUPPRESS_KEYS} AND received_at > ${jg('requested_at', 'user', USER_ID)}`;
/** events of a suppressed user received after the request but stored before the sinks knew */
export const SUPPRESS_EVENTS_MUTATION = `ALTER TABLE default.events DELETE WHERE ${SUPPRESSED_WHERE} SETTINGS mutations_sync = 2`;

interface Plan extends Staged {
  storedUser: UserRow | null;
  storedAccount: AccountRow | null;
  newUser: UserRow | null;
  newAccount: AccountRow | null;
  /** old values (plain and JSON-encoded) — in memory only, never logged or persisted */
  oldValues: Set<string>;
  newValues: Set<string>;
  receipt: Receipt;
}

const keyOf = (c: { subject: string; tenant_id: string; id: string }): string => `${c.subject}\u0000${c.tenant_id}\u0000${c.id}`;

/**
 * Per table the larger count. NOTE: a round run again after a crash or a failed step finds done
 * what the earlier one did (events deleted, a tombstone written) and counts less: the receipt
 * keeps what the request rewrote in all.
 */
function maxCounts(a: Readonly<Record<string, number>>, b: Readonly<Record<string, number>>): Record<string, number> {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = Math.max(out[k] ?? 0, v);
  return out;
}

export function createCompactor(opts: CompactorOptions): Compactor {
  const { client } = opts;
  const target = opts.target ?? singleNodeTarget(client);
  const log = opts.logger.child({ module: 'compactor' });
  const now = opts.now ?? Date.now;
  const registry = opts.registry ?? createOverwriteRegistry({ client, subjectHash: opts.subjectHash });
  const idHash = (cmd: OverwriteCommand): string => opts.subjectHash(cmd.tenant_id, cmd.id);
  const maxAttempts = opts.maxAttempts ?? 3;
  const oldPartsTimeoutMs = opts.oldPartsTimeoutMs ?? 60_000;
  let lastVersion = 0;
  let lastTimings: Record<string, number> = {};
  // NOTE: the Join/Set tables hold one batch at a time: batches run strictly one after another.
  let chain: Promise<unknown> = Promise.resolve();

  const version = (): number => (lastVersion = Math.max(lastVersion + 1, now()));

  async function rows<T>(query: string, query_params?: Record<string, unknown>): Promise<T[]> {
    const rs = await client.query({ query, format: 'JSONEachRow', ...(query_params ? { query_params } : {}) });
    return rs.json<T>();
  }

  /** a mutation or OPTIMIZE of the compacted tables (on a cluster: of every shard's replicas) */
  const alter = (sql: string): Promise<void> => target.alter(sql);

  const receiptStore = createReceiptStore(client, opts.subjectHash);
  const writeReceipts = (receipts: readonly Receipt[]): Promise<void> => receiptStore.write(receipts, version());

  /** The stored users/accounts rows of the round's subjects (keys staged in the Set table). */
  async function readStored(cmds: readonly OverwriteCommand[]): Promise<{ users: Map<string, UserRow>; accounts: Map<string, AccountRow> }> {
    const users = new Map<string, UserRow>();
    const accounts = new Map<string, AccountRow>();
    if (cmds.some((c) => c.subject === 'user')) {
      const found = await rows<Record<string, unknown>>(
        `SELECT tenant_id, user_id, email, first_name, last_name, name, phone, title, company, account_id, traits,
                toUnixTimestamp64Milli(first_seen) AS first_seen, toUnixTimestamp64Milli(last_seen) AS last_seen,
                identity_anonymized, version, is_deleted, toUnixTimestamp64Milli(updated_at) AS updated_at
         FROM default.users FINAL WHERE ('user', tenant_id, user_id) IN ${KEYS}`,
      );
      for (const r of found) {
        const row = { ...r, first_seen: toNumber(r.first_seen), last_seen: toNumber(r.last_seen), version: toNumber(r.version), updated_at: toNumber(r.updated_at) } as unknown as UserRow;
        users.set(keyOf({ subject: 'user', tenant_id: row.tenant_id, id: row.user_id }), row);
      }
    }
    if (cmds.some((c) => c.subject === 'account')) {
      const found = await rows<Record<string, unknown>>(
        `SELECT tenant_id, account_id, domain, source, name, traits, version, is_deleted, toUnixTimestamp64Milli(updated_at) AS updated_at
         FROM default.accounts FINAL WHERE ('account', tenant_id, account_id) IN ${KEYS}`,
      );
      for (const r of found) {
        const row = { ...r, version: toNumber(r.version), updated_at: toNumber(r.updated_at) } as unknown as AccountRow;
        accounts.set(keyOf({ subject: 'account', tenant_id: row.tenant_id, id: row.account_id }), row);
      }
    }
    return { users, accounts };
  }

  /**
   * Loads the round's values into the Join/Set tables the mutations read (no PII in any SQL
   * text) — on every node, each through its own connection — and checks each node holds them.
   */
  async function stage(plans: readonly Staged[]): Promise<void> {
    const deletes = plans.filter((p) => p.cmd.subject === 'user' && p.cmd.mode === 'delete' && p.cmd.delete_events);
    const erased = plans.filter((p) => p.cmd.mode === 'delete');
    const suppressed = plans.filter((p) => suppresses(p.cmd));
    const tables: { table: string; values: Record<string, unknown>[] }[] = [
      {
        table: JOIN,
        values: plans.map((p) => ({
          subject: p.cmd.subject,
          tenant_id: p.cmd.tenant_id,
          id: p.cmd.id,
          repl: p.rewrite.repl,
          drop_keys: p.rewrite.drop,
          requested_at: p.cmd.requested_at,
        })),
      },
      { table: KEYS, values: plans.map((p) => ({ subject: p.cmd.subject, tenant_id: p.cmd.tenant_id, id: p.cmd.id })) },
      { table: DELETE_KEYS, values: deletes.map((p) => ({ tenant_id: p.cmd.tenant_id, id: p.cmd.id })) },
      { table: ERASE_KEYS, values: erased.map((p) => ({ subject: p.cmd.subject, tenant_id: p.cmd.tenant_id, id: p.cmd.id })) },
      { table: SUPPRESS_KEYS, values: suppressed.map((p) => ({ tenant_id: p.cmd.tenant_id, id: p.cmd.id })) },
    ];
    await fillLookups(tables, [JOIN, KEYS, DELETE_KEYS, SUPPRESS_KEYS, ERASE_KEYS]);
  }

  /**
   * Empties `truncate` and fills `tables` on every node, then checks every node holds exactly
   * those rows (a node that missed the batch would run a mutation on other keys: fail closed).
   * NOTE: a round's keys are unique per table (one command per subject and round), so the
   * row counts are the number of rows sent.
   */
  async function fillLookups(tables: readonly { table: string; values: Record<string, unknown>[] }[], truncate: readonly string[]): Promise<void> {
    for (const node of target.nodes) {
      for (const t of truncate) await node.command({ query: `TRUNCATE TABLE ${t}` });
      for (const { table, values } of tables) {
        if (values.length > 0) await node.insert({ table: table.replace(/^default\./, ''), format: 'JSONEachRow', values });
      }
    }
    const expected = new Map(tables.map(({ table, values }) => [table.replace(/^default\./, ''), values.length]));
    for (const [n, node] of target.nodes.entries()) {
      const held = await node.query({
        query: `SELECT name, total_rows FROM system.tables WHERE database = 'default' AND name IN {names:Array(String)}`,
        query_params: { names: [...expected.keys()] },
        format: 'JSONEachRow',
      });
      const counts = new Map((await held.json<{ name: string; total_rows: unknown }>()).map((r) => [r.name, toNumber(r.total_rows)]));
      for (const [table, rows] of expected) {
        if ((counts.get(table) ?? 0) !== rows) {
          throw new VerificationError(`node ${n + 1} of ${target.nodes.length} holds ${counts.get(table) ?? 0} rows of ${table}, not the batch's ${rows}`);
        }
      }
    }
  }

  /** Per subject key: event rows whose maps hold affected keys, and the distinct values there. */
  async function historyValues(subject: OverwriteSubject, from = 'default.events'): Promise<Map<string, { n: number; values: string[]; stale: number }>> {
    const id = idExprOf(subject);
    const maps = subject === 'user' ? ['traits'] : ['account_traits', GROUP_TRAITS];
    const affected = maps.map((m) => affectedExpr(m, subject, id));
    const stale = maps.map((m) => staleExpr(m, subject, id)).join(' OR ');
    const found = await rows<{ tenant_id: string; id: string; n: unknown; stale: unknown; vals: string[] }>(
      `SELECT tenant_id, ${id} AS id,
              countIf(${affected.map((a) => `notEmpty(${a})`).join(' OR ')}) AS n,
              countIf(${stale}) AS stale,
              groupUniqArrayArray(arrayConcat(${affected.map((a) => `mapValues(${a})`).join(', ')})) AS vals
       FROM ${from} WHERE ${historyWhere(subject)} GROUP BY tenant_id, id`,
    );
    const out = new Map<string, { n: number; values: string[]; stale: number }>();
    for (const r of found) out.set(keyOf({ subject, tenant_id: r.tenant_id, id: r.id }), { n: toNumber(r.n), values: r.vals, stale: toNumber(r.stale) });
    return out;
  }

  async function waitForOldParts(since: number): Promise<number> {
    const started = Date.now();
    const deadline = started + oldPartsTimeoutMs;
    for (;;) {
      // NOTE: a part created before the rewrite finished and now inactive may hold old
      // values on disk; parts created after it cannot (modification_time is in seconds).
      const [r] = await rows<{ n: unknown }>(
        `SELECT count() AS n FROM ${target.parts}
         WHERE database = 'default' AND table IN {tables:Array(String)} AND active = 0
           AND modification_time <= toDateTime({since:UInt32})`,
        { tables: COMPACTED_TABLES.map(target.partsTable), since: Math.ceil((since + target.clockMarginMs) / 1000) },
      );
      if (toNumber(r?.n) === 0) return Date.now() - started;
      if (Date.now() > deadline) throw new VerificationError(`superseded parts still on disk after ${oldPartsTimeoutMs} ms`);
      await new Promise((res) => setTimeout(res, 250));
    }
  }

  /**
   * Dead letters of the batch's tenants, received before its requests, that contain an old
   * value: their hashes, and per request how many. Searched here in memory (payload, error and
   * the original record bytes the fleet keeps as base64), so no value goes into any SQL.
   */
  async function deadLettersHolding(plans: readonly Plan[], from = 'default.dead_letters'): Promise<{ hashes: string[]; perRequest: Map<string, number> }> {
    const perRequest = new Map<string, number>();
    const hashes: string[] = [];
    const byTenant = new Map<string, Plan[]>();
    for (const p of plans) {
      if (p.oldValues.size === 0) continue;
      const list = byTenant.get(p.cmd.tenant_id);
      if (list) list.push(p);
      else byTenant.set(p.cmd.tenant_id, [p]);
    }
    if (byTenant.size === 0) return { hashes, perRequest };
    const until = Math.max(...plans.map((p) => p.cmd.requested_at));
    const found = await rows<{ tenant_id: string; h: string; payload: string; error: string | null }>(
      `SELECT tenant_id, toString(${DEAD_LETTER_HASH}) AS h, payload, error FROM ${from}
       WHERE tenant_id IN {tenants:Array(String)} AND received_at <= fromUnixTimestamp64Milli({until:Int64})`,
      { tenants: [...byTenant.keys()], until },
    );
    for (const r of found) {
      const text = `${r.payload}\n${r.error ?? ''}\n${originalRecordText(r.payload)}`;
      const matching = (byTenant.get(r.tenant_id) ?? []).filter((p) => [...p.oldValues].some((v) => v.length >= 2 && !p.newValues.has(v) && text.includes(v)));
      if (matching.length === 0) continue;
      hashes.push(r.h);
      for (const p of matching) perRequest.set(p.cmd.request_id, (perRequest.get(p.cmd.request_id) ?? 0) + 1);
    }
    return { hashes, perRequest };
  }

  async function verify(plans: readonly Plan[]): Promise<void> {
    // NOTE: every physical copy is read (on a cluster: every replica, not one per shard)
    if ((await deadLettersHolding(plans, target.everyCopy('dead_letters'))).hashes.length > 0) throw new VerificationError('a dead letter still holds an old value');
    if (plans.some((p) => suppresses(p.cmd))) {
      const [r] = await rows<{ n: unknown }>(`SELECT count() AS n FROM ${target.everyCopy('events')} WHERE ${SUPPRESSED_WHERE}`);
      if (toNumber(r?.n) > 0) throw new VerificationError(`${toNumber(r?.n)} events of a suppressed user remain`);
    }
    for (const subject of ['user', 'account'] as const) {
      const ps = plans.filter((p) => p.cmd.subject === subject);
      if (ps.length === 0) continue;
      const history = await historyValues(subject, target.everyCopy('events'));
      for (const p of ps) {
        const h = history.get(keyOf(p.cmd));
        if (!h) continue;
        if (p.cmd.mode === 'delete' && p.cmd.delete_events && h.n > 0) throw new VerificationError('events of a deleted user remain');
        if (h.stale > 0) throw new VerificationError(`${h.stale} events rows still hold a superseded value`);
        if (h.values.some((v) => p.oldValues.has(v) && !p.newValues.has(v))) throw new VerificationError('an old value remains in events');
      }
      // without FINAL: after the forced merge no version older than the compactor's remains
      const table = subject === 'user' ? 'users' : 'accounts';
      const cols = subject === 'user' ? USER_ROW_COLUMNS : ACCOUNT_ROW_COLUMNS;
      const found = await rows<Record<string, unknown>>(
        `SELECT ${cols.filter((c) => !['first_seen', 'last_seen', 'updated_at'].includes(c)).join(', ')} FROM ${target.everyCopy(table)}
         WHERE ('${subject}', tenant_id, ${idCol(subject)}) IN ${KEYS}`,
      );
      const physical = new Map<string, Record<string, unknown>[]>();
      for (const r of found) {
        const k = keyOf({ subject, tenant_id: String(r.tenant_id), id: String(r[idCol(subject)]) });
        physical.set(k, [...(physical.get(k) ?? []), r]);
      }
      for (const p of ps) {
        const expected = subject === 'user' ? p.newUser : p.newAccount;
        const mine = physical.get(keyOf(p.cmd)) ?? [];
        // NOTE: rows newer than the compactor's are the sink's, for events received after the
        // request (live traffic): they may differ, but never hold an old value (checked below).
        if (expected !== null && p.cmd.mode === 'delete') {
          // the erased row is gone; a newer one can only be the sink's, for later events
          if (mine.some((r) => toNumber(r.version) <= expected.version)) throw new VerificationError(`${table} still holds a row of a deleted subject`);
        } else if (expected !== null) {
          if (mine.some((r) => toNumber(r.version) < expected.version)) throw new VerificationError(`${table} still holds a superseded version after the merge`);
          const row = mine.find((r) => toNumber(r.version) === expected.version);
          if (!row && mine.length === 0) throw new VerificationError(`${table} lacks the new version`);
          if (row) {
            const exp = expected as unknown as Record<string, unknown>;
            for (const col of [...Object.keys(p.changes.columns), 'is_deleted']) {
              if (row[col] !== exp[col]) throw new VerificationError(`${table}.${col} does not hold the new value`);
            }
            const traits = row.traits as JsonMap;
            for (const [k, v] of Object.entries(p.changes.traits)) {
              if ((traits[k] ?? null) !== (v === null ? null : JSON.stringify(v))) throw new VerificationError(`${table}.traits does not hold the new value`);
            }
          }
        }
        // no stored row (or a tombstone already): nothing to rewrite, but no old value either
        for (const row of mine) {
          for (const v of Object.values(row)) {
            const texts = typeof v === 'string' ? [v] : v && typeof v === 'object' ? Object.values(v as Record<string, unknown>).map(String) : [];
            if (texts.some((t) => p.oldValues.has(t) && !p.newValues.has(t))) throw new VerificationError(`${table} still holds an old value`);
          }
        }
      }
    }
  }

  async function runRound(cmds: readonly OverwriteCommand[], receipts: Map<string, Receipt>): Promise<void> {
    const timings: Record<string, number> = {};
    const timed = async <T>(name: string, f: () => Promise<T>): Promise<T> => {
      opts.guard?.();
      const t0 = Date.now();
      try {
        return await f();
      } finally {
        timings[name] = (timings[name] ?? 0) + Date.now() - t0;
      }
    };
    const staged: Staged[] = cmds.map((cmd) => {
      const changes = attributeChanges(cmd, opts.piiTraits?.(cmd.tenant_id) ?? []);
      return { cmd, changes, rewrite: mapRewrite(cmd.subject, changes) };
    });

    // The registry first: from here on the sink rewrites late events of these subjects too.
    await timed('register', async () => {
      await client.insert({
        table: 'overwrite_values',
        format: 'JSONEachRow',
        values: staged.flatMap((p) => {
          // NOTE: the id only as its hash: these rows outlive the request by the race window
          const base = { request_id: p.cmd.request_id, tenant_id: p.cmd.tenant_id, subject: p.cmd.subject, id: '', id_hash: idHash(p.cmd), mode: p.cmd.mode, delete_events: p.cmd.delete_events ? 1 : 0, requested_at: p.cmd.requested_at };
          return [
            ...Object.entries(p.rewrite.repl).map(([attr, new_value]) => ({ ...base, attr, new_value })),
            ...p.rewrite.drop.map((attr) => ({ ...base, attr, new_value: null })),
          ];
        }),
      });
      registry.record(
        staged.map((p) => ({
          request_id: p.cmd.request_id,
          tenant_id: p.cmd.tenant_id,
          subject: p.cmd.subject,
          id_hash: idHash(p.cmd),
          requested_at: p.cmd.requested_at,
          rewrite: p.rewrite,
          delete_events: p.cmd.subject === 'user' && p.cmd.mode === 'delete' && p.cmd.delete_events,
        })),
      );
      const suppressions = staged
        .filter((p) => suppresses(p.cmd))
        .map((p) => ({ tenant_id: p.cmd.tenant_id, subject_id_hash: idHash(p.cmd), request_id: p.cmd.request_id, requested_at: p.cmd.requested_at }));
      if (suppressions.length > 0) {
        await client.insert({ table: 'suppressions', format: 'JSONEachRow', values: suppressions });
        registry.recordSuppressions(suppressions);
      }
      if (opts.afterRegister) await opts.afterRegister();
    });
    // NOTE: fault points (libs/core/fault-points.ts) are test-only crashes, no-ops in a build
    faultPoint('compactor.registry');
    await timed('stage', () => stage(staged));

    const stored = await timed('read', () => readStored(cmds));
    const t = now();
    const plans: Plan[] = staged.map(({ cmd, changes, rewrite }) => {
      const storedUser = cmd.subject === 'user' ? (stored.users.get(keyOf(cmd)) ?? null) : null;
      const storedAccount = cmd.subject === 'account' ? (stored.accounts.get(keyOf(cmd)) ?? null) : null;
      const newUser = cmd.subject === 'user' ? newUserRow(storedUser, cmd, changes, t) : null;
      const newAccount = cmd.subject === 'account' ? newAccountRow(storedAccount, cmd, changes, t) : null;
      const newValues = new Set<string>();
      for (const v of [...Object.values(changes.columns), ...Object.values(changes.traits)]) {
        if (v !== null) newValues.add(v).add(JSON.stringify(v));
      }
      return {
        cmd,
        changes,
        rewrite,
        storedUser,
        storedAccount,
        newUser,
        newAccount,
        oldValues: new Set(valuesOf(storedUser ?? storedAccount, changes)),
        newValues,
        receipt: receipts.get(cmd.request_id) as Receipt,
      };
    });

    // Old values of history, captured before the rewrite: memory only.
    const rewritten = new Map<string, Record<string, number>>();
    for (const subject of ['user', 'account'] as const) {
      if (!plans.some((p) => p.cmd.subject === subject)) continue;
      const history = await timed('capture', () => historyValues(subject));
      for (const p of plans) {
        if (p.cmd.subject !== subject) continue;
        const h = history.get(keyOf(p.cmd));
        for (const v of h?.values ?? []) if (!p.newValues.has(v)) p.oldValues.add(v);
        rewritten.set(p.cmd.request_id, { events: h?.n ?? 0 });
      }
    }

    const deletedEvents = new Map<string, number>();
    if (plans.some((p) => p.cmd.subject === 'user' && p.cmd.mode === 'delete' && p.cmd.delete_events)) {
      // every event of the user received before the request goes, with or without traits
      const found = await timed('capture', () =>
        rows<{ tenant_id: string; id: string; n: unknown }>(
          `SELECT tenant_id, ${USER_ID} AS id, count() AS n FROM default.events FINAL
           WHERE user_id IS NOT NULL AND (tenant_id, ${USER_ID}) IN ${DELETE_KEYS} AND received_at <= ${jg('requested_at', 'user', USER_ID)}
           GROUP BY tenant_id, id`,
        ),
      );
      for (const r of found) deletedEvents.set(keyOf({ subject: 'user', tenant_id: r.tenant_id, id: r.id }), toNumber(r.n));
    }
    const deadLetters = await timed('dead_letters', () => deadLettersHolding(plans));
    for (const p of plans) {
      const rw = rewritten.get(p.cmd.request_id) ?? {};
      if (p.cmd.subject === 'user') rw.users = p.newUser ? 1 : 0;
      else rw.accounts = p.newAccount ? 1 : 0;
      if (p.cmd.subject === 'user' && p.cmd.mode === 'delete' && p.cmd.delete_events) {
        rw.events_deleted = deletedEvents.get(keyOf(p.cmd)) ?? 0;
        rw.events = 0;
      }
      const letters = deadLetters.perRequest.get(p.cmd.request_id);
      if (letters) rw.dead_letters_deleted = letters;
      p.receipt.rows_rewritten = maxCounts(p.receipt.rows_rewritten, rw);
    }
    // TRICKY: counted before anything is written or deleted, and kept (still pending) before it
    // is: a round run again after a crash from here on counts only what is left to do.
    await writeReceipts(plans.map((p) => p.receipt));

    const users = plans.flatMap((p) => (p.newUser ? [p.newUser] : []));
    const accounts = plans.flatMap((p) => (p.newAccount ? [p.newAccount] : []));
    await timed('dimensions', async () => {
      if (users.length > 0) await client.insert({ table: 'users', format: 'JSONEachRow', values: users });
      if (accounts.length > 0) await client.insert({ table: 'accounts', format: 'JSONEachRow', values: accounts });
    });
    await timed('mutation', async () => {
      if (deadLetters.hashes.length > 0) {
        await fillLookups([{ table: DEAD_LETTER_HASHES, values: [...new Set(deadLetters.hashes)].map((h) => ({ h })) }], [DEAD_LETTER_HASHES]);
        await alter(DEAD_LETTERS_MUTATION);
      }
      if (plans.some((p) => p.cmd.subject === 'user')) await alter(USER_HISTORY_MUTATION);
      if (plans.some((p) => p.cmd.subject === 'account')) await alter(ACCOUNT_HISTORY_MUTATION);
      faultPoint('compactor.mutation');
      if (plans.some((p) => p.cmd.subject === 'user' && p.cmd.mode === 'delete' && p.cmd.delete_events)) {
        await alter(DELETE_EVENTS_MUTATION);
      }
      if (plans.some((p) => suppresses(p.cmd))) {
        // NOTE: counted before they go, per request and day, like the sink counts its drops
        const late = await rows<{ tenant_id: string; id: string; day: string; n: unknown }>(
          `SELECT tenant_id, ${USER_ID} AS id, toString(toDate(received_at)) AS day, count() AS n
           FROM default.events WHERE ${SUPPRESSED_WHERE} GROUP BY tenant_id, id, day`,
        );
        if (late.length > 0) {
          const requestOf = new Map(plans.filter((p) => suppresses(p.cmd)).map((p) => [keyOf(p.cmd), p.cmd.request_id]));
          await alter(SUPPRESS_EVENTS_MUTATION);
          await client.insert({
            table: 'suppressed_events',
            format: 'JSONEachRow',
            values: late.map((r) => ({ tenant_id: r.tenant_id, request_id: requestOf.get(keyOf({ subject: 'user', tenant_id: r.tenant_id, id: r.id })), day: r.day, events: toNumber(r.n) })),
          });
        }
      }
    });
    // NOTE: events need no OPTIMIZE: the mutation rewrote every physical copy (redelivered
    // duplicates included); users/accounts hold superseded versions until merged.
    await timed('merge', async () => {
      if (users.length > 0) await alter(OPTIMIZE_USERS);
      if (accounts.length > 0) await alter(OPTIMIZE_ACCOUNTS);
      faultPoint('compactor.merge');
      if (plans.some((p) => p.cmd.mode === 'delete' && p.cmd.subject === 'user')) await alter(ERASE_USERS_MUTATION);
      if (plans.some((p) => p.cmd.mode === 'delete' && p.cmd.subject === 'account')) await alter(ERASE_ACCOUNTS_MUTATION);
    });
    const rewrittenAt = now();
    for (const p of plans) Object.assign(p.receipt, { status: 'applied', applied_at: rewrittenAt, reason: null });
    await writeReceipts(plans.map((p) => p.receipt));
    await timed('old_parts', () => waitForOldParts(Date.now()));
    await timed('verify', () => {
      faultPoint('compactor.verify');
      return verify(plans);
    });
    const verifiedAt = now();
    for (const p of plans) Object.assign(p.receipt, { status: 'verified', verified_at: verifiedAt });
    await writeReceipts(plans.map((p) => p.receipt));
    lastTimings = timings;
    log.info({ commands: plans.length, users: users.length, accounts: accounts.length, ms: timings }, 'overwrite batch verified');
  }

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

  /** The lookup tables hold the round's ids (and keys) on disk: emptied as soon as it is done. */
  async function clearLookups(): Promise<void> {
    try {
      for (const node of target.nodes) for (const t of LOOKUP_TABLES) await node.command({ query: `TRUNCATE TABLE ${t}` });
    } catch (err) {
      log.warn({ ...safeErrorFields(err) }, 'could not empty the lookup tables (the next round does)');
    }
  }

  async function anonymizedTenants(cmds: readonly OverwriteCommand[]): Promise<Set<string>> {
    const found = await rows<{ tenant_id: string }>(
      `SELECT DISTINCT tenant_id FROM default.events WHERE tenant_id IN {tenants:Array(String)} AND identity_anonymized = 1`,
      { tenants: [...new Set(cmds.map((c) => c.tenant_id))] },
    );
    return new Set(found.map((r) => r.tenant_id));
  }

  // NOTE: superseded parts hold old values until removed: migration 0006 keeps them briefly.
  async function applyBatch(requested: readonly OverwriteCommand[]): Promise<Receipt[]> {
    if (requested.length === 0) return [];
    const commands = opts.aliases ? withAliases(requested, opts.aliases, await anonymizedTenants(requested)) : requested;
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
    if (todo.length > 0) await writeReceipts(todo.map((c) => receipts.get(c.request_id) as Receipt));

    // TRICKY: the Join table holds one entry per (subject, tenant, id), so two commands for
    // one subject go in successive rounds, oldest request first.
    const rounds: OverwriteCommand[][] = [];
    const roundsOfKey = new Map<string, number>();
    for (const cmd of [...todo].sort((a, b) => a.requested_at - b.requested_at)) {
      const n = roundsOfKey.get(keyOf(cmd)) ?? 0;
      roundsOfKey.set(keyOf(cmd), n + 1);
      (rounds[n] ??= []).push(cmd);
    }
    for (const round of rounds) {
      for (let attempt = 1; ; attempt++) {
        for (const c of round) (receipts.get(c.request_id) as Receipt).attempts++;
        try {
          await runRound(round, receipts);
          break;
        } catch (err) {
          if (err instanceof RoundAbortedError) throw err;
          const step = err instanceof VerificationError ? `verification failed: ${err.message}` : `step failed: ${Object.values(safeErrorFields(err)).join(' ')}`;
          log.warn({ attempt, maxAttempts, commands: round.length, ...safeErrorFields(err) }, 'overwrite round failed');
          await stopUnfinished();
          if (attempt >= maxAttempts) {
            for (const c of round) Object.assign(receipts.get(c.request_id) as Receipt, { status: 'failed', reason: step });
            // NOTE: if even this fails, apply() rejects: the fleet's consumer then redelivers
            // the commands instead of committing past them with no receipt.
            await writeReceipts(round.map((c) => receipts.get(c.request_id) as Receipt));
            break;
          }
          await new Promise((res) => setTimeout(res, 200 * 2 ** attempt));
        }
      }
      await clearLookups();
    }
    // one receipt per requested command, in input order
    return requested.map((c) => receipts.get(c.request_id) as Receipt);
  }

  return {
    registry,
    lastTimings: () => ({ ...lastTimings }),
    apply(commands) {
      const run = chain.then(() => applyBatch(commands));
      chain = run.catch(() => undefined);
      return run;
    },
  };
}
