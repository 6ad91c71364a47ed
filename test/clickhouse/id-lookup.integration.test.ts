// The id lookup's sessions (libs/clickhouse/id-lookup.ts) against a private test gateway: requests
// answered SESSION_IS_LOCKED as a real server may answer them (ClickHouse issues #4003, #35948),
// concurrent lookups on one client and concurrent reads in one lookup session.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createClickHouse, type ClickHouseClient } from '../../libs/clickhouse/client.js';
import { isSessionLocked, withIdLookup } from '../../libs/clickhouse/id-lookup.js';
import { createLogger } from '../../libs/core/logger.js';
import { startClickHouseGateway, type ClickHouseGateway, type SessionRequest } from '../support/clickhouse-gateway.js';

const logger = createLogger({ level: 'silent' });
const PASSWORD = `pw-${process.pid}-${Date.now()}`;
let dir = '';
let gateway: ClickHouseGateway;
const clients: ClickHouseClient[] = [];

/** Every session request the gateway got, and whether it was refused (by `refuse` or as busy). */
let seen: (SessionRequest & { refused: boolean; kind: string })[] = [];
/** Which session requests to answer SESSION_IS_LOCKED although the session is free. */
let refuse: (r: SessionRequest & { kind: string }) => boolean = () => false;
/** Answers the first request matching `which` SESSION_IS_LOCKED, then none. */
function refuseFirst(which: (r: SessionRequest & { kind: string }) => boolean): void {
  let done = false;
  refuse = (r) => !done && which(r) && (done = true);
}
const kindOf = (text: string): string => /^\s*(\w+)/.exec(text)?.[1]?.toUpperCase() ?? '';

function client(): ClickHouseClient {
  const c = createClickHouse({ url: gateway.url, logger, username: 'tracklane', password: PASSWORD, requestTimeoutMs: 20_000 });
  clients.push(c);
  return c;
}

/** The lookup's session ids, in the order their CREATE reached the gateway. */
const createSessions = (): string[] => seen.filter((r) => r.kind === 'CREATE').map((r) => r.sessionId);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tracklane-id-lookup-'));
  gateway = await startClickHouseGateway({
    port: 0,
    dataDir: join(dir, 'ch'),
    users: { tracklane: PASSWORD },
    onSessionRequest: (r) => {
      const kind = kindOf(r.queryText);
      const refused = r.busy || refuse({ ...r, kind });
      seen.push({ ...r, kind, refused });
      return refused;
    },
  });
});

afterAll(async () => {
  for (const c of clients) await c.close();
  await gateway?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  seen = [];
  refuse = () => false;
});

const ids = (rows: { id: string }[]): string[] => rows.map((r) => r.id).sort();

describe('a request answered SESSION_IS_LOCKED although sent after the previous one finished', () => {
  it.each(['INSERT', 'SELECT'])('the %s is sent again in the same session and the lookup succeeds', async (kind) => {
    refuseFirst((r) => r.kind === kind);
    const c = client();
    const found = await withIdLookup(c, ['id'], [{ id: 'a' }, { id: 'b' }], async (lookup) => lookup.rows<{ id: string }>(`SELECT id FROM ${lookup.table}`));
    expect(ids(found)).toEqual(['a', 'b']);
    const tries = seen.filter((r) => r.kind === kind);
    expect(tries.map((r) => r.refused)).toEqual([true, false]);
    // the table lives in that session: the retry cannot move
    expect(new Set(seen.map((r) => r.sessionId)).size).toBe(1);
  });

  it('the DROP is sent again, and the session serves the next lookup', async () => {
    refuseFirst((r) => r.kind === 'DROP');
    const c = client();
    await withIdLookup(c, ['id'], [{ id: 'a' }], async (lookup) => lookup.rows(`SELECT id FROM ${lookup.table}`));
    expect(seen.filter((r) => r.kind === 'DROP').map((r) => r.refused)).toEqual([true, false]);
    await withIdLookup(c, ['id'], [{ id: 'b' }], async (lookup) => lookup.rows(`SELECT id FROM ${lookup.table}`));
    const [first, second] = createSessions();
    expect(second).toBe(first);
  });

  it('the CREATE on a reused session id moves to a fresh session at once; the refused id is not used again', async () => {
    const c = client();
    await withIdLookup(c, ['id'], [{ id: 'a' }], async (lookup) => lookup.rows(`SELECT id FROM ${lookup.table}`));
    const [reused] = createSessions();
    refuse = (r) => r.kind === 'CREATE' && r.sessionId === reused;
    const found = await withIdLookup(c, ['id'], [{ id: 'b' }, { id: 'c' }], async (lookup) => lookup.rows<{ id: string }>(`SELECT id FROM ${lookup.table}`));
    expect(ids(found)).toEqual(['b', 'c']);
    await withIdLookup(c, ['id'], [{ id: 'd' }], async (lookup) => lookup.rows(`SELECT id FROM ${lookup.table}`));
    const creates = seen.filter((r) => r.kind === 'CREATE');
    // lookup 1 in `reused`; lookup 2 refused there once, then in a fresh session; lookup 3 reuses that one
    expect(creates.map((r) => [r.sessionId === reused, r.refused])).toEqual([
      [true, false],
      [true, true],
      [false, false],
      [false, false],
    ]);
    expect(creates[3]?.sessionId).toBe(creates[2]?.sessionId);
    expect(seen.filter((r) => r.sessionId === reused && r.kind !== 'CREATE' && r.kind !== 'DROP').map((r) => r.kind)).toEqual(['INSERT', 'SELECT']);
  });

  it('a session that stays locked fails the lookup after a few quick attempts, and its id is not reused', async () => {
    refuse = (r) => r.kind === 'SELECT';
    const c = client();
    const started = Date.now();
    const err = await withIdLookup(c, ['id'], [{ id: 'a' }], async (lookup) => lookup.rows(`SELECT id FROM ${lookup.table}`)).then(
      () => new Error('the lookup succeeded'),
      (e: unknown) => e,
    );
    expect(isSessionLocked(err)).toBe(true);
    const attempts = seen.filter((r) => r.kind === 'SELECT').length;
    expect(attempts).toBeGreaterThan(1);
    expect(attempts).toBeLessThanOrEqual(10);
    expect(Date.now() - started).toBeLessThan(5_000);
    refuse = () => false;
    await withIdLookup(c, ['id'], [{ id: 'b' }], async (lookup) => lookup.rows(`SELECT id FROM ${lookup.table}`));
    const [failed, next] = createSessions();
    expect(next).not.toBe(failed);
  });
});

describe('concurrency', () => {
  it('reads started at once in one lookup session run one after another, none refused', async () => {
    const c = client();
    const results = await withIdLookup(c, ['id'], [{ id: 'a' }, { id: 'b' }, { id: 'c' }], async (lookup) =>
      Promise.all([
        // slow enough (0.1 s a row) that a second request sent meanwhile would find the session busy
        lookup.rows<{ id: string }>(`SELECT id FROM ${lookup.table} WHERE sleepEachRow(0.1) = 0`),
        lookup.rows<{ id: string }>(`SELECT id FROM ${lookup.table} WHERE id != 'a'`),
        lookup.rows<{ id: string }>(`SELECT id FROM ${lookup.table} WHERE id = 'a'`),
      ]),
    );
    expect(results.map(ids)).toEqual([['a', 'b', 'c'], ['b', 'c'], ['a']]);
    expect(seen.filter((r) => r.kind === 'SELECT')).toHaveLength(3);
    expect(seen.filter((r) => r.refused)).toEqual([]);
  });

  it('a read the caller did not await still runs before the table is dropped; one after the lookup is refused', async () => {
    const c = client();
    let late: Promise<{ id: string }[]> | undefined;
    let after: ((q: string) => Promise<unknown>) | undefined;
    await withIdLookup(c, ['id'], [{ id: 'a' }], async (lookup) => {
      late = lookup.rows<{ id: string }>(`SELECT id FROM ${lookup.table} WHERE sleepEachRow(0.2) = 0`);
      after = (q) => lookup.rows(q);
      return undefined;
    });
    expect(ids(await (late ?? Promise.resolve([])))).toEqual(['a']);
    expect(seen.filter((r) => r.refused)).toEqual([]);
    expect(seen.map((r) => r.kind).slice(-2)).toEqual(['SELECT', 'DROP']);
    await expect((after ?? (() => Promise.resolve()))('SELECT 1')).rejects.toThrow(/the id lookup is over/);
  });

  it('lookups at once on one client get sessions of their own and each reads only its ids', async () => {
    const c = client();
    // one idle session from an earlier lookup: only one of the next ones may take it
    await withIdLookup(c, ['id'], [{ id: 'x' }], async (lookup) => lookup.rows(`SELECT id FROM ${lookup.table}`));
    seen = [];
    const groups = [0, 1, 2, 3].map((g) => [0, 1, 2].map((i) => ({ id: `g${g}-${i}` })));
    const results = await Promise.all(
      groups.map((rows) =>
        withIdLookup(c, ['id'], rows, async (lookup) =>
          Promise.all([
            lookup.rows<{ id: string }>(`SELECT id FROM ${lookup.table} WHERE sleepEachRow(0.05) = 0`),
            lookup.rows<{ n: string }>(`SELECT toString(count()) AS n FROM ${lookup.table}`),
          ]),
        ),
      ),
    );
    results.forEach(([found, [count]], g) => {
      expect(ids(found)).toEqual(groups[g]?.map((r) => r.id));
      expect(count?.n).toBe('3');
    });
    expect(new Set(createSessions()).size).toBe(4);
    expect(seen.filter((r) => r.refused)).toEqual([]);
  });
});
