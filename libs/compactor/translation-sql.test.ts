// The translation's statements run on a cluster too (compactor-target.ts clusterTarget): each has
// a shard form on `<table>_local`, and reads its ids and values from the per-node lookup tables.
import { describe, expect, it } from 'vitest';
import { toShardCompactorStatement } from '../clickhouse/cluster-ddl.js';
import { DELETE_CLEAR_USERS, DELETE_DEAD_LETTERS, OPTIMIZE_USERS_FINAL, TRANSLATE_EVENTS, TRANSLATE_SNAPSHOTS, leftoverQuery } from './translation-sql.js';

describe('translation statements', () => {
  it.each([
    { sql: TRANSLATE_EVENTS, table: 'events_local' },
    { sql: TRANSLATE_SNAPSHOTS, table: 'identify_snapshots_local' },
    { sql: DELETE_CLEAR_USERS, table: 'users_local' },
    { sql: OPTIMIZE_USERS_FINAL, table: 'users_local' },
    { sql: DELETE_DEAD_LETTERS, table: 'dead_letters_local' },
  ])('$table: a shard form, lookup tables kept as they are (one per node)', ({ sql, table }) => {
    const shard = toShardCompactorStatement(sql);
    expect(shard).toContain(`default.${table}`);
    expect(shard).not.toMatch(/overwrite_translation_\w+_local/);
  });

  it('the checks read the FROM they are given (every physical copy)', () => {
    for (const q of Object.values(leftoverQuery)) expect(q("clusterAllReplicas('c', default.x_local)")).toContain("FROM clusterAllReplicas('c', default.x_local) WHERE");
  });
});
