import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../libs/config/env.js';
import { subjectHasher } from '../../libs/privacy/subject-hash.js';
import { clickhouseSettings, fleetSubjectHash } from './fleet-config.js';

describe('fleetSubjectHash', () => {
  it('hashes with TRACKLANE_ID_HASH_KEY, like every other service given the same key', () => {
    const key = randomBytes(32);
    const hash = fleetSubjectHash({ TRACKLANE_ID_HASH_KEY: `base64:${key.toString('base64')}` }, 'sink');
    expect(hash('acme', 'u1')).toBe(subjectHasher(key)('acme', 'u1'));
  });

  it('refuses to start without the key, or with an unusable one, naming the service and never the value', () => {
    expect(() => fleetSubjectHash({ TRACKLANE_ID_HASH_KEY: undefined }, 'sink')).toThrow(ConfigError);
    expect(() => fleetSubjectHash({ TRACKLANE_ID_HASH_KEY: undefined }, 'sink')).toThrow(/^TRACKLANE_ID_HASH_KEY is required by the sink/);
    expect(() => fleetSubjectHash({ TRACKLANE_ID_HASH_KEY: 'too-short-secret' }, 'compactor')).toThrow(ConfigError);
    expect(() => fleetSubjectHash({ TRACKLANE_ID_HASH_KEY: 'too-short-secret' }, 'compactor')).not.toThrow(/too-short-secret/);
  });
});

describe('clickhouseSettings', () => {
  it('asks synchronous Distributed inserts on a cluster only', () => {
    expect(clickhouseSettings({ CLICKHOUSE_CLUSTER: 'tracklane' })).toEqual({ insert_distributed_sync: 1 });
    expect(clickhouseSettings({ CLICKHOUSE_CLUSTER: undefined })).toBeUndefined();
  });
});
