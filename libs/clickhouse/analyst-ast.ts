// EXPLAIN AST of an analyst statement: the dump read as a tree, its node types and functions checked
// (default-deny), and a tenant's table names checked before the analyzer ever runs.
import type { Who } from './analyst-engines.js';
import { clip, notAllowed } from './analyst-errors.js';
import { isAllowedFunction, OPERATOR_TABLE_FUNCTIONS } from './analyst-functions.js';
import { ANALYST_TABLES, PLAIN_NAME } from './analyst-settings.js';

export interface AstNode {
  type: string;
  /** the rest of the line after the type, without the alias and children suffixes */
  name: string;
  depth: number;
  children: AstNode[];
  parent: AstNode | null;
}

/**
 * Node types a statement may contain (default-deny). NOTE: `ColumnsApplyTransformer` (`* APPLY f`)
 * is left out because the dump does not name the function it applies; `Set` is a SETTINGS clause.
 */
const AST_TYPES = new Set([
  'SelectWithUnionQuery',
  'SelectIntersectExceptQuery',
  'SelectQuery',
  'ExpressionList',
  'WithElement',
  'Subquery',
  'TablesInSelectQuery',
  'TablesInSelectQueryElement',
  'TableExpression',
  'TableIdentifier',
  'TableJoin',
  'ArrayJoin',
  'SampleRatio',
  'Identifier',
  'Literal',
  'Function',
  'Asterisk',
  'QualifiedAsterisk',
  'ColumnsRegexpMatcher',
  'QualifiedColumnsRegexpMatcher',
  'ColumnsListMatcher',
  'QualifiedColumnsListMatcher',
  'ColumnsTransformerList',
  'ColumnsExceptTransformer',
  'ColumnsReplaceTransformer',
  'ColumnsReplaceTransformer::Replacement',
  'OrderByElement',
  'WindowDefinition',
  'WindowListElement',
  'InterpolateElement',
]);

const AST_LINE = /^( *)([A-Za-z_][A-Za-z0-9_]*(?:::[A-Za-z_][A-Za-z0-9_]*)?)(.*)$/;

/**
 * The dump as a tree (one node per line, indented one space per level).
 * TRICKY: names and aliases are printed raw, so a backquoted name with a newline can add lines of
 * the author's choosing. A real node's line always starts with its own type, so every check here
 * reads types and names context-free where it matters (functions, tables, SETTINGS), and a line
 * that is not a well-formed node of a known type, or a child count that does not add up, refuses
 * the statement.
 */
export function parseAstDump(lines: readonly string[]): AstNode {
  const stack: AstNode[] = [];
  const declared = new Map<AstNode, number>();
  let root: AstNode | null = null;
  for (const line of lines) {
    const m = AST_LINE.exec(line);
    if (!m) throw notAllowed('the statement contains a construct the analyst API cannot verify');
    const depth = (m[1] ?? '').length;
    const type = m[2] ?? '';
    let rest = m[3] ?? '';
    const children = / \(children (\d+)\)$/.exec(rest);
    if (children) rest = rest.slice(0, children.index);
    if (!AST_TYPES.has(type)) {
      if (depth === 0) throw notAllowed(`only a single SELECT statement is allowed (got ${describeRoot(type)})`);
      if (type === 'Set') throw notAllowed('SETTINGS clauses are not allowed');
      if (type === 'ColumnsApplyTransformer') throw notAllowed('APPLY column transformers are not allowed');
      throw notAllowed(`unsupported SQL construct (${type})`);
    }
    const alias = / \(alias ([\s\S]*)\)$/.exec(rest);
    const name = (alias ? rest.slice(0, alias.index) : rest).replace(/^ /, '');
    if (depth === 0) {
      if (root) throw notAllowed('only a single SELECT statement is allowed');
      root = { type, name, depth, children: [], parent: null };
      stack.push(root);
    } else {
      while (stack.length > depth) stack.pop();
      const parent = stack[stack.length - 1];
      if (!parent || stack.length !== depth) throw notAllowed('the statement contains a construct the analyst API cannot verify');
      const node: AstNode = { type, name, depth, children: [], parent };
      parent.children.push(node);
      stack.push(node);
    }
    const last = stack[stack.length - 1];
    if (last) declared.set(last, children ? Number(children[1]) : 0);
  }
  if (!root) throw notAllowed('empty statement');
  for (const [node, n] of declared) {
    if (node.children.length !== n) throw notAllowed('the statement contains a construct the analyst API cannot verify');
  }
  return root;
}

function describeRoot(type: string): string {
  if (type === 'Explain') return 'EXPLAIN';
  if (/^Show/.test(type)) return 'SHOW';
  if (type === 'DescribeQuery') return 'DESCRIBE';
  if (type === 'InsertQuery') return 'INSERT';
  if (type === 'Set' || type === 'SetQuery') return 'SET';
  return type;
}

export interface AstFacts {
  /** every function name as written */
  functions: string[];
  /** table functions (a Function directly under a TableExpression) */
  tableFunctions: string[];
  /** table expressions by name (TableIdentifier) */
  tables: string[];
  /** identifiers, any position (the right side of IN may name a table) */
  identifiers: string[];
  /** identifiers on the right side of IN / NOT IN / GLOBAL IN … */
  inTables: string[];
}

const IN_FUNCTIONS = new Set(
  ['in', 'notIn', 'globalIn', 'globalNotIn', 'nullIn', 'notNullIn', 'globalNullIn', 'globalNotNullIn'].flatMap((f) => [f, `${f}IgnoreSet`]),
);

/** Checks the node types and function names of a parsed dump and collects what names tables. */
export function analyzeAst(root: AstNode, kind: Who['kind']): AstFacts {
  if (root.type !== 'SelectWithUnionQuery') throw notAllowed(`only a single SELECT statement is allowed (got ${describeRoot(root.type)})`);
  // INTO OUTFILE (with its compression), FORMAT and SETTINGS of the statement are further
  // children of the root (measured on chDB 26.7); a plain SELECT has exactly its union list.
  if (root.children.length !== 1 || root.children[0]?.type !== 'ExpressionList') {
    const extra = root.children.slice(1);
    if (extra.some((c) => c.type === 'Literal')) throw notAllowed('INTO OUTFILE is not allowed');
    if (extra.some((c) => c.type === 'Identifier')) throw notAllowed('FORMAT is not allowed (results are always JSON rows)');
    throw notAllowed('only a plain SELECT is allowed');
  }
  const facts: AstFacts = { functions: [], tableFunctions: [], tables: [], identifiers: [], inTables: [] };
  const visit = (n: AstNode): void => {
    if (n.type === 'Function') {
      const fname = n.name;
      if (n.parent?.type === 'TableExpression') {
        facts.tableFunctions.push(fname);
        if (kind === 'tenant') throw notAllowed(`table functions are not allowed (${clip(fname)})`);
        if (!OPERATOR_TABLE_FUNCTIONS.has(fname)) throw notAllowed(`table function ${clip(fname)} is not allowed`);
      } else {
        facts.functions.push(fname);
        if (!isAllowedFunction(fname, kind)) throw notAllowed(`function ${clip(fname)} is not allowed`);
      }
      if (IN_FUNCTIONS.has(fname)) {
        const right = n.children[0]?.children[1];
        if (right?.type === 'Identifier') facts.inTables.push(right.name);
      }
    } else if (n.type === 'TableIdentifier') {
      facts.tables.push(n.name);
      if (kind === 'operator' && !n.name.split('.').every((p) => PLAIN_NAME.test(p))) {
        throw notAllowed(`table name ${clip(n.name)} is not allowed`);
      }
    } else if (n.type === 'Identifier') {
      facts.identifiers.push(n.name);
    }
    for (const c of n.children) visit(c);
  };
  visit(root);
  return facts;
}

/** Databases other than the analyst one: every table in them is off limits to tenants. */
const OTHER_DATABASES = new Set(['system', 'information_schema', 'INFORMATION_SCHEMA']);

/**
 * A tenant's table names, before the analyzer runs. A name the dump prints as `a.b` is read both
 * as database.table and as one table name. Allowed: an analyst table (bare or qualified with the
 * analyst database), or a bare plain name that is no table at all (a CTE, or unknown — the engine
 * says which). Anything naming an existing other table, or any other database, is refused.
 */
export function assertTenantNames(facts: AstFacts, existing: ReadonlySet<string>, database = 'default'): void {
  const allowed = new Set(ANALYST_TABLES);
  const forbiddenHere = (name: string): boolean => existing.has(name) && !allowed.has(name);
  const refuse = (name: string): never => {
    throw notAllowed(`table ${clip(name)} is not available to tenants (allowed: ${ANALYST_TABLES.join(', ')})`);
  };
  const checkTableRef = (name: string): void => {
    if (allowed.has(name)) return;
    const parts = name.split('.');
    if (parts.length === 2 && parts[0] === database && allowed.has(parts[1] ?? '')) return;
    if (parts.length === 1 && PLAIN_NAME.test(name) && !existing.has(name)) return;
    refuse(name);
  };
  for (const t of facts.tables) checkTableRef(t);
  for (const t of facts.inTables) checkTableRef(t);
  // NOTE: context-free, so a dump whose structure was bent by a crafted name still cannot name
  // another table: any identifier spelling an existing non-analyst table or another database.
  for (const id of facts.identifiers) {
    const parts = id.split('.');
    if (forbiddenHere(id)) refuse(id);
    if (parts.length >= 2 && OTHER_DATABASES.has(parts[0] ?? '')) refuse(id);
    if (parts.length >= 2 && parts[0] === database && forbiddenHere(parts[1] ?? '')) refuse(id);
  }
}
