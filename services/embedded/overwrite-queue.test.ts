import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Compactor, Receipt } from '../../libs/compactor/compactor.js';
import type { ReceiptStore, RequestReceipt } from '../../libs/compactor/receipts.js';
import { createLogger } from '../../libs/core/logger.js';
import type { OverwriteCommand } from '../../libs/events/overwrite-command.js';
import { openOverwriteQueue } from './overwrite-queue.js';

const logger = createLogger({ level: 'silent' });
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const cmd = (id: string): OverwriteCommand => ({
  request_id: `r-${id}`, tenant_id: 't', subject: 'user', id, set: { email: `${id}@new.example` }, mode: 'overwrite',
  delete_events: false, suppress: false, requested_at: 1, insert_missing: null,
});

/** the queue's collaborators, recording what they were given */
function fakes(apply: (cmds: readonly OverwriteCommand[]) => Promise<Receipt[]>) {
  const applied: string[][] = [];
  const pending: string[] = [];
  const compactor = { apply: async (c: readonly OverwriteCommand[]) => (applied.push(c.map((x) => x.id)), apply(c)) } as unknown as Compactor;
  const receipts = { writePending: async (c: readonly OverwriteCommand[]) => void pending.push(...c.map((x) => x.id)), forRequest: async () => undefined } as unknown as ReceiptStore;
  return { compactor, receipts, applied, pending };
}

function journal(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tl-queue-'));
  dirs.push(dir);
  return join(dir, 'overwrites-queue.jsonl');
}

describe('overwrite queue (embedded)', () => {
  it('gathers back-to-back submissions into one batch and empties the journal once applied', async () => {
    const path = journal();
    const f = fakes(async () => []);
    const q = await openOverwriteQueue({ compactor: f.compactor, receipts: f.receipts, logger, journalPath: path });
    await q.submit([cmd('a')]);
    await q.submit([cmd('b'), cmd('c')]);
    expect(readFileSync(path, 'utf8').trim().split('\n')).toHaveLength(3);
    await q.close();
    expect(f.pending).toEqual(['a', 'b', 'c']);
    expect(f.applied).toEqual([['a', 'b', 'c']]);
    expect(readFileSync(path, 'utf8')).toBe('');
  });

  it('resumes on the next start what a crashed run journaled but never applied', async () => {
    const path = journal();
    const crashed = fakes(() => new Promise<Receipt[]>(() => undefined)); // the process dies mid-batch
    const q1 = await openOverwriteQueue({ compactor: crashed.compactor, receipts: crashed.receipts, logger, journalPath: path });
    await q1.submit([cmd('a'), cmd('b')]);
    writeFileSync(path, `${readFileSync(path, 'utf8')}{"request_id":"torn`); // a torn last line

    const f = fakes(async () => []);
    const q2 = await openOverwriteQueue({ compactor: f.compactor, receipts: f.receipts, logger, journalPath: path });
    await q2.close();
    expect(f.applied).toEqual([['a', 'b']]);
    expect(readFileSync(path, 'utf8')).toBe('');
  });

  it('resumes an erasure with the same new id it was accepted with (replaceId)', async () => {
    const path = journal();
    const erasure: OverwriteCommand = { ...cmd('a'), set: {}, mode: 'delete', replacement_id: 'anon-6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d' };
    const crashed = fakes(() => new Promise<Receipt[]>(() => undefined));
    await (await openOverwriteQueue({ compactor: crashed.compactor, receipts: crashed.receipts, logger, journalPath: path })).submit([erasure]);
    const resumed: OverwriteCommand[] = [];
    const f = fakes(async (c) => (resumed.push(...c), []));
    await (await openOverwriteQueue({ compactor: f.compactor, receipts: f.receipts, logger, journalPath: path })).close();
    expect(resumed).toEqual([erasure]);
  });

  it('keeps a batch the compactor rejected in the journal for the next start', async () => {
    const path = journal();
    const f = fakes(async () => {
      throw new Error('ClickHouse unreachable');
    });
    const q = await openOverwriteQueue({ compactor: f.compactor, receipts: f.receipts, logger, journalPath: path });
    await q.submit([cmd('a')]);
    await q.close();
    expect(readFileSync(path, 'utf8')).toContain('"id":"a"');
  });

  it('reports copiesExpireBy = the verification time only once the journal no longer holds the request', async () => {
    const path = journal();
    let release: () => void = () => undefined;
    const f = fakes(() => new Promise<Receipt[]>((r) => (release = () => r([]))));
    const stored: Record<string, RequestReceipt> = {};
    const receipts = { ...(f.receipts as object), forRequest: async (id: string) => stored[id] } as unknown as ReceiptStore;
    const q = await openOverwriteQueue({ compactor: f.compactor, receipts, logger, journalPath: path });
    const base = { tenantId: 't', commands: 1, rowsRewritten: {}, reason: null, requestedAt: 1, suppressedEvents: 0, copiesExpireBy: null };
    stored['r-a'] = { ...base, requestId: 'r-a', status: 'pending', verifiedAt: null };
    await q.submit([cmd('a')]);
    expect(await q.receipt('r-a')).toMatchObject({ status: 'pending', copiesExpireBy: null });
    for (const t0 = Date.now(); f.applied.length === 0 && Date.now() - t0 < 5_000; ) await new Promise((r) => setTimeout(r, 20));
    expect(f.applied).toEqual([['a']]); // the batch started: the compactor holds it
    // verified in ClickHouse, but the journal still holds the command's clear id and values
    stored['r-a'] = { ...base, requestId: 'r-a', status: 'verified', verifiedAt: 5_000 };
    expect(readFileSync(path, 'utf8')).toContain('"id":"a"');
    expect(await q.receipt('r-a')).toMatchObject({ status: 'verified', copiesExpireBy: null });
    release();
    await q.close();
    expect(readFileSync(path, 'utf8')).toBe('');
    expect(await q.receipt('r-a')).toMatchObject({ status: 'verified', verifiedAt: 5_000, copiesExpireBy: 5_000 });
    expect(await q.receipt('r-unknown')).toBeUndefined();
  });

  it('a request resumed from the journal has no copiesExpireBy until applied again', async () => {
    const path = journal();
    writeFileSync(path, `${JSON.stringify(cmd('b'))}\n`);
    const f = fakes(() => new Promise<Receipt[]>(() => undefined));
    const verified: RequestReceipt = { requestId: 'r-b', tenantId: 't', status: 'verified', commands: 1, rowsRewritten: {}, reason: null, requestedAt: 1, verifiedAt: 9, suppressedEvents: 0, copiesExpireBy: null };
    const receipts = { ...(f.receipts as object), forRequest: async () => verified } as unknown as ReceiptStore;
    const q = await openOverwriteQueue({ compactor: f.compactor, receipts, logger, journalPath: path });
    expect(await q.receipt('r-b')).toMatchObject({ copiesExpireBy: null });
  });
});
