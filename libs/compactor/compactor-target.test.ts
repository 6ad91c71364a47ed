import { describe, expect, it } from 'vitest';
import type { ClickHouseClient } from '@clickhouse/client';
import { ClusterDdlError } from '../clickhouse/cluster-ddl.js';
import { DEAD_LETTERS_MUTATION, OPTIMIZE_USERS, USER_HISTORY_MUTATION } from './compactor.js';
import { clusterTarget, singleNodeTarget } from './compactor-target.js';

// the targets only hold the clients: these tests never call them
const node = (name: string) => ({ name }) as unknown as ClickHouseClient;

describe('singleNodeTarget', () => {
  it('runs every statement as written, on its one node, reading the tables themselves', () => {
    const client = node('one');
    const t = singleNodeTarget(client);
    expect(t.nodes).toEqual([client]);
    expect(t.statement(USER_HISTORY_MUTATION)).toBe(USER_HISTORY_MUTATION);
    expect(t.statementSettings).toEqual({});
    expect(t.everyCopy('events')).toBe('default.events');
    expect([t.parts, t.partsTable('users')]).toEqual(['system.parts', 'users']);
  });
});

describe('clusterTarget', () => {
  const nodes = [node('a'), node('b'), node('c')];
  const t = clusterTarget({ nodes, cluster: 'tracklane', ddlTimeoutSeconds: 1800 });

  it('fills the lookup tables on every node it was given', () => {
    expect(t.nodes).toEqual(nodes);
  });

  it('mutates and merges the local replicas ON CLUSTER, waiting for every node as long as a request may take', () => {
    expect(t.statement(USER_HISTORY_MUTATION)).toMatch(/^ALTER TABLE default\.events_local ON CLUSTER 'tracklane' UPDATE traits = .* SETTINGS mutations_sync = 2, allow_nondeterministic_mutations = 1$/);
    expect(t.statement(DEAD_LETTERS_MUTATION)).toMatch(/^ALTER TABLE default\.dead_letters_local ON CLUSTER 'tracklane' DELETE WHERE /);
    expect(t.statement(OPTIMIZE_USERS)).toBe("OPTIMIZE TABLE default.users_local ON CLUSTER 'tracklane' FINAL SETTINGS alter_sync = 2");
    expect(t.statementSettings).toEqual({ distributed_ddl_task_timeout: 1800 });
  });

  it('verifies every replica\'s copy, and waits for old parts on every replica', () => {
    expect(t.everyCopy('events')).toBe("clusterAllReplicas('tracklane', default.events_local)");
    expect(t.everyCopy('users')).toBe("clusterAllReplicas('tracklane', default.users_local)");
    expect([t.parts, t.partsTable('accounts')]).toEqual(["clusterAllReplicas('tracklane', system.parts)", 'accounts_local']);
  });

  it('refuses no nodes, and a cluster name the statements cannot carry, when it is made', () => {
    expect(() => clusterTarget({ nodes: [], cluster: 'tracklane', ddlTimeoutSeconds: 60 })).toThrow(/needs the clients of its nodes/);
    expect(() => clusterTarget({ nodes, cluster: "x') --", ddlTimeoutSeconds: 60 })).toThrow(ClusterDdlError);
  });
});
