// The nodes of a ClickHouse cluster the compactor must reach one by one (compactor-target.ts:
// each holds its own copy of the per-batch lookup tables): every replica of every shard, as
// the server's remote_servers (system.clusters) names them.
import type { ClickHouseClient } from '@clickhouse/client';
import { ConfigError } from '../config/env.js';
import { toNumber } from '../clickhouse/client.js';

export interface ClusterHost {
  shard: number;
  replica: number;
  host: string;
}

/** Every replica of every shard of `cluster`, as the node behind `client` knows the cluster. */
export async function clusterHosts(client: ClickHouseClient, cluster: string): Promise<ClusterHost[]> {
  const rs = await client.query({
    query: `SELECT shard_num, replica_num, host_name FROM system.clusters WHERE cluster = {cluster:String} ORDER BY shard_num, replica_num`,
    query_params: { cluster },
    format: 'JSONEachRow',
  });
  return (await rs.json<{ shard_num: unknown; replica_num: unknown; host_name: string }>()).map((r) => ({
    shard: toNumber(r.shard_num),
    replica: toNumber(r.replica_num),
    host: r.host_name,
  }));
}

export interface NodeUrlOptions {
  cluster: string;
  /** CLICKHOUSE_URL: its scheme (and port, unless httpPort is given) reach every node */
  baseUrl: string;
  /** CLICKHOUSE_NODE_HTTP_PORT: the nodes' HTTP port when it differs from CLICKHOUSE_URL's */
  httpPort?: number;
  /**
   * CLICKHOUSE_NODE_URLS: every node's URL, when the names in remote_servers do not resolve
   * here — in system.clusters order (by shard, then replica): the n-th URL is the n-th host
   */
  explicitUrls?: readonly string[];
}

/** URLs that carry a user or password: they would log in apart from CLICKHOUSE_USER/PASSWORD. */
const hasCredentials = (u: string): boolean => URL.canParse(u) && (new URL(u).username !== '' || new URL(u).password !== '');

/**
 * The HTTP URL of every node: the explicit list (one per replica of the cluster, checked), or
 * each host of system.clusters with CLICKHOUSE_URL's scheme and port. Errors name hosts and
 * counts, never credentials.
 * NOTE: credentials travel as CLICKHOUSE_USER/PASSWORD to every node alike; in CLICKHOUSE_URL
 * (refused by clickhouseConnectionProblems too) they would not reach the nodes built from it, and
 * in one CLICKHOUSE_NODE_URLS entry they would reach that node only: both are refused.
 */
export function nodeUrls(hosts: readonly ClusterHost[], opts: NodeUrlOptions): string[] {
  if (hasCredentials(opts.baseUrl)) throw new ConfigError('CLICKHOUSE_URL must not carry credentials: set CLICKHOUSE_USER and CLICKHOUSE_PASSWORD');
  if (hosts.length === 0) {
    throw new ConfigError(
      `CLICKHOUSE_CLUSTER is ${JSON.stringify(opts.cluster)} but the server at CLICKHOUSE_URL has no such cluster in system.clusters (remote_servers)`,
    );
  }
  if (opts.explicitUrls && opts.explicitUrls.length > 0) {
    if (opts.explicitUrls.length !== hosts.length) {
      throw new ConfigError(
        `CLICKHOUSE_NODE_URLS names ${opts.explicitUrls.length} node(s) but cluster ${JSON.stringify(opts.cluster)} has ${hosts.length} ` +
          `(${hosts.map((h) => h.host).join(', ')}): the compactor must reach every replica of every shard`,
      );
    }
    for (const u of opts.explicitUrls) {
      if (!/^https?:\/\//i.test(u)) throw new ConfigError(`CLICKHOUSE_NODE_URLS: every entry must be http(s)://host:port (one is not)`);
      if (hasCredentials(u)) throw new ConfigError('CLICKHOUSE_NODE_URLS must not carry credentials: set CLICKHOUSE_USER and CLICKHOUSE_PASSWORD');
    }
    return [...opts.explicitUrls];
  }
  const base = new URL(opts.baseUrl);
  const port = opts.httpPort ?? (base.port ? Number(base.port) : base.protocol === 'https:' ? 8443 : 8123);
  return hosts.map((h) => `${base.protocol}//${h.host.includes(':') ? `[${h.host}]` : h.host}:${port}`);
}

/** `host:port` of a node URL, for logs and errors (never its credentials or path). */
export const nodeName = (url: string): string => new URL(url).host;
