// EXPLAIN QUERY TREE of an analyst statement: the tables and table functions the analyzer resolved,
// checked for a tenant (analyst tables only) and for the operator (local data, generated rows).
import type { StatementContext } from './analyst-engines.js';
import { clip, notAllowed, step } from './analyst-errors.js';
import { OPERATOR_TABLE_FUNCTIONS } from './analyst-functions.js';
import { ANALYST_TABLES, quoteString } from './analyst-settings.js';

export interface QueryTreeFacts {
  /** resolved tables, `database.table` */
  tables: string[];
  tableFunctions: string[];
}

const TREE_TABLE = /^TABLE id: \d+(?:, alias: [^,\s]+)?, table_name: ([^,\s]+)(?:, final: 1)?$/;
const TREE_TABLE_FUNCTION = /^TABLE_FUNCTION id: \d+(?:, alias: [^,\s]+)?, table_function_name: ([A-Za-z_][A-Za-z0-9_]*)$/;

/** The tables and table functions the analyzer resolved (CTEs are QUERY nodes, not tables). */
export function parseQueryTree(lines: readonly string[]): QueryTreeFacts {
  const facts: QueryTreeFacts = { tables: [], tableFunctions: [] };
  for (const raw of lines) {
    const line = raw.trim();
    if (line.startsWith('TABLE id:')) {
      const m = TREE_TABLE.exec(line);
      if (!m?.[1]) throw notAllowed('the statement reads a table the analyst API cannot verify');
      facts.tables.push(m[1]);
    } else if (line.startsWith('TABLE_FUNCTION ')) {
      const m = TREE_TABLE_FUNCTION.exec(line);
      if (!m?.[1]) throw notAllowed('the statement uses a table function the analyst API cannot verify');
      facts.tableFunctions.push(m[1]);
    }
  }
  return facts;
}

export function assertTenantTree(tree: QueryTreeFacts, database = 'default'): void {
  if (tree.tableFunctions.length > 0) throw notAllowed(`table functions are not allowed (${clip(tree.tableFunctions[0] ?? '')})`);
  const allowed = new Set(ANALYST_TABLES.map((t) => `${database}.${t}`));
  for (const t of tree.tables) {
    // system.one is the analyzer's implicit table of a SELECT without FROM (an explicit
    // system.one was refused from the AST)
    if (t === 'system.one' || allowed.has(t)) continue;
    throw notAllowed(`table ${clip(t)} is not available to tenants`);
  }
}

/** Table engines the operator may read: local data and system tables, never an external source. */
const OPERATOR_ENGINE = /^(?:(?:Replicated|Shared)?(?:Replacing|Summing|Aggregating|Collapsing|VersionedCollapsing|Coalescing|Graphite)?MergeTree|View|MaterializedView|Memory|Set|Join|Log|TinyLog|StripeLog|Buffer|Null|Distributed|System[A-Za-z0-9]*)$/;

export async function assertOperatorTree(tree: QueryTreeFacts, ctx: StatementContext): Promise<void> {
  for (const f of tree.tableFunctions) if (!OPERATOR_TABLE_FUNCTIONS.has(f)) throw notAllowed(`table function ${clip(f)} is not allowed`);
  const names = [...new Set(tree.tables)];
  if (names.length === 0) return;
  const tuples = names.map((t) => {
    const dot = t.indexOf('.');
    return `(${quoteString(t.slice(0, dot))}, ${quoteString(t.slice(dot + 1))})`;
  });
  const rows = await step('check', () =>
    ctx.rows(`SELECT database, name, engine FROM system.tables WHERE (database, name) IN (${tuples.join(', ')})`),
  );
  const engines = new Map(rows.map((r) => [`${String(r.database)}.${String(r.name)}`, String(r.engine)]));
  for (const t of names) {
    const engine = engines.get(t);
    if (engine === undefined || !OPERATOR_ENGINE.test(engine)) {
      throw notAllowed(`table ${clip(t)} (${engine ?? 'not a stored table'}) is not readable through the analyst API`);
    }
  }
}
