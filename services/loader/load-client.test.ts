import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { freePort } from '../../test/support/child-process.js';
import { createLoadClient, LoadApiError, type LoadChunk } from './load-client.js';

interface Seen {
  method: string;
  url: string;
  auth: string | undefined;
  body: unknown;
}

/** A fake admin API: each test queues the answers; every request is recorded. */
let server: Server;
let url: string;
let seen: Seen[] = [];
let answers: { status: number; body?: unknown; delayMs?: number }[] = [];

beforeAll(async () => {
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let raw = '';
    req.on('data', (d: Buffer) => (raw += d.toString()));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', auth: req.headers.authorization, body: raw ? JSON.parse(raw) : undefined });
      const a = answers.shift() ?? { status: 500, body: { error: 'no_answer', message: 'no answer queued' } };
      setTimeout(() => {
        res.writeHead(a.status, { 'content-type': 'application/json' });
        res.end(a.body === undefined ? '' : typeof a.body === 'string' ? a.body : JSON.stringify(a.body));
      }, a.delayMs ?? 0);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});
afterAll(() => {
  server.closeAllConnections();
  return new Promise<void>((r) => server.close(() => r()));
});
beforeEach(() => {
  seen = [];
  answers = [];
});

const chunk: LoadChunk = { subject: 'user', rows: [{ id: 'u1', set: { email: 'a@b.c' } }], insertMissing: false, dryRun: false };
const client = () => createLoadClient({ url, token: 'tok', retryDelaysMs: [1, 1] });

async function failure(p: Promise<unknown>): Promise<LoadApiError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(LoadApiError);
  return err as LoadApiError;
}

describe('createLoadClient', () => {
  it('posts a chunk with the bearer token and reads the answer', async () => {
    answers.push({ status: 202, body: { requestId: 'r1', accepted: 1, rejected: [], missing: 0 } });
    expect(await client().load('acme', chunk)).toEqual({ requestId: 'r1', accepted: 1, rejected: [], missing: 0 });
    expect(seen).toEqual([{ method: 'POST', url: '/v1/admin/tenants/acme/loads', auth: 'Bearer tok', body: chunk }]);
  });

  it('checks the tenant', async () => {
    answers.push({ status: 200, body: { tenantId: 'acme' } });
    await client().checkTenant('acme');
    expect(seen[0]).toMatchObject({ method: 'GET', url: '/v1/admin/tenants/acme/flags' });
  });

  it.each([
    [401, { error: 'unauthorized' }, 'unauthorized', 'check TRACKLANE_ADMIN_TOKEN'],
    [404, { error: 'not_found', message: 'tenant "acme" does not exist' }, 'tenant_not_found', 'tenant "acme" does not exist at http://127.0.0.1:'],
    [404, { error: 'Not Found', message: 'Route POST:/v1/admin/tenants/acme/loads not found' }, 'server', 'has no load request route'],
    [400, { error: 'bad_request', message: 'rows: Too big' }, 'refused', 'the server refused the load request (400): rows: Too big'],
    [500, 'oops, not JSON', 'server', 'the load request failed with HTTP 500'],
    [202, { requestId: 'r1' }, 'server', 'unexpected answer to a load request'],
  ])('maps HTTP %i %j to %s', async (status, body, kind, message) => {
    answers.push({ status, body });
    const err = await failure(client().load('acme', chunk));
    expect(err.kind).toBe(kind);
    expect(err.message).toContain(message);
  });

  it('says an invalid tenant id is one', async () => {
    answers.push({ status: 400, body: { error: 'bad_request', message: 'tenantId must be 1-63 characters' } });
    expect((await failure(client().checkTenant('Bad Tenant'))).kind).toBe('tenant_not_found');
    expect(seen[0]?.url).toBe('/v1/admin/tenants/Bad%20Tenant/flags');
  });

  it('retries 503 and 429, then gives up', async () => {
    answers.push({ status: 503 }, { status: 429 }, { status: 202, body: { requestId: null, accepted: 1, rejected: [], missing: 1 } });
    expect(await client().load('acme', chunk)).toMatchObject({ missing: 1 });
    expect(seen).toHaveLength(3);
    seen = [];
    answers.push({ status: 503 }, { status: 503 }, { status: 503 });
    expect((await failure(client().load('acme', chunk))).message).toContain('HTTP 503');
    expect(seen).toHaveLength(3);
  });

  it('reads receipts; an unknown request is undefined', async () => {
    answers.push(
      { status: 200, body: { requestId: 'r1', status: 'verified', commands: 2, rowsRewritten: {}, reason: null, requestedAt: 1, verifiedAt: 2 } },
      { status: 404, body: { error: 'not_found', message: 'request r2 is unknown' } },
    );
    expect(await client().receipt('r1')).toMatchObject({ requestId: 'r1', status: 'verified' });
    expect(await client().receipt('r2')).toBeUndefined();
  });

  it('names the URL when nothing listens there, without retrying', async () => {
    const port = await freePort();
    const started = Date.now();
    const err = await failure(createLoadClient({ url: `http://127.0.0.1:${port}`, token: 't', retryDelaysMs: [5_000] }).checkTenant('acme'));
    expect(err.kind).toBe('unreachable');
    expect(err.message).toBe(`cannot reach the admin API at http://127.0.0.1:${port} (ECONNREFUSED)`);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('gives up on a server that does not answer in time', async () => {
    answers.push({ status: 200, body: {}, delayMs: 300 }, { status: 200, body: {}, delayMs: 300 });
    const err = await failure(createLoadClient({ url, token: 't', requestTimeoutMs: 50, retryDelaysMs: [1] }).checkTenant('acme'));
    expect(err.kind).toBe('unreachable');
    expect(err.message).toContain('no answer from the admin API');
  });
});
