// Every ClickHouse connection logs in and, over HTTPS, verifies the server
// against the CA it is given — driven through the settings (libs/clickhouse/clickhouse-connection.ts)
// against the test gateway enforcing a user and serving HTTPS with a generated CA.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAnalystSql } from '../../libs/clickhouse/analyst-setup.js';
import { clickhouseConnectionFrom, clickhouseStartupProblem } from '../../libs/clickhouse/clickhouse-connection.js';
import { createClickHouse, toNumber, type ClickHouseClient, type HttpClickHouseConfig } from '../../libs/clickhouse/client.js';
import { withIdLookup } from '../../libs/clickhouse/id-lookup.js';
import { createLogger } from '../../libs/core/logger.js';
import { startClickHouseGateway, type ClickHouseGateway } from '../support/clickhouse-gateway.js';
import { makeTestCa, type TestCa } from '../support/test-certificates.js';

const logger = createLogger({ level: 'silent' });
const PASSWORD = `pw-${process.pid}-${Date.now()}`;
const ANALYST_PASSWORD = `an-${Date.now()}`;
let dir = '';
let ca: TestCa;
let otherCa: TestCa;
let tlsGateway: ClickHouseGateway;
let httpGateway: ClickHouseGateway;
const clients: ClickHouseClient[] = [];

function client(cfg: Omit<HttpClickHouseConfig, 'logger'>): ClickHouseClient {
  const c = createClickHouse({ logger, requestTimeoutMs: 10_000, ...cfg });
  clients.push(c);
  return c;
}

/** The error a first statement fails with (the start-up check every service runs). */
async function failure(c: ClickHouseClient): Promise<unknown> {
  try {
    await (await c.query({ query: 'SELECT 1', format: 'JSONEachRow' })).json();
  } catch (err) {
    return err;
  }
  throw new Error('the statement succeeded');
}

async function one(c: ClickHouseClient): Promise<number> {
  const [r] = await (await c.query({ query: 'SELECT 41 + 1 AS n', format: 'JSONEachRow' })).json<{ n: unknown }>();
  return toNumber(r?.n);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tracklane-ch-conn-'));
  ca = makeTestCa('Tracklane test CA');
  otherCa = makeTestCa('Some other CA');
  const users = { tracklane: PASSWORD, analyst: ANALYST_PASSWORD };
  // NOTE: two listeners on one engine (one chDB data dir per process; more sessions on it are fine)
  tlsGateway = await startClickHouseGateway({ port: 0, dataDir: join(dir, 'ch'), users, tls: { cert: ca.certPem, key: ca.keyPem } });
  httpGateway = await startClickHouseGateway({ port: 0, dataDir: join(dir, 'ch'), users });
});

afterAll(async () => {
  for (const c of clients) await c.close();
  await tlsGateway?.close();
  await httpGateway?.close();
  for (const d of [dir, ca?.dir, otherCa?.dir]) if (d) rmSync(d, { recursive: true, force: true });
});

describe('HTTPS with a CA file and a password file (the settings as a service reads them)', () => {
  it('connects with the right password over HTTPS, the server verified against CLICKHOUSE_CA_FILE', async () => {
    expect(tlsGateway.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const secret = join(dir, 'password');
    writeFileSync(secret, `${PASSWORD}\n`); // as a mounted Secret: with a trailing newline
    const connection = clickhouseConnectionFrom({
      CLICKHOUSE_URL: tlsGateway.url,
      CLICKHOUSE_USER: 'tracklane',
      CLICKHOUSE_PASSWORD: undefined,
      CLICKHOUSE_PASSWORD_FILE: secret,
      CLICKHOUSE_CA_FILE: ca.caFile,
    });
    expect(await one(client({ url: tlsGateway.url, ...connection }))).toBe(42);
  });

  it('a wrong password is refused with AUTHENTICATION_FAILED, classified as a credentials problem without the value', async () => {
    const err = await failure(client({ url: tlsGateway.url, username: 'tracklane', password: 'not-the-password', caCert: Buffer.from(ca.caPem) }));
    expect(err).toMatchObject({ code: '516', type: 'AUTHENTICATION_FAILED' });
    const line = clickhouseStartupProblem(err);
    expect(line).toBe('ClickHouse refused the credentials: check CLICKHOUSE_USER and CLICKHOUSE_PASSWORD (or CLICKHOUSE_PASSWORD_FILE)');
    expect(line).not.toContain('not-the-password');
    // no credentials at all: the `default` user, which this server does not have
    expect(clickhouseStartupProblem(await failure(client({ url: tlsGateway.url, caCert: Buffer.from(ca.caPem) })))).toMatch(/CLICKHOUSE_USER/);
  });

  it('a certificate from another CA, or the system CAs for a private CA, is a TLS problem naming CLICKHOUSE_CA_FILE', async () => {
    for (const caCert of [Buffer.from(otherCa.caPem), undefined]) {
      const err = await failure(client({ url: tlsGateway.url, username: 'tracklane', password: PASSWORD, ...(caCert ? { caCert } : {}) }));
      expect((err as { code?: string }).code).toMatch(/SELF_SIGNED|UNABLE_TO|CERT/);
      expect(clickhouseStartupProblem(err)).toBe("ClickHouse's TLS certificate is not trusted: check CLICKHOUSE_CA_FILE (unset: the system's CAs)");
    }
  });

  it('the host name is verified: a trusted certificate for another name is refused', async () => {
    // a server on 127.0.0.2 presenting the certificate made for localhost / 127.0.0.1
    const server: Server = createHttpsServer({ cert: ca.certPem, key: ca.keyPem }, (_req, res) => res.end('Ok.\n'));
    await new Promise<void>((ok) => server.listen(0, '127.0.0.2', ok));
    try {
      const url = `https://127.0.0.2:${(server.address() as AddressInfo).port}`;
      const err = await failure(client({ url, username: 'tracklane', password: PASSWORD, caCert: Buffer.from(ca.caPem) }));
      expect((err as { code?: string }).code).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
      expect(clickhouseStartupProblem(err)).toMatch(/names another host: check the host of CLICKHOUSE_URL/);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  it('an https:// URL at a plain HTTP port is a TLS problem naming CLICKHOUSE_URL', async () => {
    const err = await failure(client({ url: httpGateway.url.replace('http:', 'https:'), username: 'tracklane', password: PASSWORD }));
    expect(clickhouseStartupProblem(err)).toMatch(/does not speak TLS on that port/);
  });

  it('the analyst user logs in at start; a wrong analyst password names the analyst settings', async () => {
    const base = { url: tlsGateway.url, chdbDir: '', username: 'tracklane', password: PASSWORD, caCert: Buffer.from(ca.caPem), limits: {}, logger };
    const ok = await openAnalystSql({ ...base, analystUser: 'analyst', analystPassword: ANALYST_PASSWORD });
    await ok.close();
    const err = await openAnalystSql({ ...base, analystUser: 'analyst', analystPassword: 'wrong' }).then(
      () => new Error('opened'),
      (e: unknown) => e,
    );
    expect(clickhouseStartupProblem(err)).toBe(
      'ClickHouse refused the analyst user: check CLICKHOUSE_ANALYST_USER and CLICKHOUSE_ANALYST_PASSWORD (or CLICKHOUSE_ANALYST_PASSWORD_FILE)',
    );
  });
});

describe('the gateway takes credentials as ClickHouse does', () => {
  it('HTTP basic auth (the client over HTTP), X-ClickHouse-User/Key headers and URL parameters', async () => {
    expect(await one(client({ url: httpGateway.url, username: 'tracklane', password: PASSWORD }))).toBe(42);
    const query = encodeURIComponent('SELECT 42');
    const headers = await fetch(`${httpGateway.url}/?query=${query}`, { headers: { 'X-ClickHouse-User': 'tracklane', 'X-ClickHouse-Key': PASSWORD } });
    expect([headers.status, (await headers.text()).trim()]).toEqual([200, '42']);
    const params = await fetch(`${httpGateway.url}/?user=tracklane&password=${encodeURIComponent(PASSWORD)}&query=${query}`);
    expect([params.status, (await params.text()).trim()]).toEqual([200, '42']);
    const wrong = await fetch(`${httpGateway.url}/?query=${query}`, { headers: { 'X-ClickHouse-User': 'tracklane', 'X-ClickHouse-Key': 'nope' } });
    expect(wrong.status).toBe(403);
    expect(wrong.headers.get('x-clickhouse-exception-code')).toBe('516');
    expect(await wrong.text()).toMatch(/^Code: 516\. DB::Exception: tracklane: Authentication failed.*\(AUTHENTICATION_FAILED\)/);
    // health checks need no credentials, as on a server
    expect((await fetch(`${httpGateway.url}/ping`)).status).toBe(200);
  });

  it('a session keeps its temporary table; another session (or none) does not see it', async () => {
    const c = client({ url: httpGateway.url, username: 'tracklane', password: PASSWORD });
    const seen = await withIdLookup(c, ['id'], [{ id: 'a' }, { id: 'b' }], async (lookup) => {
      const inSession = await lookup.rows<{ n: unknown }>(`SELECT count() AS n FROM ${lookup.table}`);
      const outside = await c.query({ query: `SELECT count() AS n FROM ${lookup.table}`, format: 'JSONEachRow' }).then(
        () => 'visible',
        (e: { type?: string }) => e.type,
      );
      return { n: toNumber(inSession[0]?.n), outside };
    });
    expect(seen.n).toBe(2);
    expect(seen.outside).toBe('UNKNOWN_TABLE');
  });
});
