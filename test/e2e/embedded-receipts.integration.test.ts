// In embedded mode (no Kafka), a receipt's copiesExpireBy is its verification
// time once the overwrite journal — the only copy of the command outside ClickHouse — no longer
// holds the request; null before that.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../libs/core/logger.js';
import { embeddedConfigSchema } from '../../services/embedded/config.js';
import { startEmbedded, type EmbeddedServer } from '../../services/embedded/embedded-runner.js';
import { eventually } from '../support/poll.js';

let server: EmbeddedServer;
let dataDir: string;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'tracklane-receipts-'));
  const config = embeddedConfigSchema.parse({
    PORT: '0',
    TRACKLANE_DATA_DIR: dataDir,
    TRACKLANE_ADMIN_TOKEN: randomBytes(24).toString('base64url'),
    TRACKLANE_MASTER_KEY: `base64:${randomBytes(32).toString('base64')}`,
  });
  server = await startEmbedded(config, createLogger({ level: 'silent' }));
}, 120_000);

afterAll(async () => {
  await server?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

async function call(method: string, path: string, body?: unknown) {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${server.adminToken}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const journal = () => {
  const path = join(dataDir, 'overwrites-queue.jsonl');
  return existsSync(path) ? readFileSync(path, 'utf8') : '';
};

describe('embedded receipts: copiesExpireBy', () => {
  it('is null until verified with the journal emptied, then the verification time', async () => {
    expect((await call('PUT', '/v1/admin/tenants/rc-a')).status).toBe(201);
    const USER = `journaled-user-${randomBytes(4).toString('hex')}`;
    const erased = await call('POST', '/v1/admin/tenants/rc-a/erasures', { userIds: [USER], mode: 'delete' });
    expect(erased.status).toBe(202);
    const requestId = String(erased.body['requestId']);

    const seen: Record<string, unknown>[] = [];
    const done = await eventually(async () => {
      const r = await call('GET', `/v1/admin/requests/${requestId}`);
      expect(r.status).toBe(200);
      seen.push(r.body);
      if (r.body['status'] === 'failed') throw new Error(`request failed: ${String(r.body['reason'])}`);
      return r.body['copiesExpireBy'] !== null ? r.body : undefined;
    }, 150_000, 'copiesExpireBy set');

    expect(done).toMatchObject({ status: 'verified', copiesExpireBy: done['verifiedAt'] });
    expect(typeof done['verifiedAt']).toBe('number');
    // the journal the queue kept the command in holds it no more
    expect(journal().includes(USER)).toBe(false);
    // before that, no receipt claimed a time: not pending ones, not verified ones still journaled
    for (const r of seen.slice(0, -1)) expect(r['copiesExpireBy']).toBeNull();
  }, 180_000);
});
