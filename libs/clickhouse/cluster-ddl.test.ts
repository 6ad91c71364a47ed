import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  accountHistoryMutation,
  DEAD_LETTERS_MUTATION,
  deleteEventsMutation,
  HISTORY_TABLES,
  suppressEventsMutation,
  userHistoryMutation,
} from '../compactor/mutation-sql.js';
import {
  ClusterDdlError,
  clusterSystemTable,
  REPLICATED_EVERYWHERE,
  SHARDING_KEYS,
  toShardCompactorStatement,
  toClusterDdl,
} from './cluster-ddl.js';
import { DEFAULT_MIGRATIONS_DIR, migrationStatements, splitStatements } from './migrate.js';

const cluster = 'tracklane';
const files = readdirSync(DEFAULT_MIGRATIONS_DIR).filter((f) => f.endsWith('.sql')).sort();
const fileSql = (f: string) => readFileSync(join(DEFAULT_MIGRATIONS_DIR, f), 'utf8');
const singleNode = files.flatMap((f) => splitStatements(fileSql(f)));
const clusterStatements = files.flatMap((f) => migrationStatements(fileSql(f), { cluster }));

/** CREATE TABLE statements of the shipped migrations: name → engine name. */
const createdTables = new Map(
  singleNode.flatMap((s) => {
    const m = /CREATE TABLE IF NOT EXISTS (\w+)[\s\S]*?\bENGINE = (\w+)/.exec(s);
    return m ? [[m[1] as string, m[2] as string] as const] : [];
  }),
);
const views = singleNode.flatMap((s) => /CREATE OR REPLACE VIEW (\w+)/.exec(s)?.[1] ?? []);
const findCreate = (name: string) => clusterStatements.find((s) => new RegExp(`^CREATE TABLE IF NOT EXISTS ${name} ON CLUSTER 'tracklane' `).test(s));

describe('single-node DDL', () => {
  it.each(files)('%s: migrate() runs the file exactly as split, byte for byte', (f) => {
    expect(migrationStatements(fileSql(f))).toEqual(splitStatements(fileSql(f)));
    expect(migrationStatements(fileSql(f), { cluster: undefined })).toEqual(splitStatements(fileSql(f)));
    expect(migrationStatements(fileSql(f), { cluster: '' })).toEqual(splitStatements(fileSql(f)));
  });
});

describe('cluster DDL of every shipped table', () => {
  it('the migrations define tables and views to convert', () => {
    expect(createdTables.size).toBeGreaterThanOrEqual(13);
    expect(views).toContain('daily_active_users');
  });

  const mergeTrees = [...createdTables].filter(([, engine]) => engine.endsWith('MergeTree'));
  const lookups = [...createdTables].filter(([, engine]) => !engine.endsWith('MergeTree'));

  it.each(mergeTrees)('%s (%s): Replicated _local table ON CLUSTER + Distributed table sharded by its key', (table, engine) => {
    const key = SHARDING_KEYS[table];
    expect(key, `${table} needs a sharding key`).toBeDefined();
    const local = findCreate(`${table}_local`);
    expect(local).toBeDefined();
    expect(local).toContain(`ENGINE = Replicated${engine}('/clickhouse/tables/{shard}/{database}/{table}', '{replica}'`);
    expect(local).not.toMatch(/ENGINE = (?!Replicated)\w*MergeTree/);
    const dist = findCreate(table);
    expect(dist).toBe(
      `CREATE TABLE IF NOT EXISTS ${table} ON CLUSTER 'tracklane' AS default.${table}_local ` +
        `ENGINE = Distributed('tracklane', 'default', '${table}_local', ${key})`,
    );
    // the local table is created before the Distributed table that copies its structure
    expect(clusterStatements.indexOf(local as string)).toBeLessThan(clusterStatements.indexOf(dist as string));
  });

  it.each(lookups)('%s (%s): stays a per-node table, created ON CLUSTER, no Distributed table', (table, engine) => {
    const stmt = findCreate(table);
    expect(stmt).toBeDefined();
    expect(stmt).toContain(`ENGINE = ${engine}`);
    expect(findCreate(`${table}_local`)).toBeUndefined();
    expect(clusterStatements.some((s) => s.includes(`Distributed('tracklane', 'default', '${table}`))).toBe(false);
  });

  it.each(views)('view %s: ON CLUSTER, reading the Distributed tables', (view) => {
    const stmt = clusterStatements.find((s) => s.startsWith(`CREATE OR REPLACE VIEW ${view} ON CLUSTER 'tracklane' AS`));
    expect(stmt).toBeDefined();
    expect(stmt).not.toContain('_local');
  });

  it('keeps every engine parameter and clause of the single-node table', () => {
    expect(findCreate('events_local')).toMatch(
      /ReplicatedReplacingMergeTree\('[^']+', '\{replica\}', received_at\)\nPARTITION BY toYYYYMM\(client_ts\)\nORDER BY \(tenant_id, event_id\)\nSETTINGS old_parts_lifetime = 30$/,
    );
    expect(findCreate('users_local')).toContain("'{replica}', version, is_deleted)");
    expect(findCreate('dead_letters_local')).toContain('TTL toDateTime(received_at) + INTERVAL 30 DAY DELETE');
    expect(findCreate('events_local')).toContain('INDEX idx_user_id user_id TYPE bloom_filter(0.01) GRANULARITY 4');
    expect(findCreate('overwrite_join')).toContain('ENGINE = Join(ANY, LEFT, subject, tenant_id, id)');
  });

  it('every statement runs ON CLUSTER; nothing is left single-node', () => {
    for (const s of clusterStatements) expect(s).toMatch(/^(CREATE (TABLE IF NOT EXISTS|OR REPLACE VIEW)|ALTER TABLE) \w+ ON CLUSTER 'tracklane' /);
  });

  it('sharded tables: MODIFY SETTING goes to the local table, ADD COLUMN to local and Distributed', () => {
    expect(clusterStatements).toContain(
      "ALTER TABLE events_local ON CLUSTER 'tracklane' MODIFY SETTING old_parts_lifetime = 1, cleanup_delay_period = 1, max_cleanup_delay_period = 1",
    );
    expect(clusterStatements.some((s) => /^ALTER TABLE events ON CLUSTER/.test(s))).toBe(false);
    const add = "ADD COLUMN IF NOT EXISTS registered_at DateTime64(3, 'UTC') DEFAULT now64(3)";
    expect(clusterStatements).toContain(`ALTER TABLE overwrite_values_local ON CLUSTER 'tracklane' ${add}`);
    expect(clusterStatements).toContain(`ALTER TABLE overwrite_values ON CLUSTER 'tracklane' ${add}`);
  });

  it('sharding keys name only columns of their table, and every key has a table', () => {
    for (const [table, key] of Object.entries(SHARDING_KEYS)) {
      const create = singleNode.find((s) => new RegExp(`CREATE TABLE IF NOT EXISTS ${table}\\b`).test(s));
      expect(create, table).toBeDefined();
      for (const col of key.replace(/^cityHash64\(|\)$/g, '').replace(/coalesce\(|\)/g, '').split(/,\s*/)) {
        expect(create, `${table}.${col}`).toMatch(new RegExp(`\\n\\s+${col}\\s`));
      }
    }
  });

  it('the migrations table is replicated to every node under one path, with no Distributed table', () => {
    const ddl = "CREATE TABLE IF NOT EXISTS tracklane_migrations\n  (name String) ENGINE = ReplacingMergeTree(applied_at) ORDER BY name";
    expect(REPLICATED_EVERYWHERE.has('tracklane_migrations')).toBe(true);
    expect(toClusterDdl(ddl, { cluster })).toEqual([
      "CREATE TABLE IF NOT EXISTS tracklane_migrations ON CLUSTER 'tracklane' (name String) " +
        "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/all/{database}/{table}', '{shard}-{replica}', applied_at) ORDER BY name",
    ]);
  });

  it('the database of the Distributed tables follows the option', () => {
    const [, dist] = toClusterDdl('CREATE TABLE IF NOT EXISTS users (tenant_id String, user_id String) ENGINE = MergeTree ORDER BY (tenant_id, user_id)', { cluster, database: 'analytics' });
    expect(dist).toBe(
      "CREATE TABLE IF NOT EXISTS users ON CLUSTER 'tracklane' AS analytics.users_local ENGINE = Distributed('tracklane', 'analytics', 'users_local', cityHash64(tenant_id, user_id))",
    );
  });

  it.each([
    { name: 'a MergeTree table without a sharding key', sql: 'CREATE TABLE IF NOT EXISTS mystery (a String) ENGINE = MergeTree ORDER BY a', want: /no sharding key/ },
    { name: 'an ALTER it has no rule for', sql: 'ALTER TABLE events DROP COLUMN ip', want: /no cluster rule for ALTER TABLE events DROP COLUMN/ },
    { name: 'an unknown statement', sql: 'INSERT INTO events VALUES (1)', want: /no cluster rule/ },
    { name: 'an already replicated table', sql: "CREATE TABLE IF NOT EXISTS users (a String) ENGINE = ReplicatedMergeTree('/p', 'r') ORDER BY a", want: /already Replicated/ },
  ])('refuses $name', ({ sql, want }) => {
    expect(() => toClusterDdl(sql, { cluster })).toThrow(ClusterDdlError);
    expect(() => toClusterDdl(sql, { cluster })).toThrow(want);
  });

  it.each(["bad'name", 'a b', ''])('refuses the cluster name %j', (name) => {
    expect(() => toClusterDdl('CREATE OR REPLACE VIEW v AS SELECT 1', { cluster: name })).toThrow(/unsupported cluster name/);
  });

  it('accepts the {cluster} macro as the cluster name', () => {
    expect(toClusterDdl('CREATE OR REPLACE VIEW v AS SELECT 1', { cluster: '{cluster}' })).toEqual(["CREATE OR REPLACE VIEW v ON CLUSTER '{cluster}' AS SELECT 1"]);
  });
});

describe('the compactor statements on a shard', () => {
  it.each([
    ...HISTORY_TABLES.flatMap((table) => [
      { name: `user history of ${table}`, sql: userHistoryMutation(table), table },
      { name: `account history of ${table}`, sql: accountHistoryMutation(table), table },
      { name: `delete events of ${table}`, sql: deleteEventsMutation(table), table },
      { name: `suppressed events of ${table}`, sql: suppressEventsMutation(table), table },
    ]),
    { name: 'dead letters', sql: DEAD_LETTERS_MUTATION, table: 'dead_letters' },
  ])('$name: mutates the local replica, synchronously for the whole shard, the lookup tables allowed', ({ sql, table }) => {
    const out = toShardCompactorStatement(sql);
    expect(out).toMatch(new RegExp(`^ALTER TABLE default\\.${table}_local (UPDATE|DELETE) `));
    expect(out).not.toContain('ON CLUSTER');
    expect(out).toMatch(/ SETTINGS mutations_sync = 2, allow_nondeterministic_mutations = 1$/);
    // the body (and so the PII-free guarantee: values come from the Join table) is unchanged
    const body = (s: string) => s.replace(/^ALTER TABLE \S+ /, '').replace(/ SETTINGS .*$/, '');
    expect(body(out)).toBe(body(sql));
  });

  it('OPTIMIZE … FINAL merges every replica of the shard\'s local table', () => {
    expect(toShardCompactorStatement('OPTIMIZE TABLE default.users FINAL')).toBe('OPTIMIZE TABLE default.users_local FINAL SETTINGS alter_sync = 2');
  });

  it('has no rule for TRUNCATE: the lookup tables are emptied through each node\'s own connection', () => {
    expect(() => toShardCompactorStatement('TRUNCATE TABLE default.overwrite_join')).toThrow(/no cluster rule for compactor statement/);
  });

  it('system.parts of every replica', () => {
    expect(clusterSystemTable('parts', { cluster })).toBe("clusterAllReplicas('tracklane', system.parts)");
  });

  it('refuses a mutation of a table it does not know', () => {
    expect(() => toShardCompactorStatement('ALTER TABLE default.overwrite_values DELETE WHERE 1')).toThrow(ClusterDdlError);
    expect(() => toShardCompactorStatement('OPTIMIZE TABLE default.overwrite_values FINAL')).toThrow(ClusterDdlError);
  });
});
