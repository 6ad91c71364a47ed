// Receipts against a real engine (chDB): a pending command older than the overwrites topic's
// retention fails as `expired before applied` — on the read path for its own request, and in
// the compactor's sweep for all — and a receipt reports copiesExpireBy from the horizon.
import { randomBytes, randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../core/logger.js';
import type { OverwriteCommand } from '../events/overwrite-command.js';
import { useTestClickHouse } from '../../test/support/chdb.js';
import { eventually } from '../../test/support/poll.js';
import { createReceiptStore, EXPIRED_BEFORE_APPLIED, pendingReceipt, requestReceipt, startPendingExpiry } from './receipts.js';
import { subjectHasher } from '../privacy/subject-hash.js';

const ch = useTestClickHouse();
const hash = subjectHasher(randomBytes(32));
const DAY = 24 * 3_600_000;
const TTL = 7 * DAY;
const HORIZON = 8 * DAY + 360_000;

const commands = (requestId: string, n: number, requestedAt: number): OverwriteCommand[] =>
  Array.from({ length: n }, (_, i) => ({
    request_id: n === 1 ? requestId : `${requestId}/${i}`,
    tenant_id: 'acme',
    subject: 'user',
    id: `user-${i}@example.org`,
    set: {},
    mode: 'delete',
    delete_events: false,
    suppress: false,
    requested_at: requestedAt,
    insert_missing: null,
  }));

describe('receipts: expiry and copiesExpireBy', () => {
  it('a pending request older than the retention reads as failed, expired before applied; a younger one stays pending', async () => {
    const store = createReceiptStore(ch().client, hash);
    const now = Date.now();
    const old = randomUUID();
    const young = randomUUID();
    await store.writePending(commands(old, 3, now - TTL - 60_000));
    await store.writePending(commands(young, 2, now - TTL + 60_000));

    const r = await requestReceipt(store, old, { pendingTtlMs: TTL, copiesHorizonMs: HORIZON }, { now });
    expect(r).toMatchObject({ status: 'failed', reason: EXPIRED_BEFORE_APPLIED, commands: 3, requestedAt: now - TTL - 60_000, copiesExpireBy: now - TTL - 60_000 + HORIZON });
    // stored, not only reported: every command of it
    const stored = await store.read([0, 1, 2].map((i) => `${old}/${i}`));
    expect([...stored.values()].map((c) => [c.status, c.reason])).toEqual(Array(3).fill(['failed', EXPIRED_BEFORE_APPLIED]));

    expect(await requestReceipt(store, young, { pendingTtlMs: TTL, copiesHorizonMs: HORIZON }, { now })).toMatchObject({
      status: 'pending',
      reason: null,
      copiesExpireBy: now - TTL + 60_000 + HORIZON,
    });
    // without a horizon (a topic kept forever) and without a ttl: nothing is claimed, nothing expires
    expect(await requestReceipt(store, young, { pendingTtlMs: null, copiesHorizonMs: null }, { now: now + TTL })).toMatchObject({ status: 'pending', copiesExpireBy: null });
    expect(await requestReceipt(store, randomUUID(), { pendingTtlMs: TTL, copiesHorizonMs: HORIZON }, { now })).toBeUndefined();
  });

  it('a caller who may not see the request\'s tenant gets nothing and writes nothing; one who may then expires it', async () => {
    const store = createReceiptStore(ch().client, hash);
    const now = Date.now();
    const old = randomUUID();
    await store.writePending(commands(old, 2, now - TTL - 60_000));
    // NOTE: without FINAL: every version written, so an expiry's row would show
    const versions = async () => {
      const rs = await ch().client.query({ query: 'SELECT count() AS n FROM overwrite_requests WHERE startsWith(request_id, {id:String})', query_params: { id: old }, format: 'JSONEachRow' });
      return Number((await rs.json<{ n: unknown }>())[0]?.n);
    };
    const asked: string[] = [];
    const otherTenant = (tenantId: string) => (asked.push(tenantId), tenantId === 'globex');
    expect(await requestReceipt(store, old, { pendingTtlMs: TTL, copiesHorizonMs: HORIZON }, { now, mayRead: otherTenant })).toBeUndefined();
    expect(asked).toEqual(['acme']);
    expect(await versions()).toBe(2);
    expect(await store.forRequest(old)).toMatchObject({ status: 'pending' });

    expect(await requestReceipt(store, old, { pendingTtlMs: TTL, copiesHorizonMs: HORIZON }, { now, mayRead: (t) => t === 'acme' })).toMatchObject({
      status: 'failed',
      reason: EXPIRED_BEFORE_APPLIED,
    });
    expect(await versions()).toBe(4);
  });

  it('the compactor sweep fails every expired pending command, leaves finished ones, and a later apply still wins', async () => {
    const store = createReceiptStore(ch().client, hash);
    const now = Date.now();
    const stale = randomUUID();
    const done = randomUUID();
    const staleCmds = commands(stale, 2, now - TTL - DAY);
    await store.writePending(staleCmds);
    const [doneCmd] = commands(done, 1, now - TTL - DAY);
    if (!doneCmd) throw new Error('no command');
    await store.write([{ ...pendingReceipt(doneCmd, hash), status: 'verified', verified_at: now - TTL, applied_at: now - TTL }], now - TTL);

    const sweep = startPendingExpiry({ store, ttlMs: () => TTL, everyMs: 60_000, logger: createLogger({ level: 'silent' }) });
    const r = await eventually(async () => {
      const x = await store.forRequest(stale);
      return x?.status === 'failed' && x;
    }, 10_000, 'the stale request failed', 25);
    await sweep.stop();
    expect(r).toMatchObject({ status: 'failed', reason: EXPIRED_BEFORE_APPLIED, commands: 2 });
    expect(await store.forRequest(done)).toMatchObject({ status: 'verified', reason: null });
    expect(await store.expirePending(TTL, { now })).toBe(0);

    // the record outlived its retention in an unrolled segment and the compactor applied it after all
    await store.write(staleCmds.map((c) => ({ ...pendingReceipt(c, hash), status: 'verified' as const, verified_at: Date.now() })), Date.now());
    expect(await store.forRequest(stale)).toMatchObject({ status: 'verified', reason: null });
  });
});
