import { describe, expect, it } from 'vitest';
import { ConfigError } from '../config/env.js';
import { nodeName, nodeUrls, type ClusterHost } from './cluster-nodes.js';

const hosts: ClusterHost[] = [
  { shard: 1, replica: 1, host: 'ch-0-0.clickhouse' },
  { shard: 1, replica: 2, host: 'ch-0-1.clickhouse' },
  { shard: 2, replica: 1, host: 'ch-1-0.clickhouse' },
  { shard: 2, replica: 2, host: 'ch-1-1.clickhouse' },
];
const cluster = 'tracklane';

describe('nodeUrls', () => {
  it('reaches every replica of every shard with CLICKHOUSE_URL\'s scheme and port', () => {
    expect(nodeUrls(hosts, { cluster, baseUrl: 'https://clickhouse.svc:8443' })).toEqual([
      'https://ch-0-0.clickhouse:8443',
      'https://ch-0-1.clickhouse:8443',
      'https://ch-1-0.clickhouse:8443',
      'https://ch-1-1.clickhouse:8443',
    ]);
  });

  it('uses the default HTTP port of the scheme, or CLICKHOUSE_NODE_HTTP_PORT', () => {
    expect(nodeUrls(hosts.slice(0, 1), { cluster, baseUrl: 'http://clickhouse.svc' })).toEqual(['http://ch-0-0.clickhouse:8123']);
    expect(nodeUrls(hosts.slice(0, 1), { cluster, baseUrl: 'https://clickhouse.svc' })).toEqual(['https://ch-0-0.clickhouse:8443']);
    expect(nodeUrls(hosts.slice(0, 1), { cluster, baseUrl: 'http://lb.svc:80', httpPort: 8124 })).toEqual(['http://ch-0-0.clickhouse:8124']);
    expect(nodeUrls([{ shard: 1, replica: 1, host: '::1' }], { cluster, baseUrl: 'http://lb:8123' })).toEqual(['http://[::1]:8123']);
  });

  it('takes an explicit list when it names as many nodes as the cluster has', () => {
    const explicitUrls = hosts.map((_, i) => `http://10.0.0.${i + 1}:8123`);
    expect(nodeUrls(hosts, { cluster, baseUrl: 'http://lb:8123', explicitUrls })).toEqual(explicitUrls);
    expect(() => nodeUrls(hosts, { cluster, baseUrl: 'http://lb:8123', explicitUrls: explicitUrls.slice(1) })).toThrow(
      /^CLICKHOUSE_NODE_URLS names 3 node\(s\) but cluster "tracklane" has 4 \(ch-0-0.clickhouse, ch-0-1.clickhouse, ch-1-0.clickhouse, ch-1-1.clickhouse\)/,
    );
    expect(() => nodeUrls(hosts.slice(0, 1), { cluster, baseUrl: 'http://lb:8123', explicitUrls: ['tcp://user:pw@x:9000'] })).toThrow(ConfigError);
    expect(() => nodeUrls(hosts.slice(0, 1), { cluster, baseUrl: 'http://lb:8123', explicitUrls: ['tcp://user:pw@x:9000'] })).not.toThrow(/pw/);
  });

  it.each([
    { baseUrl: 'https://tracklane:s3cret@clickhouse.svc:8443', want: /^CLICKHOUSE_URL must not carry credentials: set CLICKHOUSE_USER and CLICKHOUSE_PASSWORD$/ },
    { baseUrl: 'http://lb:8123', explicitUrls: hosts.map((_, i) => (i === 2 ? 'http://u:s3cret@10.0.0.3:8123' : `http://10.0.0.${i + 1}:8123`)), want: /^CLICKHOUSE_NODE_URLS must not carry credentials/ },
  ])('refuses credentials in a URL rather than drop them: $want', ({ want, ...urls }) => {
    expect(() => nodeUrls(hosts, { cluster, ...urls })).toThrow(ConfigError);
    expect(() => nodeUrls(hosts, { cluster, ...urls })).toThrow(want);
    expect(() => nodeUrls(hosts, { cluster, ...urls })).not.toThrow(/s3cret/);
  });

  it('refuses a cluster the server does not define', () => {
    expect(() => nodeUrls([], { cluster: 'nope', baseUrl: 'http://lb:8123' })).toThrow(ConfigError);
    expect(() => nodeUrls([], { cluster: 'nope', baseUrl: 'http://lb:8123' })).toThrow(/CLICKHOUSE_CLUSTER is "nope" but the server at CLICKHOUSE_URL has no such cluster/);
  });

  it('names a node by host and port only', () => {
    expect(nodeName('https://user:pw@ch-0-0.clickhouse:8443/path?x=1')).toBe('ch-0-0.clickhouse:8443');
  });
});
