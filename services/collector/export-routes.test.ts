// The export route's stream: records as NDJSON lines, the summary last; a failure once the
// answer has started ends it with an error line and no summary; what the audit hook reads.
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { EventRow } from '../../libs/clickhouse/tables/events.js';
import { createLogger } from '../../libs/core/logger.js';
import type { SubjectExportSource } from '../../libs/privacy/subject-export.js';
import { createMemoryTenantStore } from '../../libs/tenants/tenant-store.js';
import { registerExportRoute } from './export-routes.js';

let app: FastifyInstance;
let pages: (() => EventRow[])[];
let audited: (Record<string, string> | null)[];
const hash = (t: string, id: string) => `h(${t},${id.length})`;
const event = (event_id: string): EventRow => ({ tenant_id: 'acme', event_id, user_id: 'u1', identity_anonymized: 0 }) as unknown as EventRow;

beforeEach(async () => {
  pages = [];
  audited = [];
  const tenants = createMemoryTenantStore();
  await tenants.createTenant('acme');
  const source: SubjectExportSource = {
    profiles: async () => [],
    accounts: async () => [],
    async *eventPages() {
      for (const p of pages) yield p();
    },
    receipts: async () => [],
  };
  // NOTE: as http-app.ts: ids are path parameters of up to 128 characters, URL-encoded
  app = Fastify({ routerOptions: { maxParamLength: 512 } });
  // NOTE: the operator, as the admin plugin's authentication would set it (admin-auth.ts); its audit hook reads auditDetails at the end
  app.decorateRequest('principal', null);
  app.decorateRequest('auditDetails', null);
  app.addHook('onRequest', async (req) => {
    req.principal = { kind: 'operator', keyId: 'operator' };
  });
  app.addHook('onResponse', async (req) => void audited.push(req.auditDetails));
  registerExportRoute(app, { tenants, source, aliasesOf: () => [], subjectHash: hash, logger: createLogger({ level: 'silent' }) });
  await app.ready();
});
afterEach(() => app.close());

const get = (id: string) => app.inject({ method: 'GET', url: `/v1/admin/tenants/acme/users/${id}/export` });
const lines = (body: string) => body.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { kind: string });

describe('export route', () => {
  it('streams the records, the summary last, and tells the audit log the hash and the counts', async () => {
    pages = [() => [event('e1'), event('e2')], () => [event('e3')]];
    const res = await get('u1');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/x-ndjson/);
    expect(lines(res.body).map((l) => l.kind)).toEqual(['event', 'event', 'event', 'summary']);
    expect(audited).toEqual([{ subjectIdHash: 'h(acme,2)', complete: 'true', profiles: '0', events: '3', receipts: '0' }]);
  });

  it('ends with an error line and no summary when a page fails after the answer started', async () => {
    pages = [
      () => [event('e1')],
      () => {
        throw new Error('ClickHouse went away');
      },
    ];
    const res = await get('u1');
    expect(res.statusCode).toBe(200);
    const got = lines(res.body);
    expect(got.map((l) => l.kind)).toEqual(['event', 'error']);
    expect(res.body).not.toContain('ClickHouse went away');
    expect(audited[0]).toMatchObject({ complete: 'false', events: '1' });
  });

  it('refuses an id it cannot be asked for, and an unknown tenant', async () => {
    expect((await get('x'.repeat(129))).statusCode).toBe(400);
    expect((await app.inject({ method: 'GET', url: '/v1/admin/tenants/nope/users/u1/export' })).statusCode).toBe(404);
    expect((await app.inject({ method: 'GET', url: '/v1/admin/tenants/Bad!/users/u1/export' })).statusCode).toBe(400);
  });
});
