// The demo sender against a tiny local HTTP server that records what arrives: concurrency,
// auth, retries, fail-fast on 4xx, barriers before a batch, progress.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { SendError, basicAuth, createProgressBar, sendTraffic, type SendBatch } from './send.js';
import type { SegmentMessage } from './segment-types.js';
import { CaptureStream } from '../../test/support/capture-stream.js';
import { demoTrack } from '../../test/support/demo-messages.js';

interface Arrival {
  batchIndex: number;
  auth: string | undefined;
  contentType: string | undefined;
  path: string | undefined;
  body: { batch: SegmentMessage[]; sentAt: string };
  attempt: number;
}

type Reply = { status: number; body?: string; delayMs?: number; destroy?: boolean };

interface TestServer {
  url: string;
  arrivals: Arrival[];
  completed: Set<number>;
  maxInFlight: () => number;
}

const servers: Server[] = [];

afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((resolve) => s.close(resolve));
  }
});

async function startServer(reply: (a: Arrival) => Reply): Promise<TestServer> {
  const arrivals: Arrival[] = [];
  const completed = new Set<number>();
  const attempts = new Map<number, number>();
  let inFlight = 0;
  let maxInFlight = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Arrival['body'];
      const batchIndex = Number(/^b(\d+)-/.exec(body.batch[0]?.messageId ?? '')?.[1] ?? -1);
      const attempt = (attempts.get(batchIndex) ?? 0) + 1;
      attempts.set(batchIndex, attempt);
      const arrival: Arrival = {
        batchIndex,
        auth: req.headers.authorization,
        contentType: req.headers['content-type'],
        path: req.url,
        body,
        attempt,
      };
      arrivals.push(arrival);
      const r = reply(arrival);
      setTimeout(() => {
        inFlight--;
        if (r.destroy) {
          req.socket.destroy();
          return;
        }
        if (r.status >= 200 && r.status < 300) completed.add(batchIndex);
        res.writeHead(r.status, { 'content-type': 'application/json' });
        res.end(r.body ?? '{"success":true}');
      }, r.delayMs ?? 0);
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, arrivals, completed, maxInFlight: () => maxInFlight };
}

function message(id: string): SegmentMessage {
  return demoTrack({ messageId: id, anonymousId: 'anon-1', timestamp: '2025-06-01T10:00:00.000Z', event: 'Task Completed', properties: { secretPayloadMarker: 'do-not-echo' }, path: '/x' });
}

function makeBatches(count: number, size = 3): SendBatch[] {
  return Array.from({ length: count }, (_, i) => ({
    tenant: i % 2 === 0 ? 'tenant-a' : 'tenant-b',
    messages: Array.from({ length: size }, (_, j) => message(`b${i}-${j}`)),
  }));
}

const WRITE_KEYS = { 'tenant-a': 'wk_a_123', 'tenant-b': 'wk_b_456' };
const FAST_RETRY = { baseDelayMs: 5, maxDelayMs: 20 };

describe('sendTraffic', () => {
  it('keeps at most `concurrency` batches in flight and delivers all of them', async () => {
    const server = await startServer(() => ({ status: 200, delayMs: 25 }));
    const batches = makeBatches(24);
    const stats = await sendTraffic({ baseUrl: server.url, writeKeys: WRITE_KEYS, batches, concurrency: 3 });
    expect(server.maxInFlight()).toBe(3);
    expect(stats).toMatchObject({ events: 72, batches: 24, retries: 0, rejected: 0 });
    expect(new Set(server.arrivals.map((a) => a.batchIndex)).size).toBe(24);
  });

  it('posts JSON to /v1/batch with Basic auth of the tenant write key and a sentAt', async () => {
    const server = await startServer(() => ({ status: 200 }));
    await sendTraffic({ baseUrl: `${server.url}/`, writeKeys: WRITE_KEYS, batches: makeBatches(4) });
    expect(basicAuth('wk_a_123')).toBe(`Basic ${Buffer.from('wk_a_123:').toString('base64')}`);
    for (const a of server.arrivals) {
      const key = a.batchIndex % 2 === 0 ? 'wk_a_123' : 'wk_b_456';
      expect(a.auth).toBe(`Basic ${Buffer.from(`${key}:`).toString('base64')}`);
      expect(a.path).toBe('/v1/batch');
      expect(a.contentType).toBe('application/json');
      expect(Number.isNaN(Date.parse(a.body.sentAt))).toBe(false);
      expect(a.body.batch).toHaveLength(3);
    }
  });

  it('retries a 503 and a dropped connection, then succeeds', async () => {
    const server = await startServer((a) => {
      if (a.batchIndex === 0 && a.attempt === 1) return { status: 503, body: '{"error":"kafka unavailable"}' };
      if (a.batchIndex === 1 && a.attempt === 1) return { status: 0, destroy: true };
      return { status: 200 };
    });
    const stats = await sendTraffic({ baseUrl: server.url, writeKeys: WRITE_KEYS, batches: makeBatches(3), retry: FAST_RETRY });
    expect(stats).toMatchObject({ events: 9, batches: 3, retries: 2 });
    expect(server.arrivals.filter((a) => a.batchIndex === 0).map((a) => a.attempt)).toEqual([1, 2]);
    expect(server.completed).toEqual(new Set([0, 1, 2]));
  });

  it('gives up after the configured attempts on persistent 5xx', async () => {
    const server = await startServer(() => ({ status: 502, body: 'bad gateway' }));
    const run = sendTraffic({
      baseUrl: server.url,
      writeKeys: WRITE_KEYS,
      batches: makeBatches(1),
      retry: { ...FAST_RETRY, attempts: 3 },
    });
    await expect(run).rejects.toThrow(/batch 0 \(tenant tenant-a\) failed after 3 attempts: HTTP 502.*bad gateway/);
    expect(server.arrivals).toHaveLength(3);
  });

  it('fails fast on a 4xx with the status and the server message, not the payload', async () => {
    const server = await startServer((a) =>
      a.batchIndex === 1
        ? { status: 400, body: '{"error":"invalid_batch","message":"batch[2].type is not allowed"}' }
        : { status: 200 },
    );
    const err: unknown = await sendTraffic({
      baseUrl: server.url,
      writeKeys: WRITE_KEYS,
      batches: makeBatches(10),
      concurrency: 1,
      retry: FAST_RETRY,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SendError);
    const e = err as SendError;
    expect(e.status).toBe(400);
    expect(e.batchIndex).toBe(1);
    expect(e.message).toMatch(/HTTP 400/);
    expect(e.message).toMatch(/invalid_batch: batch\[2\]\.type is not allowed/);
    expect(e.message).not.toMatch(/do-not-echo|b1-0/);
    expect(server.arrivals).toHaveLength(2);
  });

  it('refuses to start without a write key for every tenant', async () => {
    await expect(
      sendTraffic({ baseUrl: 'http://127.0.0.1:9', writeKeys: { 'tenant-a': 'k' }, batches: makeBatches(2) }),
    ).rejects.toThrow(/no write key for tenant\(s\): tenant-b/);
  });

  it('calls beforeBatch in order and, at a barrier, only after every earlier batch completed', async () => {
    let flipped = false;
    const flippedOnArrival = new Map<number, boolean>();
    // Later batches answer faster, so without the barrier batch 6+ would overtake 0-5.
    const server = await startServer((a) => {
      flippedOnArrival.set(a.batchIndex, flipped);
      return { status: 200, delayMs: Math.max(2, 40 - a.batchIndex * 3) };
    });
    const seen: number[] = [];
    let progressAtBarrier = -1;
    let completedAtBarrier = new Set<number>();
    let sent = 0;
    await sendTraffic({
      baseUrl: server.url,
      writeKeys: WRITE_KEYS,
      batches: makeBatches(12),
      concurrency: 4,
      barriers: [6],
      onProgress: (n) => {
        sent = n;
      },
      beforeBatch: async (i) => {
        seen.push(i);
        if (i !== 6) return;
        progressAtBarrier = sent;
        completedAtBarrier = new Set(server.completed);
        await new Promise((resolve) => setTimeout(resolve, 20));
        flipped = true;
      },
    });
    expect(seen).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(completedAtBarrier).toEqual(new Set([0, 1, 2, 3, 4, 5]));
    expect(progressAtBarrier).toBe(18);
    for (let i = 0; i < 12; i++) expect(flippedOnArrival.get(i), `batch ${i}`).toBe(i >= 6);
  });

  it('reports progress up to the total and counts per-event rejections from 2xx bodies', async () => {
    const server = await startServer((a) =>
      a.batchIndex === 2
        ? { status: 200, body: '{"accepted":2,"rejected":[{"messageId":"b2-1","error":"messageId too long"}]}' }
        : { status: 200 },
    );
    const calls: [number, number][] = [];
    const stats = await sendTraffic({
      baseUrl: server.url,
      writeKeys: WRITE_KEYS,
      batches: makeBatches(7),
      onProgress: (n, total) => calls.push([n, total]),
    });
    expect(calls).toHaveLength(7);
    expect(calls.at(-1)).toEqual([21, 21]);
    const counts = calls.map(([n]) => n);
    expect(counts).toEqual([...counts].sort((a, b) => a - b));
    expect(stats.rejected).toBe(1);
    expect(stats.rejectedSamples[0]).toMatch(/messageId too long/);
  });
});


describe('createProgressBar', () => {
  it('prints one plain line per 10% when the stream is not a terminal', () => {
    const out = new CaptureStream(false);
    const bar = createProgressBar(1_000, out);
    for (let sent = 0; sent <= 1_000; sent += 30) bar.update(sent);
    bar.update(1_000);
    bar.stop();
    const lines = out.text.trim().split('\n');
    expect(lines).toHaveLength(10);
    expect(lines[0]).toBe('sent 120/1000 events (10%)');
    expect(lines.at(-1)).toBe('sent 1000/1000 events (100%)');
  });

  it('draws a cli-progress bar on a terminal', () => {
    const out = new CaptureStream(true);
    const bar = createProgressBar(50, out);
    bar.update(25);
    bar.update(50);
    bar.stop();
    bar.stop();
    expect(out.text).toMatch(/50\/50 events/);
  });
});
