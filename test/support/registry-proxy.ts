// A TLS + basic-auth reverse proxy in front of the test schema registry:
// Apicurio 2.6 authenticates only through Keycloak, while Confluent's registry (what production
// runs) offers HTTP basic auth and HTTPS; this stands in for the latter. Its certificate is the
// test broker's (same test CA, for 127.0.0.1).
import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import { testServerCertificate } from '../../scripts/services/kafka-tls.js';

export interface RegistryProxy {
  /** SCHEMA_REGISTRY_URL through the proxy (https, same path as the upstream URL) */
  url: string;
  caFile: string;
  username: string;
  password: string;
  /** requests answered 401 so far */
  refused(): number;
  close(): Promise<void>;
}

export async function startRegistryProxy(upstreamUrl: string): Promise<RegistryProxy> {
  const upstream = new URL(upstreamUrl);
  const cert = await testServerCertificate();
  const username = 'tracklane';
  const password = randomBytes(18).toString('base64url');
  const expected = Buffer.from(`Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`);
  let refused = 0;
  const server: Server = createServer({ pfx: cert.pfx, passphrase: cert.passphrase }, (req, res) => {
    const given = Buffer.from(req.headers.authorization ?? '');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      refused += 1;
      res.writeHead(401, { 'www-authenticate': 'Basic realm="schema-registry"', 'content-type': 'application/json' });
      res.end(JSON.stringify({ error_code: 401, message: 'Unauthorized' }));
      return;
    }
    const { authorization: _a, host: _h, ...headers } = req.headers;
    const forward = httpRequest(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    forward.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${port}${upstream.pathname}`,
    caFile: cert.caFile,
    username,
    password,
    refused: () => refused,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
