// ClickHouse cluster mode (CLICKHOUSE_CLUSTER): turns the single-node statements of the
// migrations (and the compactor's mutations) into their cluster form — Replicated…MergeTree
// `<table>_local` tables ON CLUSTER with a Distributed table of the original name in front.
//
// Layout (k8s/README.md, "ClickHouse cluster mode"):
// - every MergeTree-family table becomes `<table>_local` (Replicated, ZooKeeper/Keeper path
//   /clickhouse/tables/{shard}/{database}/{table}, replica '{replica}') on every node, and
//   `<table>` a Distributed table over it, sharded by SHARDING_KEYS below. Readers and writers
//   keep using `<table>`: the sink inserts, analysts and views read through Distributed.
// - a sharding key is always a function of the table's ORDER BY columns, so every version
//   of a ReplacingMergeTree key lands on one shard and FINAL (run per shard) still collapses
//   them: events and users by (tenant, user), accounts and dead letters by tenant.
// - Join / Set tables (the compactor's per-batch lookup tables) stay local to each node,
//   created ON CLUSTER; views are created ON CLUSTER and read the Distributed tables.
// - `tracklane_migrations` is replicated to EVERY node (one Keeper path for all shards), so
//   whichever node `migrate` reaches knows what was applied.
// NOTE: the single-node path never calls this module: its DDL stays byte-identical.

/** Sharding expression of each sharded table; a new MergeTree table must be added here. */
export const SHARDING_KEYS: Readonly<Record<string, string>> = {
  // TRICKY: the Kafka partition key's notion of "user" (DESIGN.md §2): identified events
  // land with the user's row in `users`; anonymous ones by anonymous id. An event keeps its
  // (user_id, anonymous_id) across redeliveries, so its copies meet on one shard and FINAL
  // collapses them. The one exception: a client retry straddling a tenant's anonymization
  // switch carries the clear id in one copy and the pseudonym in the other.
  events: 'cityHash64(tenant_id, coalesce(user_id, anonymous_id, event_id))',
  // NOTE: as events, so an event's snapshot sits on its event's shard (events_with_traits joins them)
  identify_snapshots: 'cityHash64(tenant_id, coalesce(user_id, anonymous_id, event_id))',
  users: 'cityHash64(tenant_id, user_id)',
  accounts: 'cityHash64(tenant_id)',
  dead_letters: 'cityHash64(tenant_id)',
  overwrite_requests: 'cityHash64(request_id)',
  overwrite_values: 'cityHash64(tenant_id, id)',
  suppressions: 'cityHash64(tenant_id, subject_id_hash)',
  suppressed_events: 'cityHash64(tenant_id, request_id)',
  audit_log: 'cityHash64(tenant_id)',
  pseudonym_keys: 'cityHash64(tenant_id)',
  pseudonym_key_shreds: 'cityHash64(tenant_id)',
  replaced_ids: 'cityHash64(tenant_id, id_hash)',
  history_translations: 'cityHash64(request_id)',
  violations: 'cityHash64(tenant_id)',
};

/** Tables replicated to every node of the cluster instead of sharded (small, read locally). */
export const REPLICATED_EVERYWHERE: ReadonlySet<string> = new Set(['tracklane_migrations']);

export const SHARD_ZK_PATH = '/clickhouse/tables/{shard}/{database}/{table}';
export const EVERYWHERE_ZK_PATH = '/clickhouse/tables/all/{database}/{table}';

export interface ClusterDdlOptions {
  /** cluster name from the server's remote_servers (a macro such as {cluster} works too) */
  cluster: string;
  /** database the Distributed tables point at (default "default") */
  database?: string;
}

export class ClusterDdlError extends Error {
  override readonly name = 'ClusterDdlError';
}

export const localTable = (table: string): string => `${table}_local`;

/**
 * The cluster statements for one single-node statement (as split by splitStatements).
 * Throws for a statement it has no rule for, so a new kind of migration is decided on, not
 * silently run on one node only.
 */
export function toClusterDdl(statement: string, opts: ClusterDdlOptions): string[] {
  const on = onCluster(opts.cluster);
  const database = opts.database ?? 'default';
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(database)) throw new ClusterDdlError(`unsupported database name ${JSON.stringify(database)}`);
  const sql = stripLeadingComments(statement);

  const view = /^CREATE\s+OR\s+REPLACE\s+VIEW\s+(\w+)\s+AS\b/i.exec(sql);
  if (view) return [`CREATE OR REPLACE VIEW ${view[1]} ${on} AS${sql.slice(view[0].length)}`];

  const create = /^CREATE\s+TABLE\s+IF\s+NOT\s+EXISTS\s+(\w+)\s*/i.exec(sql);
  if (create) return createTable(create[1] as string, sql.slice(create[0].length), { ...opts, database });

  const alter = /^ALTER\s+TABLE\s+(\w+)\s+/i.exec(sql);
  if (alter) {
    const table = alter[1] as string;
    const action = sql.slice(alter[0].length);
    const sharded = table in SHARDING_KEYS;
    // MergeTree settings exist on the local tables only; a Distributed table has none.
    if (/^MODIFY\s+SETTING\b/i.test(action)) return [`ALTER TABLE ${sharded ? localTable(table) : table} ${on} ${action}`];
    // a column goes into the local table and the Distributed table in front of it
    if (/^ADD\s+COLUMN\b/i.test(action)) {
      return sharded ? [`ALTER TABLE ${localTable(table)} ${on} ${action}`, `ALTER TABLE ${table} ${on} ${action}`] : [`ALTER TABLE ${table} ${on} ${action}`];
    }
    throw new ClusterDdlError(`no cluster rule for ALTER TABLE ${table} ${action.split(/\s+/).slice(0, 2).join(' ')}`);
  }
  throw new ClusterDdlError(`no cluster rule for statement: ${sql.slice(0, 60)}`);
}

function createTable(table: string, rest: string, opts: Required<ClusterDdlOptions>): string[] {
  const on = onCluster(opts.cluster);
  const engine = findEngine(rest);
  if (!engine) throw new ClusterDdlError(`CREATE TABLE ${table}: no ENGINE clause`);
  const { name, args, start, end } = engine;
  const isMergeTree = /MergeTree$/.test(name);
  if (!isMergeTree) {
    // Join, Set, Memory…: one per node, not replicated (the compactor fills them per batch)
    return [`CREATE TABLE IF NOT EXISTS ${table} ${on} ${rest}`];
  }
  if (name.startsWith('Replicated')) throw new ClusterDdlError(`CREATE TABLE ${table}: already Replicated; cluster mode adds replication itself`);
  const everywhere = REPLICATED_EVERYWHERE.has(table);
  const key = SHARDING_KEYS[table];
  if (!everywhere && key === undefined) {
    throw new ClusterDdlError(`CREATE TABLE ${table}: no sharding key (add it to SHARDING_KEYS in libs/clickhouse/cluster-ddl.ts)`);
  }
  const replication = everywhere ? [quote(EVERYWHERE_ZK_PATH), quote('{shard}-{replica}')] : [quote(SHARD_ZK_PATH), quote('{replica}')];
  const engineText = `ENGINE = Replicated${name}(${[...replication, ...(args === null || args.trim() === '' ? [] : [args.trim()])].join(', ')})`;
  const body = `${rest.slice(0, start)}${engineText}${rest.slice(end)}`;
  if (everywhere) return [`CREATE TABLE IF NOT EXISTS ${table} ${on} ${body}`];
  const local = localTable(table);
  return [
    `CREATE TABLE IF NOT EXISTS ${local} ${on} ${body}`,
    `CREATE TABLE IF NOT EXISTS ${table} ${on} AS ${opts.database}.${local} ` +
      `ENGINE = Distributed(${quote(opts.cluster)}, ${quote(opts.database)}, ${quote(local)}, ${key})`,
  ];
}

// --- the compactor's statements on a cluster -------------------------------------------------

/** Tables whose rows the compactor mutates or merges (pseudonym_keys: a shred; replaced_ids: a verified request's), on a cluster their local replicas. */
const MUTATED_TABLES = ['events', 'identify_snapshots', 'users', 'accounts', 'dead_letters', 'pseudonym_keys', 'replaced_ids'] as const;

/**
 * The form of one of the compactor's statements (libs/compactor/mutation-sql.ts) that runs on ONE
 * replica of each shard (libs/compactor/compactor-target.ts): ALTER … UPDATE/DELETE and
 * OPTIMIZE of the `_local` table (a mutation of a Distributed table is refused), waiting for
 * every replica of the shard (mutations_sync / alter_sync = 2). Not ON CLUSTER: the DDL queue
 * runs one statement at a time per host and, past its timeout, leaves a statement running
 * that the compactor could no longer stop before it refills the lookup tables.
 * TRICKY: joinGet() is non-deterministic to ClickHouse, which refuses it in a mutation of a
 * Replicated table unless allow_nondeterministic_mutations; every replica of the shard runs
 * the mutation against its own lookup tables, so they must all hold the batch.
 */
export function toShardCompactorStatement(statement: string): string {
  const sql = statement.trim();
  const mutation = /^ALTER\s+TABLE\s+(default\.)?(\w+)\s+(UPDATE|DELETE)\b/i.exec(sql);
  if (mutation) {
    const table = mutation[2] as string;
    if (!(MUTATED_TABLES as readonly string[]).includes(table)) throw new ClusterDdlError(`no cluster rule for a mutation of ${table}`);
    const head = `ALTER TABLE ${mutation[1] ?? ''}${localTable(table)} ${mutation[3]}`;
    const rest = sql.slice(mutation[0].length);
    const settings = /\sSETTINGS\s+([^;]+)$/i.exec(rest);
    const extra = 'allow_nondeterministic_mutations = 1';
    return settings
      ? `${head}${rest.slice(0, settings.index)} SETTINGS ${settings[1]?.trim()}, ${extra}`
      : `${head}${rest} SETTINGS mutations_sync = 2, ${extra}`;
  }
  const optimize = /^OPTIMIZE\s+TABLE\s+(default\.)?(\w+)(\s+.*)?$/i.exec(sql);
  if (optimize) {
    const table = optimize[2] as string;
    if (!(MUTATED_TABLES as readonly string[]).includes(table)) throw new ClusterDdlError(`no cluster rule for OPTIMIZE of ${table}`);
    // alter_sync = 2: the merge is done on every replica of the shard when the statement returns
    return `OPTIMIZE TABLE ${optimize[1] ?? ''}${localTable(table)}${optimize[3] ?? ''} SETTINGS alter_sync = 2`;
  }
  throw new ClusterDdlError(`no cluster rule for compactor statement: ${sql.slice(0, 60)}`);
}

/** system.parts on a cluster: every replica's parts (the compactor waits for old parts to go). */
export function clusterSystemTable(table: string, opts: ClusterDdlOptions): string {
  return `clusterAllReplicas(${quote(opts.cluster)}, system.${table})`;
}

// --- helpers --------------------------------------------------------------------------------

function onCluster(cluster: string): string {
  if (!/^[A-Za-z0-9_.{}-]+$/.test(cluster)) throw new ClusterDdlError(`unsupported cluster name ${JSON.stringify(cluster)}`);
  return `ON CLUSTER ${quote(cluster)}`;
}

const quote = (s: string): string => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

function stripLeadingComments(sql: string): string {
  let s = sql.trim();
  for (;;) {
    if (s.startsWith('--')) {
      const eol = s.indexOf('\n');
      s = eol === -1 ? '' : s.slice(eol + 1).trimStart();
    } else if (s.startsWith('/*')) {
      const end = s.indexOf('*/');
      s = end === -1 ? '' : s.slice(end + 2).trimStart();
    } else {
      return s;
    }
  }
}

/**
 * The top-level `ENGINE = Name[(args)]` of a CREATE TABLE's text after the table name:
 * outside the column list, quotes and comments. `start`/`end` bound the clause.
 */
function findEngine(text: string): { name: string; args: string | null; start: number; end: number } | null {
  let depth = 0;
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '-' && text[i + 1] === '-') {
      const eol = text.indexOf('\n', i);
      i = eol === -1 ? text.length : eol + 1;
    } else if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      i = end === -1 ? text.length : end + 2;
    } else if (c === "'" || c === '"' || c === '`') {
      i = skipQuoted(text, i);
    } else if (c === '(') {
      depth++;
      i++;
    } else if (c === ')') {
      depth--;
      i++;
    } else if (depth === 0 && /^ENGINE\b/i.test(text.slice(i, i + 7)) && (i === 0 || /\s/.test(text[i - 1] as string))) {
      const m = /^ENGINE\s*=\s*(\w+)/i.exec(text.slice(i));
      if (!m) return null;
      let end = i + m[0].length;
      let args: string | null = null;
      const open = /^\s*\(/.exec(text.slice(end));
      if (open) {
        const argsStart = end + open[0].length;
        const close = matchingParen(text, argsStart);
        args = text.slice(argsStart, close);
        end = close + 1;
      }
      return { name: m[1] as string, args, start: i, end };
    } else {
      i++;
    }
  }
  return null;
}

function matchingParen(text: string, from: number): number {
  let depth = 1;
  let i = from;
  while (i < text.length) {
    const c = text[i];
    if (c === "'" || c === '"' || c === '`') {
      i = skipQuoted(text, i);
      continue;
    }
    if (c === '(') depth++;
    if (c === ')' && --depth === 0) return i;
    i++;
  }
  throw new ClusterDdlError('unbalanced parentheses in ENGINE clause');
}

function skipQuoted(text: string, from: number): number {
  const q = text[from];
  let i = from + 1;
  while (i < text.length) {
    if (text[i] === '\\') i += 2;
    else if (text[i] === q) {
      if (text[i + 1] === q) i += 2;
      else return i + 1;
    } else i++;
  }
  throw new ClusterDdlError(`unterminated ${q} quote`);
}
