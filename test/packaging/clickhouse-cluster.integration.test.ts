// Acceptance check 4 against the real ClickHouse engine (chDB; no cluster, no Keeper here):
// every generated cluster statement parses (formatQuery), and every sharding key is a UInt64
// built from columns of its table — of its sorting key, so the versions of one
// ReplacingMergeTree key meet on one shard and FINAL still collapses them.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as mutationSql from '../../libs/compactor/mutation-sql.js';
import { EMPTY_LEGACY_MAPS_MUTATION } from '../../libs/compactor/legacy-snapshots.js';
import { clusterTarget } from '../../libs/compactor/compactor-target.js';
import { clusterSystemTable, SHARDING_KEYS, toShardCompactorStatement } from '../../libs/clickhouse/cluster-ddl.js';
import { DEFAULT_MIGRATIONS_DIR, migrationStatements } from '../../libs/clickhouse/migrate.js';
import { useTestClickHouse } from '../support/chdb.js';

const ch = useTestClickHouse();
const opts = { cluster: 'tracklane' };

const migrationDdl = readdirSync(DEFAULT_MIGRATIONS_DIR)
  .filter((f) => f.endsWith('.sql'))
  .sort()
  .flatMap((f) => migrationStatements(readFileSync(join(DEFAULT_MIGRATIONS_DIR, f), 'utf8'), opts));
// the compactor's cluster target (its nodes are never called here)
const target = clusterTarget({ nodes: [{ client: {} as never, shard: 1 }], cluster: opts.cluster });
const compactorStatements = [
  ...[
    ...mutationSql.HISTORY_TABLES.flatMap((t) => [
      mutationSql.userHistoryMutation(t),
      mutationSql.accountHistoryMutation(t),
      mutationSql.deleteEventsMutation(t),
      mutationSql.suppressEventsMutation(t),
    ]),
    mutationSql.DEAD_LETTERS_MUTATION,
    EMPTY_LEGACY_MAPS_MUTATION,
    mutationSql.ERASE_USERS_MUTATION,
    mutationSql.ERASE_ACCOUNTS_MUTATION,
  ].map(toShardCompactorStatement),
  ...[mutationSql.OPTIMIZE_USERS, mutationSql.OPTIMIZE_ACCOUNTS].map(toShardCompactorStatement),
  `SELECT count() FROM ${clusterSystemTable('parts', opts)} WHERE active = 0`,
  // verification reads every replica's copy
  ...['events', 'identify_snapshots', 'users', 'accounts', 'dead_letters'].map((t) => `SELECT count() FROM ${target.everyCopy(t)} WHERE tenant_id = 't'`),
];

async function one<T>(query: string, query_params?: Record<string, unknown>): Promise<T> {
  const rs = await ch().client.query({ query, format: 'JSONEachRow', ...(query_params ? { query_params } : {}) });
  const [row] = await rs.json<T>();
  return row as T;
}

describe('cluster statements parse in ClickHouse', () => {
  it.each([...migrationDdl, ...compactorStatements].map((s) => [s.slice(0, 70).replace(/\s+/g, ' '), s]))('%s…', async (_head, sql) => {
    const { f } = await one<{ f: string }>('SELECT formatQuery({sql:String}) AS f', { sql });
    expect(f).toMatch(/ON CLUSTER tracklane|clusterAllReplicas\('tracklane'|^(ALTER|OPTIMIZE) TABLE default\.\w+_local\s/);
  });
});

describe('sharding keys', () => {
  it.each(Object.entries(SHARDING_KEYS))('%s: %s is a UInt64 of the table\'s columns', async (table, key) => {
    const { type } = await one<{ type: string }>(`SELECT toTypeName(any(${key})) AS type FROM default.${table}`);
    expect(type).toBe('UInt64');
  });

  it.each(Object.entries(SHARDING_KEYS).filter(([t]) => t !== 'events' && t !== 'identify_snapshots'))('%s: the key uses only sorting-key columns', async (table, key) => {
    const { sorting_key } = await one<{ sorting_key: string }>('SELECT sorting_key FROM system.tables WHERE database = currentDatabase() AND name = {t:String}', { t: table });
    const sortCols = new Set(sorting_key.replace(/[()]/g, '').split(',').map((c) => c.trim()));
    const { cols } = await one<{ cols: string[] }>(`SELECT arrayDistinct(extractAll({key:String}, '\\\\b(\\\\w+)\\\\b')) AS cols`, { key });
    const used = cols.filter((c) => !['cityHash64', 'coalesce'].includes(c));
    for (const c of used) expect([...sortCols], `${table}: ${c}`).toContain(c);
  });

  it('events: sharded by user (identified events next to their users row), documented exception to the rule above', async () => {
    expect(SHARDING_KEYS.events).toBe('cityHash64(tenant_id, coalesce(user_id, anonymous_id, event_id))');
    // an identified event hashes exactly like its users row
    const { a, b } = await one<{ a: string; b: string }>(
      "SELECT toString(cityHash64('t1', coalesce(CAST('u1' AS Nullable(String)), CAST(NULL AS Nullable(String)), 'e1'))) AS a, toString(cityHash64('t1', 'u1')) AS b",
    );
    expect(a).toBe(b);
  });

  it('identify_snapshots: sharded exactly as events, so a snapshot sits on its event\'s shard', () => {
    expect(SHARDING_KEYS.identify_snapshots).toBe(SHARDING_KEYS.events);
  });
});
