import { Writable } from 'node:stream';
import { blankUserRow } from '../sink/dimension-merge.js';
import { describe, expect, it } from 'vitest';
import type { AccountRow } from '../clickhouse/tables/accounts.js';
import type { EventRow } from '../clickhouse/tables/events.js';
import type { Receipt } from '../clickhouse/tables/overwrite-requests.js';
import type { UserRow } from '../clickhouse/tables/users.js';
import { ExportAbortedError, ndjsonWriter } from './export-writer.js';
import {
  checkSubjectId,
  openSubjectExport,
  receiptConcerns,
  subjectIdentities,
  userAliases,
  type ExportRecord,
  type SubjectExportSource,
} from './subject-export.js';
import { subjectHasher } from './subject-hash.js';

const hash = subjectHasher(Buffer.alloc(32, 7));
const T = 'acme';
const U = 'u1';
const P = `v1:${'a'.repeat(64)}`;
const OTHER_P = `v1:${'b'.repeat(64)}`;

const user = (user_id: string, anonymized: 0 | 1, extra: Partial<UserRow> = {}): UserRow => ({
  ...blankUserRow(T, user_id, 1, anonymized === 1, 1),
  last_seen: 2,
  updated_at: 3,
  ...extra,
});
const event = (event_id: string, user_id: string | null, anonymized: 0 | 1, tenant_id = T): EventRow =>
  ({ tenant_id, event_id, type: 'track', user_id, identity_anonymized: anonymized, properties: {}, traits: {}, account_traits: {}, element_classes: [] }) as unknown as EventRow;
const account = (account_id: string, tenant_id = T): AccountRow => ({ tenant_id, account_id, domain: null, source: 'explicit', name: 'Acme', traits: {}, version: 1, is_deleted: 0, updated_at: 1 });
const receipt = (request_id: string, id: string, extra: Partial<Receipt> = {}): Receipt => ({
  request_id,
  tenant_id: T,
  subject: 'user',
  subject_id_hash: hash(T, id),
  mode: 'anonymize',
  status: 'verified',
  rows_rewritten: {},
  reason: null,
  attempts: 1,
  requested_at: 1,
  applied_at: 2,
  verified_at: 3,
  ...extra,
});

/** A source that returns whatever it is given, as a careless query might. */
function source(rows: { users?: UserRow[]; accounts?: AccountRow[]; pages?: EventRow[][]; receipts?: Receipt[] }): SubjectExportSource & { accountIdsAsked: string[][] } {
  const asked: string[][] = [];
  return {
    accountIdsAsked: asked,
    profiles: async () => rows.users ?? [],
    accounts: async (_t, ids) => (asked.push([...ids]), rows.accounts ?? []),
    async *eventPages() {
      for (const p of rows.pages ?? []) yield p;
    },
    receipts: async () => rows.receipts ?? [],
  };
}

async function collect(src: SubjectExportSource, userId = U, aliases = [P]): Promise<ExportRecord[]> {
  const out: ExportRecord[] = [];
  const exp = await openSubjectExport({ tenantId: T, userId, aliases, subjectHash: hash, source: src, now: () => 42 });
  await exp.run((r) => {
    out.push(r);
  });
  return out;
}

describe('checkSubjectId', () => {
  it.each([
    { id: 'u1', ok: true },
    { id: ' u1 ', ok: true },
    { id: "o'brien\"; DROP TABLE events; --", ok: true },
    { id: 'x'.repeat(128), ok: true },
    { id: '', ok: false },
    { id: 'x'.repeat(129), ok: false },
    { id: 'bad\uD800', ok: false },
  ])('$id → ok: $ok (never trimmed)', ({ id, ok }) => {
    if (ok) expect(checkSubjectId(id)).toBe(id);
    else expect(() => checkSubjectId(id)).toThrow(/user id/);
  });
});

describe('subjectIdentities', () => {
  it('is the clear id first, then each pseudonym once, each with its keyed hash', () => {
    expect(subjectIdentities(T, U, [P, P, U, OTHER_P], hash)).toEqual([
      { userId: U, anonymized: false, idHash: hash(T, U) },
      { userId: P, anonymized: true, idHash: hash(T, P) },
      { userId: OTHER_P, anonymized: true, idHash: hash(T, OTHER_P) },
    ]);
  });
});

describe('receiptConcerns', () => {
  const ids = subjectIdentities(T, U, [P], hash);
  it.each([
    { name: 'a command naming the clear id', r: receipt('r1', U), want: true },
    { name: 'an erasure command naming it', r: receipt('r1/3', U), want: true },
    { name: "the compactor's command for its pseudonym", r: receipt('r1/p1', P), want: true },
    { name: "an erasure's command for its pseudonym", r: receipt('r1/3/p2', P), want: true },
    { name: 'another user', r: receipt('r2', 'u2'), want: false },
    { name: 'an account of the same id', r: receipt('r1', U, { subject: 'account' }), want: false },
    // the hash of the clear id on an alias command would be a user whose pseudonym equals this id
    { name: 'an alias command with the clear id hash', r: receipt('r1/p1', U), want: false },
    { name: 'a command naming the pseudonym as a clear id', r: receipt('r1', P), want: false },
  ])('$name → $want', ({ r, want }) => {
    expect(receiptConcerns(r, ids)).toBe(want);
  });

  it("asked for another user's pseudonym as a clear id, that user's alias receipts are not the subject's", () => {
    const asked = subjectIdentities(T, OTHER_P, [], hash);
    expect(receiptConcerns(receipt('r9/p1', OTHER_P), asked)).toBe(false);
  });
});

describe('openSubjectExport', () => {
  it('writes profiles, accounts, events page by page, receipts, then one summary; counts by storage', async () => {
    const src = source({
      users: [user(U, 0, { account_id: 'acct' }), user(P, 1, { account_id: 'acct' })],
      accounts: [account('acct')],
      pages: [[event('e1', U, 0), event('e2', P, 1)], [event('e3', P, 1)]],
      receipts: [receipt('r1', U), receipt('r1/p1', P)],
    });
    const out = await collect(src);
    expect(out.map((r) => r.kind)).toEqual(['profile', 'profile', 'account', 'event', 'event', 'event', 'receipt', 'receipt', 'summary']);
    expect(src.accountIdsAsked).toEqual([['acct']]);
    expect(out.filter((r) => r.kind === 'event').map((r) => (r.kind === 'event' ? [r.event_id, r.storedAs] : null))).toEqual([
      ['e1', 'clear'],
      ['e2', 'pseudonym'],
      ['e3', 'pseudonym'],
    ]);
    expect(out.at(-1)).toEqual({
      kind: 'summary',
      tenantId: T,
      userId: U,
      exportedAt: 42,
      pseudonyms: 1,
      profiles: 2,
      accounts: 1,
      events: 3,
      eventsStoredAs: { clear: 1, pseudonym: 2 },
      receipts: 2,
    });
  });

  it('passes on nothing of another user, whatever the source returns', async () => {
    const out = await collect(
      source({
        users: [user(U, 1), user(P, 0), user('u2', 0), { ...user(U, 0), tenant_id: 'globex' }],
        accounts: [account('acct'), account('acct', 'globex')],
        pages: [[event('e1', U, 1), event('e2', P, 0), event('e3', 'u2', 0), event('e4', null, 0), event('e5', U, 0, 'globex'), event('e6', OTHER_P, 1)]],
        receipts: [receipt('r2', 'u2'), receipt('r1/p1', U), { ...receipt('r3', U), tenant_id: 'globex' }],
      }),
    );
    expect(out.map((r) => r.kind)).toEqual(['summary']);
    expect(out[0]).toMatchObject({ profiles: 0, accounts: 0, events: 0, receipts: 0 });
  });

  it('reads no accounts when no profile links one; a tenant without pseudonyms has none', async () => {
    const src = source({ users: [user(U, 0)] });
    const out = await collect(src, U, []);
    expect(src.accountIdsAsked).toEqual([]);
    expect(out.at(-1)).toMatchObject({ kind: 'summary', profiles: 1, pseudonyms: 0 });
  });

  it('waits for each write (backpressure) and reports progress after each page', async () => {
    const exp = await openSubjectExport({ tenantId: T, userId: U, aliases: [], subjectHash: hash, source: source({ pages: [[event('e1', U, 0)], [event('e2', U, 0)]] }) });
    const order: string[] = [];
    await exp.run(
      async (r) => {
        await new Promise((res) => setTimeout(res, 1));
        order.push(r.kind === 'event' ? r.event_id : r.kind);
      },
      (c) => order.push(`progress:${c.events}`),
    );
    expect(order).toEqual(['e1', 'progress:1', 'e2', 'progress:2', 'summary']);
  });

  it('refuses an id it cannot be asked for before reading anything', async () => {
    await expect(openSubjectExport({ tenantId: T, userId: '', aliases: [], subjectHash: hash, source: source({}) })).rejects.toThrow(/user id/);
  });
});

describe('userAliases', () => {
  it("asks the compactor's alias function for a user command, the tenant counted as anonymized", () => {
    const seen: unknown[] = [];
    const aliasesOf = userAliases((cmd, anonymized) => (seen.push([cmd.subject, cmd.tenant_id, cmd.id, [...anonymized]]), [`v1:${cmd.id}`]));
    expect(aliasesOf(T, U)).toEqual([`v1:${U}`]);
    expect(seen).toEqual([['user', T, U, [T]]]);
  });
});

describe('ndjsonWriter', () => {
  it('writes one JSON line per record and waits while the stream is full', async () => {
    const chunks: string[] = [];
    let release: (() => void) | null = null;
    const slow = new Writable({
      highWaterMark: 1,
      write(chunk: Buffer, _enc, cb) {
        chunks.push(chunk.toString());
        release = cb;
      },
    });
    const write = ndjsonWriter(slow);
    let done = false;
    const pending = write({ kind: 'error', message: 'x' }).then(() => (done = true));
    await new Promise((r) => setTimeout(r, 5));
    expect(done).toBe(false);
    (release as unknown as () => void)();
    await pending;
    expect(chunks).toEqual(['{"kind":"error","message":"x"}\n']);
  });

  it('stops once the reader is gone', async () => {
    const never = new Writable({ highWaterMark: 1, write() {} });
    const write = ndjsonWriter(never);
    const pending = write({ kind: 'error', message: 'x' });
    never.destroy();
    await expect(pending).rejects.toBeInstanceOf(ExportAbortedError);
    await expect(write({ kind: 'error', message: 'y' })).rejects.toBeInstanceOf(ExportAbortedError);
  });
});
