// EXPLAIN AST checks (analyst-ast.ts): dumps parsed and analysed, a tenant's table names checked.
import { describe, expect, it } from 'vitest';
import { analyzeAst, assertTenantNames, parseAstDump, type AstFacts } from './analyst-ast.js';
import { QueryRejectedError } from './analyst-errors.js';
import { ANALYST_TABLES } from './analyst-settings.js';

// Dumps below are verbatim EXPLAIN AST output of chDB 26.7 (one row per line).
const CTE_JOIN_IN_AST = [
  'SelectWithUnionQuery (children 1)',
  ' ExpressionList (children 1)',
  '  SelectQuery (children 4)',
  '   ExpressionList (children 1)',
  '    WithElement (children 1)',
  '     Subquery (children 1)',
  '      SelectWithUnionQuery (children 1)',
  '       ExpressionList (children 1)',
  '        SelectQuery (children 2)',
  '         ExpressionList (children 1)',
  '          Asterisk',
  '         TablesInSelectQuery (children 1)',
  '          TablesInSelectQueryElement (children 1)',
  '           TableExpression (children 1)',
  '            TableIdentifier events',
  '   ExpressionList (children 1)',
  '    Function count (children 1)',
  '     ExpressionList',
  '   TablesInSelectQuery (children 2)',
  '    TablesInSelectQueryElement (children 1)',
  '     TableExpression (children 1)',
  '      TableIdentifier c (alias e)',
  '    TablesInSelectQueryElement (children 2)',
  '     TableExpression (children 1)',
  '      TableIdentifier users (alias u)',
  '     TableJoin (children 1)',
  '      Function equals (children 1)',
  '       ExpressionList (children 2)',
  '        Identifier e.user_id',
  '        Identifier u.user_id',
  '   Function and (children 1)',
  '    ExpressionList (children 2)',
  '     Function in (children 1)',
  '      ExpressionList (children 2)',
  '       Identifier e.tenant_id',
  '       Subquery (children 1)',
  '        SelectWithUnionQuery (children 1)',
  '         ExpressionList (children 1)',
  '          SelectQuery (children 1)',
  '           ExpressionList (children 1)',
  "            Literal 'a'",
  '     Function in (children 1)',
  '      ExpressionList (children 2)',
  '       Identifier u.user_id',
  '       Identifier users',
];

const simpleSelect = (items: string[], from?: string[]): string[] => [
  'SelectWithUnionQuery (children 1)',
  ' ExpressionList (children 1)',
  `  SelectQuery (children ${from ? 2 : 1})`,
  `   ExpressionList (children ${items.filter((i) => !i.startsWith(' ')).length})`,
  ...items.map((i) => `    ${i}`),
  ...(from
    ? [
        '   TablesInSelectQuery (children 1)',
        '    TablesInSelectQueryElement (children 1)',
        '     TableExpression (children 1)',
        ...from.map((f) => `      ${f}`),
      ]
    : []),
];

const refusal = (fn: () => unknown): QueryRejectedError => {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(QueryRejectedError);
    return err as QueryRejectedError;
  }
  throw new Error('expected a QueryRejectedError');
};

describe('parseAstDump + analyzeAst', () => {
  it('reads a CTE, a join and IN: functions, table expressions, IN tables', () => {
    const facts = analyzeAst(parseAstDump(CTE_JOIN_IN_AST), 'tenant');
    expect(facts.tables).toEqual(['events', 'c', 'users']);
    expect(facts.inTables).toEqual(['users']);
    expect(facts.functions).toEqual(['count', 'equals', 'and', 'in', 'in']);
    expect(facts.tableFunctions).toEqual([]);
  });

  it.each([
    {
      why: 'INTO OUTFILE … AND STDOUT COMPRESSION … FORMAT',
      dump: ['SelectWithUnionQuery (children 5)', ' ExpressionList (children 1)', '  SelectQuery (children 1)', '   ExpressionList (children 1)', '    Literal UInt64_1', " Literal 'x'", " Literal 'gzip'", ' Literal UInt64_3', ' Identifier CSV'],
      want: /INTO OUTFILE/,
    },
    {
      why: 'FORMAT',
      dump: ['SelectWithUnionQuery (children 2)', ' ExpressionList (children 1)', '  SelectQuery (children 1)', '   ExpressionList (children 1)', '    Literal UInt64_1', ' Identifier CSV'],
      want: /FORMAT/,
    },
    {
      why: 'SETTINGS of the statement',
      dump: ['SelectWithUnionQuery (children 2)', ' ExpressionList (children 1)', '  SelectQuery (children 1)', '   ExpressionList (children 1)', '    Literal UInt64_1', ' Set'],
      want: /SETTINGS/,
    },
    {
      why: 'SETTINGS inside a subquery',
      dump: ['SelectWithUnionQuery (children 1)', ' ExpressionList (children 1)', '  SelectQuery (children 2)', '   ExpressionList (children 1)', '    Literal UInt64_1', '   Set'],
      want: /SETTINGS/,
    },
    { why: 'SHOW', dump: ['ShowTables'], want: /single SELECT.*SHOW/ },
    { why: 'EXPLAIN', dump: ['Explain EXPLAIN AST (children 1)', ' SelectWithUnionQuery (children 1)'], want: /single SELECT.*EXPLAIN/ },
    { why: 'INSERT … FROM INFILE', dump: ['InsertQuery   (children 2)', " Literal 'x'", ' Identifier events'], want: /single SELECT.*INSERT/ },
    { why: 'DESCRIBE', dump: ['DescribeQuery (children 1)', ' TableExpression (children 1)', '  TableIdentifier events'], want: /DESCRIBE/ },
    { why: 'two roots', dump: ['SelectWithUnionQuery', 'SelectWithUnionQuery'], want: /single SELECT/ },
    { why: 'scalar file()', dump: simpleSelect(['Function file (children 1)', " ExpressionList (children 1)", "  Literal '/etc/passwd'"]), want: /function file/ },
    { why: 'dictGet', dump: simpleSelect(['Function dictGet (children 1)', ' ExpressionList']), want: /function dictGet/ },
    { why: 'joinGet', dump: simpleSelect(['Function joinGet (children 1)', ' ExpressionList']), want: /function joinGet/ },
    { why: 'an AI function (network)', dump: simpleSelect(['Function aiGenerate (children 1)', ' ExpressionList']), want: /function aiGenerate/ },
    { why: 'sleep', dump: simpleSelect(['Function sleep (children 1)', ' ExpressionList']), want: /function sleep/ },
    { why: 'a table function', dump: simpleSelect(['Asterisk'], ['Function numbers (alias n) (children 1)', ' ExpressionList (children 1)', '  Literal UInt64_3']), want: /table functions are not allowed \(numbers\)/ },
    { why: 'APPLY hides its function', dump: simpleSelect(['Asterisk (children 1)', ' ColumnsTransformerList (children 1)', '  ColumnsApplyTransformer']), want: /APPLY/ },
    { why: 'an unknown node type', dump: simpleSelect(['QueryParameter x:String']), want: /unsupported SQL construct \(QueryParameter\)/ },
    { why: 'a child count that does not add up', dump: simpleSelect(['Function count (children 1)']), want: /cannot verify/ },
    { why: 'a skipped level', dump: ['SelectWithUnionQuery (children 1)', '   ExpressionList'], want: /cannot verify/ },
  ])('refuses $why', ({ dump, want }) => {
    const err = refusal(() => analyzeAst(parseAstDump(dump), 'tenant'));
    expect(err.status).toBe(403);
    expect(err.code).toBe('query_not_allowed');
    expect(err.message).toMatch(want);
  });

  it('a name with a newline can forge lines, but only add nodes: forged dumps are refused', () => {
    // verbatim: EXPLAIN AST SELECT 1 AS `a)\n   Function file (children 1`, 2
    const forged = ['SelectWithUnionQuery (children 1)', ' ExpressionList (children 1)', '  SelectQuery (children 1)', '   ExpressionList (children 2)', '    Literal UInt64_1 (alias a)', '   Function file (children 1)', '    Literal UInt64_2'];
    expect(refusal(() => analyzeAst(parseAstDump(forged), 'tenant')).message).toMatch(/cannot verify/);
    // even with consistent child counts, a forged node is a node like any other and is checked
    const consistent = simpleSelect(['Literal UInt64_1 (alias a)', 'Function file', 'Literal UInt64_2']);
    expect(refusal(() => analyzeAst(parseAstDump(consistent), 'tenant')).message).toMatch(/function file/);
    const forgedTable = simpleSelect(['Identifier x (alias y)', 'Identifier suppressions']);
    const facts = analyzeAst(parseAstDump(forgedTable), 'tenant');
    expect(refusal(() => assertTenantNames(facts, new Set(['suppressions']))).message).toMatch(/suppressions/);
    // a spilled line that is not a node of a known type refuses too
    expect(refusal(() => parseAstDump([...simpleSelect(['Identifier x']), '    y) (children 1)'])).message).toMatch(/unsupported|cannot verify/);
  });

  it('the operator may use generated rows, never a source', () => {
    const numbers = simpleSelect(['Asterisk'], ['Function numbers (children 1)', ' ExpressionList (children 1)', '  Literal UInt64_3']);
    expect(analyzeAst(parseAstDump(numbers), 'operator').tableFunctions).toEqual(['numbers']);
    for (const f of ['url', 'file', 's3', 'remote', 'cluster', 'merge', 'mysql', 'executable', 'dictionary', 'input']) {
      const dump = simpleSelect(['Asterisk'], [`Function ${f} (children 1)`, ' ExpressionList (children 1)', "  Literal 'x'"]);
      expect(refusal(() => analyzeAst(parseAstDump(dump), 'operator')).message).toMatch(new RegExp(`table function ${f} is not allowed`));
    }
    const path = simpleSelect(['Asterisk'], ['TableIdentifier /etc/passwd']);
    expect(refusal(() => analyzeAst(parseAstDump(path), 'operator')).message).toMatch(/table name/);
    const sys = simpleSelect(['Asterisk'], ['TableIdentifier system.parts']);
    expect(analyzeAst(parseAstDump(sys), 'operator').tables).toEqual(['system.parts']);
  });
});

describe('assertTenantNames', () => {
  const existing = new Set([...ANALYST_TABLES, 'overwrite_values', 'overwrite_join', 'overwrite_keys', 'suppressions', 'tracklane_migrations']);
  const facts = (f: Partial<AstFacts>): AstFacts => ({ functions: [], tableFunctions: [], tables: [], identifiers: [], inTables: [], ...f });

  it.each([
    { tables: ['events'] },
    { tables: ['default.events', 'users', 'daily_active_users'] },
    { tables: ['c'], why: 'a CTE (no table of that name)' },
    { tables: ['no_such_table'], why: 'unknown: the engine says so' },
    { inTables: ['users'] },
    { identifiers: ['events.tenant_id', 'e.user_id', 'default.events.tenant_id', 'tenant_id'] },
  ])('allows %j', (f) => {
    expect(() => assertTenantNames(facts(f), existing)).not.toThrow();
  });

  it.each([
    { tables: ['overwrite_values'] },
    { tables: ['suppressions'], why: 'even when a CTE of that name shadows it' },
    { tables: ['default.overwrite_values'] },
    { tables: ['system.tables'] },
    { tables: ['system.one'] },
    { tables: ['INFORMATION_SCHEMA.tables'] },
    { tables: ['information_schema.columns'] },
    { tables: ['other.events'] },
    { tables: ['/etc/passwd'], why: "chDB's default database reads files by path" },
    { tables: ['data.csv'] },
    { tables: ['a.b.c'] },
    { inTables: ['overwrite_keys'] },
    { inTables: ['system.tables'] },
    { identifiers: ['overwrite_keys'], why: 'context-free: wherever it stands' },
    { identifiers: ['default.suppressions'] },
    { identifiers: ['system.tables'] },
  ])('refuses %j', (f) => {
    expect(refusal(() => assertTenantNames(facts(f), existing)).code).toBe('query_not_allowed');
  });
});
