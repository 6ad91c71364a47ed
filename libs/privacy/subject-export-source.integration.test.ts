// The export's ClickHouse reads on chDB: events in keyset pages (small ones here) lose and repeat
// nothing, whatever the event ids hold; a clear id and a pseudonym each match only rows stored
// that way; another tenant's rows of the same id never come back; receipts by hash and command kind.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertEventTuples } from '../clickhouse/tables/events.js';
import { insertOverwriteRequests } from '../clickhouse/tables/overwrite-requests.js';
import { toEventTuple } from '../sink/event-rows.js';
import { cleanEvent } from '../../test/support/clickhouse-fixtures.js';
import { openTestClickHouse, type TestClickHouse } from '../../test/support/chdb.js';
import { subjectIdentities } from './subject-export.js';
import { clickhouseExportSource } from './subject-export-source.js';
import { subjectHasher } from './subject-hash.js';

const hash = subjectHasher(Buffer.alloc(32, 3));
const T = 'src-acme';
const U = "o'brien\\\"%_*";
const P = `v1:${'c'.repeat(64)}`;
let ch: TestClickHouse;

beforeAll(async () => {
  ch = await openTestClickHouse();
  const ids = ["'; DROP TABLE events; --", 'a', 'a\\', 'b%', 'c_', 'z', '\u00e9', 'e 1', 'e\n2'];
  await insertEventTuples(ch.client, [
    ...ids.map((id) => toEventTuple(cleanEvent({ tenant_id: T, event_id: `clear-${id}`, user_id: U }))),
    ...ids.map((id) => toEventTuple(cleanEvent({ tenant_id: T, event_id: `pseudo-${id}`, user_id: P, identity_anonymized: true, key_version: 1 }))),
    // the same strings stored the other way: another user's rows
    toEventTuple(cleanEvent({ tenant_id: T, event_id: 'wrong-way-1', user_id: U, identity_anonymized: true, key_version: 1 })),
    toEventTuple(cleanEvent({ tenant_id: T, event_id: 'wrong-way-2', user_id: P })),
    toEventTuple(cleanEvent({ tenant_id: 'src-globex', event_id: 'clear-a', user_id: U })),
    toEventTuple(cleanEvent({ tenant_id: T, event_id: 'other-1', user_id: `${U}x` })),
  ]);
  const receipt = (request_id: string, id: string, tenant_id = T) => ({
    request_id,
    tenant_id,
    subject: 'user' as const,
    subject_id_hash: hash(tenant_id, id),
    mode: 'anonymize' as const,
    status: 'verified' as const,
    rows_rewritten: { events: 1 },
    reason: null,
    attempts: 1,
    requested_at: 1_000,
    applied_at: 2_000,
    verified_at: 3_000,
    version: 5,
  });
  await insertOverwriteRequests(ch.client, [receipt('r1/0', U), receipt('r1/0/p1', P), receipt('r2/p1', U), receipt('r3', P), receipt('r4', U, 'src-globex')]);
}, 120_000);
afterAll(() => ch?.close());

describe('clickhouseExportSource', () => {
  it('pages through every event of the clear id and the pseudonym once, in event id order', async () => {
    const source = clickhouseExportSource(ch.client, { pageRows: 2 });
    const pages: string[][] = [];
    for await (const page of source.eventPages(T, subjectIdentities(T, U, [P], hash))) pages.push(page.map((e) => e.event_id));
    const all = pages.flat();
    expect(all).toHaveLength(18);
    expect(new Set(all).size).toBe(18);
    expect(all).toEqual([...all].sort((a, b) => (Buffer.compare(Buffer.from(a), Buffer.from(b)))));
    expect(pages.every((p) => p.length <= 2)).toBe(true);
    expect(all.some((id) => id.startsWith('wrong-way') || id.startsWith('other'))).toBe(false);
  });

  it('reads only the rows stored the way each id is', async () => {
    const source = clickhouseExportSource(ch.client);
    const asClear = [];
    for await (const page of source.eventPages(T, subjectIdentities(T, P, [], hash))) asClear.push(...page.map((e) => e.event_id));
    expect(asClear).toEqual(['wrong-way-2']);
  });

  it('finds receipts of the clear id on its own commands and of the pseudonym on alias commands only', async () => {
    const source = clickhouseExportSource(ch.client);
    expect((await source.receipts(T, subjectIdentities(T, U, [P], hash))).map((r) => r.request_id).sort()).toEqual(['r1/0', 'r1/0/p1']);
    expect((await source.receipts(T, subjectIdentities(T, P, [], hash))).map((r) => r.request_id)).toEqual(['r3']);
  });
});
