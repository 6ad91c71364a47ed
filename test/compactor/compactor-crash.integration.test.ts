// The compactor crash in embedded mode (chDB, no shared services): the process killed
// (SIGKILL, through the test-only fault points of libs/core/fault-points.ts) in each step of an
// overwrite round, then started again on the same data dir without the fault: the journaled
// commands are resumed, every request ends `verified` and no old value is left anywhere.
import { afterEach, describe, expect, it } from 'vitest';
import { toNumber } from '../../libs/clickhouse/client.js';
import { FAULT_POINT_ENV, FAULT_POINTS, type FaultPointName } from '../../libs/core/fault-points.js';
import { eventually } from '../support/poll.js';
import { grepEveryColumn } from '../support/grep-tables.js';
import { createRestartableEmbedded, type RestartableEmbedded } from '../support/restartable-embedded.js';

let instance: RestartableEmbedded | undefined;
afterEach(async () => {
  await instance?.dispose();
  instance = undefined;
});

const withTimeout = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms))]);

async function sendBatch(ti: RestartableEmbedded, writeKey: string, batch: unknown[]): Promise<void> {
  const res = await fetch(`${ti.url}/v1/batch`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${writeKey}:`).toString('base64')}` },
    body: JSON.stringify({ batch }),
  });
  expect(res.status).toBe(200);
}

async function receiptOf(ti: RestartableEmbedded, requestId: string): Promise<Record<string, unknown>> {
  return eventually(
    async () => {
      const r = await ti.admin('GET', `/v1/admin/requests/${requestId}`);
      if (r.body['status'] === 'failed') throw new Error(`request failed: ${String(r.body['reason'])}`);
      return r.body['status'] === 'verified' ? r.body : undefined;
    },
    60_000,
    `request ${requestId} verified`,
  );
}

describe('the compactor killed in each step of a round (embedded)', () => {
  it.each(FAULT_POINTS.map((p) => [p]))(
    'killed at %s: after a restart both requests end verified and no old value is left',
    async (point: FaultPointName) => {
      const ti = (instance = await createRestartableEmbedded());
      const tag = point.replace(/\W/g, '');
      const tenant = `crash-${tag}`;
      const old = { email: `old.${tag}@acme-old.io`, firstName: `Oldfirst${tag}`, gone: `gone.${tag}@acme-gone.io`, goneName: `Gonename${tag}` };

      // NOTE: a data dir started once before, as that of any but a first start: on a fresh one
      // the first round waits ~35 s for outdated parts to go (chDB's part cleanup starts on its
      // default back-off, before migration 0006 shortens it)
      await ti.start();
      expect(await ti.stop(), ti.output()).toEqual({ code: 0, signal: null });
      await ti.start({ [FAULT_POINT_ENV]: point });
      const created = await ti.admin('PUT', `/v1/admin/tenants/${tenant}`);
      expect(created.status).toBe(201);
      const writeKey = String(created.body['writeKey']);
      await sendBatch(ti, writeKey, [
        { type: 'identify', messageId: `${tag}-i1`, userId: 'patched', traits: { email: old.email, firstName: old.firstName } },
        { type: 'track', messageId: `${tag}-t1`, userId: 'patched', event: 'Report Exported' },
        { type: 'identify', messageId: `${tag}-i2`, userId: 'patched', traits: { email: old.email, firstName: old.firstName, plan: 'pro' } },
        { type: 'identify', messageId: `${tag}-i3`, userId: 'erased', traits: { email: old.gone, firstName: old.goneName } },
        { type: 'track', messageId: `${tag}-t2`, userId: 'erased', event: 'Report Exported' },
        { type: 'identify', messageId: `${tag}-i4`, userId: 'bystander', traits: { plan: 'free' } },
      ]);
      await eventually(async () => {
        const [r] = await ti.query<{ n: unknown }>(`SELECT count() AS n FROM events WHERE tenant_id = '${tenant}'`);
        const [u] = await ti.query<{ n: unknown }>(`SELECT count() AS n FROM users FINAL WHERE tenant_id = '${tenant}'`);
        return toNumber(r?.n) === 6 && toNumber(u?.n) === 3;
      }, 30_000, 'the events and users stored');

      // one batch of the compactor, most likely (the queue gathers requests 300 ms apart): an
      // overwrite of a user's PII and a delete erasure of another user with its events
      const patched = await ti.admin('PATCH', `/v1/admin/tenants/${tenant}/users/patched`, { set: { email: `new.${tag}@acme.io`, firstName: 'Newfirst' } });
      expect(patched.status).toBe(202);
      const erased = await ti.admin('POST', `/v1/admin/tenants/${tenant}/erasures`, { userIds: ['erased'], mode: 'delete', deleteEvents: true });
      expect(erased.status).toBe(202);

      const died = await withTimeout(ti.exited(), 60_000, `the process killed at ${point}`);
      expect(died, ti.output()).toEqual({ code: null, signal: 'SIGKILL' });
      expect(ti.output()).toContain(`fault point ${point} reached (1): SIGKILL`);

      // the same data dir and port, no fault: the journal resumes the commands
      await ti.start();
      const patchReceipt = await receiptOf(ti, String(patched.body['requestId']));
      const eraseReceipt = await receiptOf(ti, String(erased.body['requestId']));
      // what the request rewrote in all, also when an earlier life of the round did part of it
      expect(patchReceipt).toMatchObject({ status: 'verified', commands: 1, verifiedAt: expect.any(Number), rowsRewritten: { events: 2, users: 1 } });
      expect(eraseReceipt).toMatchObject({ status: 'verified', commands: 1, verifiedAt: expect.any(Number), rowsRewritten: { events: 0, events_deleted: 2, users: 1 } });

      expect(await ti.query(`SELECT user_id, email, first_name FROM users FINAL WHERE tenant_id = '${tenant}' ORDER BY user_id`)).toEqual([
        { user_id: 'bystander', email: null, first_name: null },
        { user_id: 'patched', email: `new.${tag}@acme.io`, first_name: 'Newfirst' },
      ]);
      const [physical] = await ti.query<{ n: unknown }>(`SELECT count() AS n FROM users WHERE tenant_id = '${tenant}' AND user_id = 'patched'`);
      expect(toNumber(physical?.n)).toBe(1);
      const events = await ti.query<{ user_id: string; traits: Record<string, string> }>(
        `SELECT user_id, traits FROM events_with_traits WHERE tenant_id = '${tenant}' AND user_id = 'patched' AND type = 'identify' ORDER BY event_id`,
      );
      expect(events.map((e) => [e.user_id, e.traits['email'], e.traits['firstName']])).toEqual([
        ['patched', `"new.${tag}@acme.io"`, '"Newfirst"'],
        ['patched', `"new.${tag}@acme.io"`, '"Newfirst"'],
      ]);
      const [left] = await ti.query<{ n: unknown }>(`SELECT count() AS n FROM events WHERE tenant_id = '${tenant}' AND user_id = 'erased'`);
      expect(toNumber(left?.n)).toBe(0);
      expect(await grepEveryColumn(<T,>(sql: string) => ti.query<T>(sql), [old.email, old.firstName, old.gone, old.goneName])).toEqual([]);
    },
    150_000,
  );
});
