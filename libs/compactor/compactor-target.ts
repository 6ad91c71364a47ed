// Where the compactor's statements run: one ClickHouse server (embedded chDB or a single node),
// or a cluster (CLICKHOUSE_CLUSTER, libs/clickhouse/cluster-ddl.ts).
//
// On a cluster (k8s/README.md, "ClickHouse cluster mode"):
// - reads and inserts go through the compactor's own client and the Distributed tables, as on
//   one node (same names);
// - the per-batch lookup tables (Join/Set) are per node: every node gets the batch through its
//   own connection before a mutation runs, and is checked to hold it (system.tables) — whichever
//   replica executes a mutation reads the same keys and values;
// - a mutation or OPTIMIZE of `<table>_local` runs on one replica of each shard (all shards at
//   once) and waits for every replica of it (mutations_sync / alter_sync = 2); an OPTIMIZE first
//   syncs that replica, so it merges the rows the round inserted through another one;
// - verification reads every replica's physical copy (clusterAllReplicas), not one per shard.
import type { ClickHouseClient } from '@clickhouse/client';
import { ClusterDdlError, clusterSystemTable, localTable, toShardCompactorStatement } from '../clickhouse/cluster-ddl.js';

/** the tables the compactor mutates or merges */
export const COMPACTED_TABLES = ['events', 'identify_snapshots', 'users', 'accounts', 'dead_letters', 'replaced_ids'] as const;
export type CompactedTable = (typeof COMPACTED_TABLES)[number];

export interface CompactorTarget {
  /** every node that may execute a mutation: each holds its own copy of the lookup tables */
  readonly nodes: readonly ClickHouseClient[];
  /** runs a mutation or OPTIMIZE of a compacted table (single-node text) and waits for every replica */
  alter(sql: string): Promise<void>;
  /**
   * Stops the compactor's mutations still running (a statement that failed or timed out on the
   * client may go on on the server): run before the lookup tables are refilled or emptied,
   * which such a mutation would otherwise read. Returns how many were stopped.
   */
  killUnfinished(): Promise<number>;
  /** FROM clause reading every physical copy of a table (`events` → every replica's rows) */
  everyCopy(table: string): string;
  /** FROM clause of system.parts covering every node, and a table's name in it */
  readonly parts: string;
  partsTable(table: string): string;
  /** added to this process's clock before it is compared with the servers' part times */
  readonly clockMarginMs: number;
}

// NOTE: every compactor mutation names a lookup table (overwrite_join, overwrite_keys, …);
// nothing else does, so only the compactor's own are stopped.
const killQuery = (tables: readonly string[]): string =>
  `KILL MUTATION WHERE database = 'default' AND table IN (${tables.map((t) => `'${t}'`).join(', ')}) ` +
  `AND is_done = 0 AND position(command, 'overwrite_') > 0 SYNC`;

async function kill(client: ClickHouseClient, tables: readonly string[]): Promise<number> {
  const rs = await client.query({ query: killQuery(tables), format: 'JSONEachRow' });
  return (await rs.json()).length;
}

/** The compactor's own client is the only node. */
export function singleNodeTarget(client: ClickHouseClient): CompactorTarget {
  return {
    nodes: [client],
    alter: async (sql) => {
      await client.command({ query: sql });
    },
    killUnfinished: () => kill(client, COMPACTED_TABLES),
    everyCopy: (table) => `default.${table}`,
    parts: 'system.parts',
    partsTable: (table) => table,
    clockMarginMs: 0,
  };
}

export interface ClusterNode {
  client: ClickHouseClient;
  /** shard_num of system.clusters */
  shard: number;
}

export interface ClusterTargetOptions {
  /** every replica of every shard */
  nodes: readonly ClusterNode[];
  cluster: string;
  /** clock skew allowed between this process and the nodes (default 5 s) */
  clockMarginMs?: number;
}

export function clusterTarget(opts: ClusterTargetOptions): CompactorTarget {
  if (opts.nodes.length === 0) throw new Error('a cluster target needs the clients of its nodes');
  // fails now, not in the middle of a round, on a cluster name the queries cannot carry
  if (!/^[A-Za-z0-9_.-]+$/.test(opts.cluster)) throw new ClusterDdlError(`unsupported cluster name ${JSON.stringify(opts.cluster)}`);
  const parts = clusterSystemTable('parts', { cluster: opts.cluster });
  // one replica of each shard executes; mutations_sync / alter_sync = 2 wait for the others
  const executors: ClickHouseClient[] = [];
  const seen = new Set<number>();
  for (const n of opts.nodes) if (!seen.has(n.shard) && seen.add(n.shard)) executors.push(n.client);
  const localTables = COMPACTED_TABLES.map(localTable);
  return {
    nodes: opts.nodes.map((n) => n.client),
    alter: async (sql) => {
      const statement = toShardCompactorStatement(sql);
      const optimized = /^OPTIMIZE\s+TABLE\s+(\S+)/i.exec(statement)?.[1];
      await Promise.all(
        executors.map(async (client) => {
          // TRICKY: the round's new rows were inserted through one replica of the shard; the
          // merging replica must have them first, or FINAL keeps the superseded version
          if (optimized) await client.command({ query: `SYSTEM SYNC REPLICA ${optimized}` });
          await client.command({ query: statement });
        }),
      );
    },
    killUnfinished: async () => (await Promise.all(executors.map((c) => kill(c, localTables)))).reduce((a, b) => a + b, 0),
    everyCopy: (table) => `clusterAllReplicas('${opts.cluster}', default.${localTable(table)})`,
    parts,
    partsTable: localTable,
    clockMarginMs: opts.clockMarginMs ?? 5_000,
  };
}
