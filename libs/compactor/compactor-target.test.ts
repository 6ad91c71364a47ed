// Which statement goes to which node: the targets against recording clients (the statements'
// texts are parsed by the real engine in test/packaging/clickhouse-cluster.integration.test.ts).
import { describe, expect, it } from 'vitest';
import type { ClickHouseClient } from '@clickhouse/client';
import { ClusterDdlError } from '../clickhouse/cluster-ddl.js';
import { DEAD_LETTERS_MUTATION, OPTIMIZE_USERS, userHistoryMutation } from './mutation-sql.js';

const USER_HISTORY_MUTATION = userHistoryMutation('identify_snapshots');
import { clusterTarget, singleNodeTarget } from './compactor-target.js';

/** A client that records the statements it gets; a KILL MUTATION answers `killed` rows. */
function recorder(name: string, log: string[], killed = 0): ClickHouseClient {
  return {
    command: async ({ query }: { query: string }) => {
      log.push(`${name}: ${query}`);
      return { query_id: 'q' };
    },
    query: async ({ query }: { query: string }) => {
      log.push(`${name}: ${query}`);
      return { json: async () => Array.from({ length: /^KILL MUTATION/.test(query) ? killed : 0 }, () => ({})) };
    },
  } as unknown as ClickHouseClient;
}

describe('singleNodeTarget', () => {
  it('runs every statement as written, on its one node, reading the tables themselves', async () => {
    const log: string[] = [];
    const client = recorder('one', log, 2);
    const t = singleNodeTarget(client);
    expect(t.nodes).toEqual([client]);
    await t.alter(USER_HISTORY_MUTATION);
    expect(log).toEqual([`one: ${USER_HISTORY_MUTATION}`]);
    expect(await t.killUnfinished()).toBe(2);
    expect(log[1]).toBe(
      "one: KILL MUTATION WHERE database = 'default' AND table IN ('events', 'identify_snapshots', 'users', 'accounts', 'dead_letters', 'replaced_ids') AND is_done = 0 AND position(command, 'overwrite_') > 0 SYNC",
    );
    expect(t.everyCopy('events')).toBe('default.events');
    expect([t.parts, t.partsTable('users'), t.clockMarginMs]).toEqual(['system.parts', 'users', 0]);
  });
});

describe('clusterTarget (2 shards × 2 replicas)', () => {
  const make = (log: string[], killed = 0) => {
    const nodes = [
      { client: recorder('s1r1', log, killed), shard: 1 },
      { client: recorder('s1r2', log, killed), shard: 1 },
      { client: recorder('s2r1', log, killed), shard: 2 },
      { client: recorder('s2r2', log, killed), shard: 2 },
    ];
    return { nodes, t: clusterTarget({ nodes, cluster: 'tracklane' }) };
  };

  it('fills the lookup tables on every replica of every shard', () => {
    const { nodes, t } = make([]);
    expect(t.nodes).toEqual(nodes.map((n) => n.client));
  });

  it('runs a mutation of the local table on one replica per shard, not ON CLUSTER, waiting for the shard', async () => {
    const log: string[] = [];
    await make(log).t.alter(DEAD_LETTERS_MUTATION);
    expect(log).toHaveLength(2);
    expect(log.map((l) => l.split(':')[0]).sort()).toEqual(['s1r1', 's2r1']);
    for (const l of log) {
      expect(l).toMatch(/^s\dr1: ALTER TABLE default\.dead_letters_local DELETE WHERE .* SETTINGS mutations_sync = 2, allow_nondeterministic_mutations = 1$/);
      expect(l).not.toContain('ON CLUSTER');
    }
  });

  it('syncs the merging replica before OPTIMIZE FINAL, so it has the rows inserted through another replica', async () => {
    const log: string[] = [];
    await make(log).t.alter(OPTIMIZE_USERS);
    for (const shard of ['s1r1', 's2r1']) {
      const mine = log.filter((l) => l.startsWith(`${shard}:`));
      expect(mine).toEqual([`${shard}: SYSTEM SYNC REPLICA default.users_local`, `${shard}: OPTIMIZE TABLE default.users_local FINAL SETTINGS alter_sync = 2`]);
    }
    expect(log).toHaveLength(4);
  });

  it('stops unfinished compactor mutations of the local tables on every shard', async () => {
    const log: string[] = [];
    expect(await make(log, 1).t.killUnfinished()).toBe(2);
    expect(log.map((l) => l.split(':')[0]).sort()).toEqual(['s1r1', 's2r1']);
    expect(log[0]).toContain("table IN ('events_local', 'identify_snapshots_local', 'users_local', 'accounts_local', 'dead_letters_local', 'replaced_ids_local')");
  });

  it('verifies every replica\'s copy and waits for old parts on every replica, allowing for clock skew', () => {
    const { t } = make([]);
    expect(t.everyCopy('events')).toBe("clusterAllReplicas('tracklane', default.events_local)");
    expect([t.parts, t.partsTable('accounts')]).toEqual(["clusterAllReplicas('tracklane', system.parts)", 'accounts_local']);
    expect(t.clockMarginMs).toBeGreaterThan(0);
  });

  it('refuses no nodes, and a cluster name the queries cannot carry, when it is made', () => {
    expect(() => clusterTarget({ nodes: [], cluster: 'tracklane' })).toThrow(/needs the clients of its nodes/);
    expect(() => clusterTarget({ nodes: [{ client: recorder('x', []), shard: 1 }], cluster: "x') --" })).toThrow(ClusterDdlError);
  });
});
