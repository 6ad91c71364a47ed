// A TCP proxy the harness puts between the fleet and the ClickHouse gateway, to make responses
// slow on purpose (scenario 3's "delayed past the client timeout"): requests pass at
// once, every byte of the answer waits `delayMs`. Connections keep their order of bytes.
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export interface DelayProxy {
  url: string;
  /** 0: pass through */
  setDelay(ms: number): void;
  close(): Promise<void>;
}

export async function startDelayProxy(target: { host: string; port: number }): Promise<DelayProxy> {
  let delayMs = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = createConnection(target);
    sockets.add(client).add(upstream);
    // NOTE: one queue per connection drained by one timer, so a chunk held back before the
    // delay was lifted still goes out before the chunks after it
    const queue: { due: number; chunk: Buffer }[] = [];
    let timer: NodeJS.Timeout | undefined;
    const end = (): void => {
      if (timer) clearTimeout(timer);
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    const drain = (): void => {
      timer = undefined;
      while (queue.length > 0 && (queue[0]?.due ?? 0) <= Date.now()) {
        const head = queue.shift();
        if (head && client.writable) client.write(head.chunk);
      }
      if (queue.length > 0) timer = setTimeout(drain, (queue[0]?.due ?? 0) - Date.now());
    };
    upstream.on('data', (chunk: Buffer) => {
      if (delayMs === 0 && queue.length === 0) {
        client.write(chunk);
        return;
      }
      queue.push({ due: Math.max(Date.now() + delayMs, queue.at(-1)?.due ?? 0), chunk });
      timer ??= setTimeout(drain, (queue[0]?.due ?? 0) - Date.now());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    setDelay(ms) {
      delayMs = ms;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
