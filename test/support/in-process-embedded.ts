// The embedded server started in the test process on a fresh data dir, with the admin calls
// e2e tests make of it: one per test file (beforeAll), stopped and its data dir removed after.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, type Logger } from '../../libs/core/logger.js';
import { embeddedConfigSchema } from '../../services/embedded/config.js';
import { startEmbedded, type EmbeddedServer } from '../../services/embedded/embedded-runner.js';

export interface InProcessEmbedded {
  server: EmbeddedServer;
  dataDir: string;
  /** an admin call with the operator token; the JSON answer and status */
  admin<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }>;
  /** a new tenant (its id made unique from `name`) with `flags` set, and its write key */
  tenant(name: string, flags?: Record<string, unknown>): Promise<{ id: string; writeKey: string }>;
  stop(): Promise<void>;
}

export async function startInProcessEmbedded(env: Record<string, string> = {}, logger?: Logger): Promise<InProcessEmbedded> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tracklane-e2e-'));
  const config = embeddedConfigSchema.parse({ PORT: '0', TRACKLANE_DATA_DIR: dataDir, TRACKLANE_ADMIN_TOKEN: randomBytes(24).toString('base64url'), ...env });
  const server = await startEmbedded(config, logger ?? createLogger({ level: process.env['TEST_LOG_LEVEL'] ?? 'silent' }));
  async function admin<T>(method: string, path: string, body?: unknown) {
    const res = await fetch(`${server.adminUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${server.adminToken}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, body: (res.status === 204 ? null : await res.json()) as T };
  }
  return {
    server,
    dataDir,
    admin,
    async tenant(name, flags = {}) {
      const id = `${name}-${randomBytes(4).toString('hex')}`;
      const created = await admin<{ writeKey: string }>('PUT', `/v1/admin/tenants/${id}`);
      if (created.status !== 201) throw new Error(`tenant ${id} not created: ${created.status}`);
      if (Object.keys(flags).length > 0) {
        const patched = await admin('PATCH', `/v1/admin/tenants/${id}/flags`, flags);
        if (patched.status !== 200) throw new Error(`flags of ${id} not set: ${patched.status} ${JSON.stringify(patched.body)}`);
      }
      return { id, writeKey: created.body.writeKey };
    },
    async stop() {
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
