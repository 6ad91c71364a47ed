// A recording reverse proxy in front of the collector, for the browser tests: the tag is
// pointed at it (`host`), and every request body it forwards is kept. NOTE: Playwright (and
// CDP) do not see a beacon sent while a page unloads; the proxy does.
import { createServer, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { freePort } from '../support/child-process.js';

export interface Forwarded {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** the collector's answer; 0 until it came */
  status: number;
}

export interface CaptureProxy {
  url: string;
  /** requests forwarded so far, in arrival order (preflights included) */
  requests: Forwarded[];
  close(): Promise<void>;
}

export async function startCaptureProxy(target: string): Promise<CaptureProxy> {
  const to = new URL(target);
  const requests: Forwarded[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      // NOTE: recorded on arrival, before the collector has the events
      const seen: Forwarded = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: body.toString('utf8'), status: 0 };
      requests.push(seen);
      const { host: _host, ...headers } = req.headers;
      const upstream = httpRequest(
        { hostname: to.hostname, port: to.port, method: req.method, path: req.url, headers: { ...headers, host: to.host } },
        (up) => {
          seen.status = up.statusCode ?? 0;
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
      );
      upstream.on('error', () => {
        res.writeHead(502);
        res.end();
      });
      upstream.end(body);
    });
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
