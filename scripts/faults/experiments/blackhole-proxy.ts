// A TCP proxy in a worker thread (own event loop, so it does not compete with the clients') in
// front of the private broker: the broker advertises the proxy's port, so every client
// connection goes through it. `blackhole(true)` drops every byte the broker sends back while
// requests still pass: a request in flight is processed (and written) by the broker, its answer
// never arrives. Used to put the kill -9 inside the window "written but not yet acknowledged".
import { Worker } from 'node:worker_threads';

const source = `
const { parentPort, workerData } = require('node:worker_threads');
const net = require('node:net');
let blackhole = false;
let swallowedBytes = 0;
const sockets = new Set();
const server = net.createServer((client) => {
  const up = net.createConnection({ host: '127.0.0.1', port: workerData.target });
  sockets.add(client); sockets.add(up);
  const end = () => { client.destroy(); up.destroy(); sockets.delete(client); sockets.delete(up); };
  client.on('error', end).on('close', end);
  up.on('error', end).on('close', end);
  client.on('data', (c) => up.write(c));
  up.on('data', (c) => { if (blackhole) { swallowedBytes += c.length; return; } client.write(c); });
});
server.on('error', (e) => parentPort.postMessage({ type: 'error', message: String(e && e.message) }));
server.listen(workerData.port, '127.0.0.1', () => parentPort.postMessage({ type: 'listening' }));
parentPort.on('message', (m) => {
  if (m.type === 'blackhole') { blackhole = m.on; parentPort.postMessage({ type: 'ack', swallowedBytes, connections: sockets.size / 2 }); }
  if (m.type === 'close') { for (const s of sockets) s.destroy(); server.close(() => parentPort.postMessage({ type: 'closed' })); }
});
`;

export interface BlackholeProxy {
  port: number;
  /** resolves once the worker applied it; returns bytes swallowed so far and open connections */
  blackhole(on: boolean): Promise<{ swallowedBytes: number; connections: number }>;
  close(): Promise<void>;
}

export async function startBlackholeProxy(opts: { port: number; target: number }): Promise<BlackholeProxy> {
  const worker = new Worker(source, { eval: true, workerData: opts });
  const next = (type: string) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const onMessage = (m: Record<string, unknown>) => {
        if (m.type === 'error') {
          worker.off('message', onMessage);
          reject(new Error(`proxy: ${String(m.message)}`));
        } else if (m.type === type) {
          worker.off('message', onMessage);
          resolve(m);
        }
      };
      worker.on('message', onMessage);
    });
  await next('listening');
  return {
    port: opts.port,
    async blackhole(on) {
      const ack = next('ack');
      worker.postMessage({ type: 'blackhole', on });
      const m = await ack;
      return { swallowedBytes: Number(m.swallowedBytes), connections: Number(m.connections) };
    },
    async close() {
      const closed = next('closed');
      worker.postMessage({ type: 'close' });
      await Promise.race([closed, new Promise((r) => setTimeout(r, 2_000))]);
      await worker.terminate();
    },
  };
}
