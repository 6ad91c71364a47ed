import { describe, expect, it } from 'vitest';
import { createLogger } from '../core/logger.js';
import { createClickHouse, toNumber } from './client.js';

describe('toNumber', () => {
  it.each([
    { x: 5, want: 5 },
    { x: '18446744073709', want: 18446744073709 },
    { x: 7n, want: 7 },
    { x: '0', want: 0 },
  ])('$x → $want', ({ x, want }) => {
    expect(toNumber(x)).toBe(want);
  });
  it.each([null, undefined, '', 'abc', {}])('rejects %j', (x) => {
    expect(() => toNumber(x)).toThrow(TypeError);
  });
});

describe('createClickHouse', () => {
  it('refuses a non-http url', () => {
    expect(() => createClickHouse({ url: 'tcp://localhost:9000' })).toThrow(/http/);
  });
  it('builds an HTTP client without touching chDB', async () => {
    const logger = createLogger({ level: 'silent' });
    const c = createClickHouse({ url: 'http://127.0.0.1:1', requestTimeoutMs: 500, logger });
    const ping = await c.ping();
    expect(ping.success).toBe(false);
    await c.close();
  });
  it('refuses a non-default database on chDB', () => {
    expect(() => createClickHouse({ dataDir: '/tmp/never-opened', database: 'analytics' })).toThrow(/default/);
  });
});
