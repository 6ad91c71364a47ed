import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { collectorConfigSchema } from '../../services/collector/collector-service.js';
import { embeddedConfigSchema } from '../../services/embedded/config.js';
import { collectorLimitsFrom, collectorLimitsShape, MAX_FUTURE_MS, parseTrustProxy, withCollectorLimitsChecked } from './collector-limits.js';
import { parseEnv, parseList } from './env.js';

const FLEET_ENV = { KAFKA_BROKERS: '127.0.0.1:9092', SCHEMA_REGISTRY_URL: 'http://127.0.0.1:8081', REDIS_URL: 'redis://127.0.0.1:6379', TRACKLANE_ADMIN_TOKEN: 'a'.repeat(20) };

describe('collector limits', () => {
  const limits = withCollectorLimitsChecked(z.object(collectorLimitsShape));
  it('defaults, and the intake options they give', () => {
    expect(collectorLimitsFrom(limits.parse({}))).toEqual({
      maxRequestBytes: 500 * 1024,
      trustProxy: false,
      limits: { maxEventBytes: 32 * 1024, maxBatchEvents: 500, maxFutureMs: MAX_FUTURE_MS },
    });
  });
  it.each([
    ['the embedded runner', embeddedConfigSchema, {}],
    ['the fleet collector', collectorConfigSchema, FLEET_ENV],
  ] as const)('%s refuses an event limit above the request limit, naming MAX_EVENT_BYTES', (_name, schema, base) => {
    expect(() => parseEnv(schema, { ...base, MAX_REQUEST_BYTES: '4096', MAX_EVENT_BYTES: '8192' })).toThrow(/MAX_EVENT_BYTES: MAX_EVENT_BYTES must not exceed MAX_REQUEST_BYTES/);
    expect(parseEnv(schema, { ...base, MAX_REQUEST_BYTES: '8192', MAX_EVENT_BYTES: '8192' }).MAX_EVENT_BYTES).toBe(8192);
  });
  it.each([
    ['true', true],
    ['FALSE', false],
    ['', false],
    [' 10.0.0.1 , 10.0.0.2,, ', ['10.0.0.1', '10.0.0.2']],
  ] as const)('TRUST_PROXY %j → %j', (v, want) => {
    expect(parseTrustProxy(v)).toEqual(want);
  });
  it('lists: trimmed items, empty ones dropped', () => {
    expect(parseList(' a.mmdb ,b.mmdb,, ')).toEqual(['a.mmdb', 'b.mmdb']);
    expect(parseList('')).toEqual([]);
  });
});
