// Issue 4, acceptance 2 in embedded mode: events received before an overwrite request but
// still queued (here: in the sink's buffer, held 3 s) when it arrives get the overwrite too.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toNumber } from '../../libs/clickhouse/client.js';
import { startEmbeddedProcess, type EmbeddedProcess } from '../support/embedded-process.js';
import { eventually } from '../support/poll.js';

let server: EmbeddedProcess;

beforeAll(async () => {
  // NOTE: a sink flush age of 3 s keeps every accepted event queued in memory for that long
  server = await startEmbeddedProcess({ SINK_MAX_AGE_MS: '3000' });
}, 120_000);

afterAll(async () => {
  await server?.stop();
});

async function send(writeKey: string, batch: unknown[]): Promise<number> {
  const res = await fetch(`${server.url}/v1/batch`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${writeKey}:`).toString('base64')}` },
    body: JSON.stringify({ batch }),
  });
  return res.status;
}

describe('an overwrite covers events still queued when it is requested (embedded)', () => {
  it('events received before the PATCH but stored after it hold the new values; no old copy remains', async () => {
    const { body } = await server.admin<{ writeKey: string }>('PUT', '/v1/admin/tenants/inflight');
    const old = { email: 'dora.old@inflight-old.io', firstName: 'Dorothea', lastName: 'Oldfield' };
    // history, stored
    expect(await send(body.writeKey, [{ type: 'identify', messageId: 'if-1', userId: 'dora', traits: old }])).toBe(200);

    // in flight: accepted by the server, waiting in the sink's buffer while the PATCH arrives
    const queued = send(body.writeKey, [
      { type: 'identify', messageId: 'if-2', userId: 'dora', traits: { ...old, plan: 'pro' } },
      { type: 'track', messageId: 'if-3', userId: 'dora', event: 'Exported' },
    ]);
    await new Promise((r) => setTimeout(r, 300));
    const stored = await server.query<{ n: unknown }>(`SELECT count() AS n FROM events WHERE tenant_id = 'inflight' AND event_id = 'if-2'`);
    expect(toNumber(stored[0]?.n)).toBe(0); // not stored yet: genuinely in flight

    const patched = await server.admin<{ requestId: string }>('PATCH', '/v1/admin/tenants/inflight/users/dora', {
      set: { email: 'dora@inflight.io', firstName: 'Dora', lastName: 'Newfield' },
    });
    expect(patched.status).toBe(202);
    expect(await queued).toBe(200);

    await eventually(async () => {
      const r = await server.admin<{ status: string; reason: string | null }>('GET', `/v1/admin/requests/${patched.body.requestId}`);
      if (r.body.status === 'failed') throw new Error(`failed: ${r.body.reason}`);
      return r.body.status === 'verified';
    }, 150_000, 'a verified receipt');

    const events = await server.query<{ event_id: string; email: string | null }>(
      `SELECT event_id, traits['email'] AS email FROM events_with_traits WHERE tenant_id = 'inflight' AND type = 'identify' ORDER BY event_id`,
    );
    expect(events).toEqual([
      { event_id: 'if-1', email: '"dora@inflight.io"' },
      { event_id: 'if-2', email: '"dora@inflight.io"' },
    ]);
    for (const needle of [old.email, old.firstName, old.lastName]) {
      const hits = await server.query<{ n: unknown }>(
        `SELECT (SELECT count() FROM events WHERE position(toString(traits), '${needle}') > 0)
              + (SELECT count() FROM identify_snapshots WHERE position(toString(traits), '${needle}') > 0)
              + (SELECT count() FROM users WHERE position(concat(ifNull(email, ''), ifNull(first_name, ''), ifNull(last_name, ''), toString(traits)), '${needle}') > 0) AS n`,
      );
      expect(toNumber(hits[0]?.n), needle).toBe(0);
    }
    const users = await server.query(`SELECT email, first_name, last_name FROM users FINAL WHERE tenant_id = 'inflight'`);
    expect(users).toEqual([{ email: 'dora@inflight.io', first_name: 'Dora', last_name: 'Newfield' }]);
  }, 200_000);
});
