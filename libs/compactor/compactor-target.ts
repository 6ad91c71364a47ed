// Where the compactor's statements run: one ClickHouse server (embedded chDB or a single node),
// or a cluster (CLICKHOUSE_CLUSTER, libs/clickhouse/cluster-ddl.ts).
//
// On a cluster (k8s/README.md, "ClickHouse cluster mode"):
// - reads and inserts go through the compactor's own client and the Distributed tables, as on
//   one node (same names);
// - mutations and OPTIMIZE go ON CLUSTER to the `<table>_local` replicas, and wait for every
//   replica (mutations_sync / alter_sync = 2, distributed_ddl_task_timeout);
// - the per-batch lookup tables (Join/Set) are per node: every node gets the batch through its
//   own connection before a mutation runs, and is checked to hold it (system.tables) — whichever
//   replica executes a mutation reads the same keys and values;
// - verification reads every replica's physical copy (clusterAllReplicas), not one per shard.
import type { ClickHouseClient } from '@clickhouse/client';
import { clusterSystemTable, localTable, toClusterCompactorStatement } from '../clickhouse/cluster-ddl.js';

export interface CompactorTarget {
  /** every node that may execute a mutation: each holds its own copy of the lookup tables */
  readonly nodes: readonly ClickHouseClient[];
  /** a mutation or OPTIMIZE of one of the compacted tables, in the form this target runs */
  statement(sql: string): string;
  /** settings of those statements (a cluster's DDL queue timeout) */
  readonly statementSettings: Record<string, string | number>;
  /** FROM clause reading every physical copy of a table (`events` → every replica's rows) */
  everyCopy(table: string): string;
  /** FROM clause of system.parts covering every node, and a table's name in it */
  readonly parts: string;
  partsTable(table: string): string;
}

/** The compactor's own client is the only node. */
export function singleNodeTarget(client: ClickHouseClient): CompactorTarget {
  return {
    nodes: [client],
    statement: (sql) => sql,
    statementSettings: {},
    everyCopy: (table) => `default.${table}`,
    parts: 'system.parts',
    partsTable: (table) => table,
  };
}

export interface ClusterTargetOptions {
  /** one client per node of the cluster, every replica of every shard */
  nodes: readonly ClickHouseClient[];
  cluster: string;
  /** how long an ON CLUSTER statement may wait for every node (seconds) */
  ddlTimeoutSeconds: number;
}

export function clusterTarget(opts: ClusterTargetOptions): CompactorTarget {
  if (opts.nodes.length === 0) throw new Error('a cluster target needs the clients of its nodes');
  const ddl = { cluster: opts.cluster };
  // fails now, not in the middle of a round, on a cluster name the statements cannot carry
  toClusterCompactorStatement('OPTIMIZE TABLE default.users FINAL', ddl);
  return {
    nodes: opts.nodes,
    statement: (sql) => toClusterCompactorStatement(sql, ddl),
    // NOTE: the DDL queue answers after this long even if a node is still working; the
    // statement then fails (distributed_ddl_output_mode 'throw') and the round is retried.
    statementSettings: { distributed_ddl_task_timeout: opts.ddlTimeoutSeconds },
    everyCopy: (table) => `clusterAllReplicas('${opts.cluster}', default.${localTable(table)})`,
    parts: clusterSystemTable('parts', ddl),
    partsTable: localTable,
  };
}
