// Opt-in translation of history (issue 15 item 2): every clear identify id of a tenant received
// before its `anonymizeSince` becomes its pseudonym under the tenant's current key version, and
// its PII traits their hashed form, as the anonymizer would have written them — events
// (user_id, previous_id, legacy traits), identify_snapshots, users (re-keyed), dead letters
// (deleted) — then superseded parts leave disk and every physical copy is checked: a verified
// receipt means no clear id of the tenant's pre-opt-in history is left in those tables.
// This module owns one request: its steps, attempts and receipt. translation-reads.ts reads and
// stages, translation-sql.ts holds the statements, translation-plan.ts the pure rewriting.
import type { ClickHouseClient } from '@clickhouse/client';
import { KeyUnavailableError, type KeyRing } from '../anonymize/key-ring.js';
import { toNumber } from '../clickhouse/client.js';
import { insertUsers, USER_ATTRIBUTE_COLUMNS, type UserAttributeColumn, type UserRow } from '../clickhouse/tables/users.js';
import { safeErrorFields } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { TenantFlags } from '../tenants/flags.js';
import { RoundAbortedError, VerificationError } from './compactor-errors.js';
import { singleNodeTarget, type CompactorTarget } from './compactor-target.js';
import { maxCounts } from './round-plan.js';
import { queryRows } from './row-parsers.js';
import { hashedColumns, hashUserAttributes, latestRows, mergedUserRow, traitLookups, translateUserRow, type Pseudonymize } from './translation-plan.js';
import { clearIds, clearTraitValues, createTranslationStaging, deadLettersToDelete, pseudonymRows, userRows, type TranslationScope } from './translation-reads.js';
import type { TranslationReceipt, TranslationReceiptStore } from './translation-receipts.js';
import { DELETE_CLEAR_USERS, DELETE_DEAD_LETTERS, leftoverQuery, OPTIMIZE_USERS_FINAL, pendingQuery, TRANSLATE_EVENTS, TRANSLATE_SNAPSHOTS } from './translation-sql.js';
import { createVerification } from './verification.js';

export interface HistoryTranslatorOptions {
  client: ClickHouseClient;
  target?: CompactorTarget;
  /** the key ring of the process holding the master key (embedded runner, fleet compactor) */
  keys: KeyRing;
  flags: (tenantId: string) => TenantFlags | undefined;
  receipts: TranslationReceiptStore;
  logger: Logger;
  now?: () => number;
  /** attempts before the receipt says failed (default 3) */
  maxAttempts?: number;
  /** how long to wait for the current version's key to be loaded (default 30 s) */
  keyWaitMs?: number;
  /** bound on waiting for superseded parts to leave disk (default 60 s) */
  oldPartsTimeoutMs?: number;
  /** called before every step; throws a RoundAbortedError to stop (the fleet: the lease was lost) */
  guard?: () => void;
}

export interface HistoryTranslator {
  /** Runs a pending request to verified (or failed); resolves with its last receipt. */
  run(receipt: TranslationReceipt): Promise<TranslationReceipt>;
}

/** A request that cannot be carried out whatever the attempt: failed at once, with this reason. */
export class TranslationRefusedError extends Error {
  override readonly name = 'TranslationRefusedError';
}

/** the non-null values of a users row's columns `cols` */
function columnValues(row: UserRow, cols: readonly UserAttributeColumn[]): string[] {
  return cols.flatMap((c) => {
    const v = row[c];
    return v === null ? [] : [v];
  });
}

const TOUCHED = ['events', 'identify_snapshots', 'users', 'dead_letters'] as const;

export function createHistoryTranslator(opts: HistoryTranslatorOptions): HistoryTranslator {
  const { client } = opts;
  const target = opts.target ?? singleNodeTarget(client);
  const log = opts.logger.child({ module: 'history-translation' });
  const now = opts.now ?? Date.now;
  const guard = opts.guard ?? (() => undefined);
  const staging = createTranslationStaging(target);
  const verification = createVerification({ client, target, oldPartsTimeoutMs: opts.oldPartsTimeoutMs ?? 60_000 });
  let lastVersion = 0;
  // NOTE: above the API's pending row (0) and every earlier write of this process
  const write = (r: TranslationReceipt): Promise<void> => opts.receipts.write(r, (lastVersion = Math.max(lastVersion + 1, now())));
  const alter = async (sql: string): Promise<void> => {
    guard();
    await target.alter(sql);
  };
  /** the lookup tables hold clear ids: emptied after every attempt (a failure is logged; the next run empties them) */
  const clearStaging = (): Promise<void> =>
    staging.clear().catch((err: unknown) => log.warn({ ...safeErrorFields(err) }, 'could not empty the translation tables (the next run does)'));
  const count = async (sql: string): Promise<number> => toNumber((await queryRows(client, sql))[0]?.n);

  /** The current version's pseudonyms, once its key is loaded (a stored key appears within the keeper's interval). */
  async function keyFor(tenantId: string, version: number): Promise<Pseudonymize> {
    const deadline = Date.now() + (opts.keyWaitMs ?? 30_000);
    for (;;) {
      try {
        opts.keys.pseudonym(tenantId, version, 'probe');
        return (id) => opts.keys.pseudonym(tenantId, version, id);
      } catch (err) {
        if (!(err instanceof KeyUnavailableError)) throw err;
        if (err.reason === 'shredded') throw new TranslationRefusedError(`pseudonym key version ${version} is shredded`);
        if (Date.now() > deadline) throw new TranslationRefusedError(`pseudonym key version ${version} was not loaded within ${opts.keyWaitMs ?? 30_000} ms`);
        await new Promise((res) => setTimeout(res, 250));
      }
    }
  }

  /** No clear id (nor clear PII trait value) left in any physical copy; throws a PII-free VerificationError. */
  async function verify(s: TranslationScope, ids: ReadonlySet<string>, clearColumnValues: ReadonlySet<string>, written: ReadonlyMap<string, number>): Promise<void> {
    for (const table of ['events', 'identify_snapshots', 'users'] as const) {
      const n = await count(leftoverQuery[table](target.everyCopy(table)));
      if (n > 0) throw new VerificationError(`${n} ${table} rows still hold a clear id or PII trait value of the tenant`);
    }
    // NOTE: in memory, as the columns' values are in no lookup table: the rows this translation
    // wrote, per pseudonym (a later version is the sink's, for events received after the opt-in)
    const rows = (await pseudonymRows(client, s.tenantId, [...written.keys()], target.everyCopy('users'))).filter((r) => r.version <= (written.get(r.user_id) ?? 0));
    if (rows.some((r) => columnValues(r, USER_ATTRIBUTE_COLUMNS).some((v) => clearColumnValues.has(v)))) throw new VerificationError('a users row still holds a clear id or PII attribute');
    if ((await deadLettersToDelete(client, s, ids, target.everyCopy('dead_letters'))).length > 0) throw new VerificationError('a dead letter still holds a clear id');
  }

  async function attempt(r: TranslationReceipt): Promise<void> {
    const f = opts.flags(r.tenant_id);
    if (!f) throw new TranslationRefusedError('the tenant no longer exists');
    if (!f.anonymizeIdentity) throw new TranslationRefusedError('anonymizeIdentity was switched off before the translation ran');
    // NOTE: the flag's current stamp: switched off and on again, the clear history reaches up to the later one
    const s: TranslationScope = { tenantId: r.tenant_id, since: f.anonymizeSince ?? r.anonymize_since, piiTraits: f.piiTraits };
    const version = f.keyVersion;
    const pseudonymize = await keyFor(r.tenant_id, version);
    guard();
    const ids = await clearIds(client, s);
    const values = traitLookups(await clearTraitValues(client, s), ids, pseudonymize);
    const idMap = new Map([...ids].map((id) => [id, pseudonymize(id)]));
    const clearUsers = latestRows(await userRows(client, 'default.users', s.tenantId, 'identity_anonymized = 0'));
    const clearColumnValues = new Set([...ids, ...[...clearUsers.values()].flatMap((u) => columnValues(u, hashedColumns(s.piiTraits)))]);
    guard();
    await staging.stage(s, { keyVersion: version, ids: idMap, values });
    const letters = await deadLettersToDelete(client, s, ids);
    // TRICKY: counted before anything is rewritten and kept (still pending): a rerun after a
    // crash counts only what is left, and the receipt keeps the larger of both per table.
    const counts = {
      events: await count(pendingQuery.events),
      identify_snapshots: await count(pendingQuery.identify_snapshots),
      users: clearUsers.size,
      dead_letters_deleted: letters.length,
    };
    Object.assign(r, { key_version: version, anonymize_since: s.since, rows_rewritten: maxCounts(r.rows_rewritten, counts) });
    await write(r);

    const stored = latestRows(await pseudonymRows(client, s.tenantId, [...clearUsers.keys()].map(pseudonymize)));
    // NOTE: the merged row's attributes hashed again: the pseudonym's newer row may hold a clear id as a trait
    const rows = [...clearUsers.values()].map((u) => {
      const translated = translateUserRow(u, pseudonymize, s.piiTraits, ids);
      return hashUserAttributes(mergedUserRow(translated, stored.get(translated.user_id), now()), pseudonymize, s.piiTraits, ids);
    });
    guard();
    // NOTE: the pseudonym rows first, the clear ones deleted after: a crash in between leaves
    // both, and the rerun merges the clear row into the pseudonym's again.
    await insertUsers(client, rows);
    await alter(TRANSLATE_EVENTS);
    await alter(TRANSLATE_SNAPSHOTS);
    if (clearUsers.size > 0) {
      await alter(DELETE_CLEAR_USERS);
      await alter(OPTIMIZE_USERS_FINAL);
    }
    if (letters.length > 0) {
      await staging.stageDeadLetters(letters);
      await alter(DELETE_DEAD_LETTERS);
    }
    Object.assign(r, { status: 'applied', applied_at: now(), reason: null });
    await write(r);
    guard();
    await verification.waitForOldParts(Date.now(), [...TOUCHED]);
    guard();
    await verify(s, ids, clearColumnValues, new Map(rows.map((u) => [u.user_id, u.version])));
    // NOTE: emptied before the receipt says verified: the lookup tables hold the clear ids
    await clearStaging();
    Object.assign(r, { status: 'verified', verified_at: now() });
    await write(r);
    log.info({ tenantId: r.tenant_id, keyVersion: version, ids: ids.size, rows: r.rows_rewritten }, 'history translated and verified');
  }

  return {
    async run(receipt) {
      const r: TranslationReceipt = { ...receipt, rows_rewritten: { ...receipt.rows_rewritten } };
      const maxAttempts = opts.maxAttempts ?? 3;
      for (;;) {
        r.attempts++;
        try {
          // NOTE: a verified attempt empties the lookup tables itself, before its receipt
          await attempt(r);
          return r;
        } catch (err) {
          // NOTE: the lease was lost: another compactor may be using the lookup tables now — leave them
          if (err instanceof RoundAbortedError) throw err;
          await target.killUnfinished().catch(() => 0);
          await clearStaging();
          const refused = err instanceof TranslationRefusedError;
          log.warn({ attempt: r.attempts, maxAttempts, tenantId: r.tenant_id, ...safeErrorFields(err) }, 'history translation attempt failed');
          if (refused || r.attempts >= maxAttempts) {
            const reason = err instanceof TranslationRefusedError || err instanceof VerificationError ? err.message : `step failed: ${Object.values(safeErrorFields(err)).join(' ')}`;
            Object.assign(r, { status: 'failed', reason });
            await write(r);
            return r;
          }
          await new Promise((res) => setTimeout(res, 200 * 2 ** r.attempts));
        }
      }
    },
  };
}
