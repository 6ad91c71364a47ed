// Subject access export (GDPR Art. 15/20): everything stored of one user of one tenant — its
// profile rows, the accounts they link, its events under its clear id and under its pseudonyms,
// and the receipts of the overwrites and erasures that named it — as NDJSON records, one per
// line, the last a summary with the counts. The reads are a SubjectExportSource's
// (subject-export-source.ts); this module decides what belongs to the subject.
import type { AccountRow } from '../clickhouse/tables/accounts.js';
import type { EventRow } from '../clickhouse/tables/events.js';
import type { Receipt } from '../clickhouse/tables/overwrite-requests.js';
import type { UserRow } from '../clickhouse/tables/users.js';
import { LIMITS } from '../events/envelope.js';
import type { OverwriteCommand } from '../events/overwrite-command.js';
import type { SubjectHash } from './subject-hash.js';

/** One id a user is stored under, and how receipts name it. */
export interface SubjectIdentity {
  userId: string;
  /** true for a pseudonym (rows stored with identity_anonymized = 1) */
  anonymized: boolean;
  /** the keyed subject hash of `userId`, as receipts keep it */
  idHash: string;
}

export type StoredAs = 'clear' | 'pseudonym';

export type ExportRecord =
  | ({ kind: 'profile'; storedAs: StoredAs } & UserRow)
  | ({ kind: 'account' } & AccountRow)
  | ({ kind: 'event'; storedAs: StoredAs } & EventRow)
  | ({ kind: 'receipt' } & Receipt)
  | ({ kind: 'summary' } & ExportSummary)
  | { kind: 'error'; message: string };

export interface ExportCounts {
  profiles: number;
  accounts: number;
  events: number;
  /** events stored under the clear id, and under a pseudonym */
  eventsStoredAs: Record<StoredAs, number>;
  receipts: number;
}

export interface ExportSummary extends ExportCounts {
  tenantId: string;
  userId: string;
  /** ms */
  exportedAt: number;
  /** pseudonyms the user's history was looked for under (one per key version) */
  pseudonyms: number;
}

/** The subject's rows, read for a list of identities of one tenant. */
export interface SubjectExportSource {
  profiles(tenantId: string, identities: readonly SubjectIdentity[]): Promise<UserRow[]>;
  accounts(tenantId: string, accountIds: readonly string[]): Promise<AccountRow[]>;
  /** the events in bounded pages (never all at once), each page in order */
  eventPages(tenantId: string, identities: readonly SubjectIdentity[]): AsyncIterable<readonly EventRow[]>;
  /** receipts of user commands whose subject hash is one of the identities' (see receiptConcerns) */
  receipts(tenantId: string, identities: readonly SubjectIdentity[]): Promise<Receipt[]>;
}

export interface SubjectExportOptions {
  tenantId: string;
  userId: string;
  /** the user's pseudonyms under every key version of the tenant ([] when it never anonymized) */
  aliases: readonly string[];
  subjectHash: SubjectHash;
  source: SubjectExportSource;
  now?: () => number;
}

export interface SubjectExport {
  /** the small parts, read before anything is written: profiles, accounts, receipts */
  readonly counts: Readonly<ExportCounts>;
  /**
   * Writes every record, the summary last; `write` may return a promise (backpressure: the next
   * record waits for it). Counts grow as it goes (`onProgress` after each page of events).
   */
  run(write: (record: ExportRecord) => void | Promise<void>, onProgress?: (counts: Readonly<ExportCounts>) => void): Promise<ExportSummary>;
}

export class SubjectIdError extends Error {
  override readonly name = 'SubjectIdError';
}

/**
 * The id as asked, never trimmed or normalised: only an exact match is the subject.
 * NOTE: the collector stores ids trimmed, so an id with surrounding blanks matches nothing.
 */
export function checkSubjectId(userId: string): string {
  if (userId.length === 0 || userId.length > LIMITS.idChars) throw new SubjectIdError(`user id: 1–${LIMITS.idChars} characters`);
  if (!userId.isWellFormed()) throw new SubjectIdError('user id: not well-formed Unicode');
  return userId;
}

/** The clear id and its pseudonyms, each once, the clear id first. */
export function subjectIdentities(tenantId: string, userId: string, aliases: readonly string[], subjectHash: SubjectHash): SubjectIdentity[] {
  const out: SubjectIdentity[] = [{ userId, anonymized: false, idHash: subjectHash(tenantId, userId) }];
  for (const alias of new Set(aliases)) {
    if (alias !== userId) out.push({ userId: alias, anonymized: true, idHash: subjectHash(tenantId, alias) });
  }
  return out;
}

/**
 * Whether a receipt concerns the subject: a command naming its clear id, or the compactor's
 * command for one of its pseudonyms (`<request>/p<n>`, compactor.ts withAliases).
 * TRICKY: the hash alone is not enough: asked for another user's pseudonym as if it were a clear
 * id, the hash of that string is the one of that user's alias commands; the request id tells them apart.
 */
export function receiptConcerns(receipt: Pick<Receipt, 'subject' | 'subject_id_hash' | 'request_id'>, identities: readonly SubjectIdentity[]): boolean {
  if (receipt.subject !== 'user') return false;
  const aliasCommand = isAliasCommand(receipt.request_id);
  return identities.some((i) => i.idHash === receipt.subject_id_hash && i.anonymized === aliasCommand);
}

/** the compactor's command for a pseudonym of the requested id (compactor.ts withAliases); RE2 and JS alike */
export const ALIAS_COMMAND_PATTERN = '/p[0-9]+$';
const ALIAS_COMMAND_RE = new RegExp(ALIAS_COMMAND_PATTERN);
export const isAliasCommand = (requestId: string): boolean => ALIAS_COMMAND_RE.test(requestId);

const storedAs = (anonymized: 0 | 1): StoredAs => (anonymized === 1 ? 'pseudonym' : 'clear');

/** Reads the small parts of a user's export; the events are read page by page by run(). */
export async function openSubjectExport(opts: SubjectExportOptions): Promise<SubjectExport> {
  const { tenantId, source } = opts;
  const userId = checkSubjectId(opts.userId);
  const now = opts.now ?? Date.now;
  const identities = subjectIdentities(tenantId, userId, opts.aliases, opts.subjectHash);
  const byId = new Map(identities.map((i) => [`${i.anonymized ? 1 : 0}:${i.userId}`, i]));
  // NOTE: checked again on every row: whatever the source returns, only the subject's rows go out
  const mine = (row: { tenant_id: string; user_id: string | null; identity_anonymized: 0 | 1 }): boolean =>
    row.tenant_id === tenantId && row.user_id !== null && byId.has(`${row.identity_anonymized}:${row.user_id}`);

  const profiles = (await source.profiles(tenantId, identities)).filter(mine);
  const accountIds = [...new Set(profiles.flatMap((p) => (p.account_id === null ? [] : [p.account_id])))];
  const accounts = accountIds.length === 0 ? [] : (await source.accounts(tenantId, accountIds)).filter((a) => a.tenant_id === tenantId && accountIds.includes(a.account_id));
  const receipts = (await source.receipts(tenantId, identities)).filter((r) => r.tenant_id === tenantId && receiptConcerns(r, identities));
  const counts: ExportCounts = { profiles: profiles.length, accounts: accounts.length, events: 0, eventsStoredAs: { clear: 0, pseudonym: 0 }, receipts: receipts.length };

  return {
    counts,
    async run(write, onProgress) {
      for (const p of profiles) await write({ kind: 'profile', storedAs: storedAs(p.identity_anonymized), ...p });
      for (const a of accounts) await write({ kind: 'account', ...a });
      for await (const page of source.eventPages(tenantId, identities)) {
        for (const e of page) {
          if (!mine(e)) continue;
          const as = storedAs(e.identity_anonymized);
          counts.events++;
          counts.eventsStoredAs[as]++;
          await write({ kind: 'event', storedAs: as, ...e });
        }
        onProgress?.(counts);
      }
      for (const r of receipts) await write({ kind: 'receipt', ...r });
      const summary: ExportSummary = { tenantId, userId, exportedAt: now(), pseudonyms: identities.length - 1, ...counts, eventsStoredAs: { ...counts.eventsStoredAs } };
      await write({ kind: 'summary', ...summary });
      return summary;
    },
  };
}

/**
 * A user's pseudonyms under every key version of its tenant, from the compactor's alias function
 * (libs/compactor/pseudonym-aliases.ts), which works on commands.
 * NOTE: the tenant counts as one with pseudonymized history whatever its flag says now: a tenant
 * that switched anonymization off again still holds the history written while it was on.
 */
export function userAliases(aliases: (cmd: OverwriteCommand, anonymizedTenants: ReadonlySet<string>) => string[]): (tenantId: string, userId: string) => string[] {
  return (tenantId, userId) =>
    aliases(
      { request_id: 'export', tenant_id: tenantId, subject: 'user', id: userId, set: {}, mode: 'overwrite', delete_events: false, suppress: false, requested_at: 0, insert_missing: null },
      new Set([tenantId]),
    );
}

/** One NDJSON line of a record. */
export function ndjsonLine(record: ExportRecord): string {
  return `${JSON.stringify(record)}\n`;
}
