import { describe, expect, it } from 'vitest';
import {
  ANALYST_TABLES,
  analyzeAst,
  assertTenantNames,
  assertTenantTree,
  classifyEngineError,
  DEFAULT_QUERY_LIMITS,
  isAllowedFunction,
  limitSettings,
  parseAstDump,
  parseQueryTree,
  quoteString,
  QueryRejectedError,
  setStatement,
  tenantFilterSetting,
  type AstFacts,
} from './analyst-sql.js';

// Dumps below are verbatim EXPLAIN AST / EXPLAIN QUERY TREE output of chDB 26.7 (one row per line).
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

describe('isAllowedFunction', () => {
  it.each([
    // operators the parser produces
    'equals', 'and', 'or', 'not', 'in', 'notIn', 'globalIn', 'lambda', 'tuple', 'tupleElement', 'arrayElement', 'CAST',
    'multiIf', 'caseWithExpression', 'like', 'ilike', 'isNull', 'toIntervalDay', 'exists', 'negate', 'concat',
    // aggregates with combinators
    'count', 'COUNT', 'countIf', 'COUNTDistinct', 'sumIf', 'sumArray', 'uniqState', 'uniqMerge', 'avgOrNull',
    'sumIfOrNull', 'groupArrayDistinct', 'argMaxIf', 'quantilesTDigestIf', 'sumForEach', 'countResample', 'minMap',
    'windowFunnel', 'retention', 'sequenceMatch',
    // window functions
    'row_number', 'rank', 'dense_rank', 'lagInFrame', 'leadInFrame', 'first_value', 'nth_value', 'ntile',
    // dates, strings, arrays, maps, JSON, conversions, URLs
    'toStartOfDay', 'dateDiff', 'DATE_TRUNC', 'formatDateTime', 'lower', 'replaceRegexpAll', 'splitByChar',
    'arrayMap', 'arrayFilter', 'arrayJoin', 'has', 'mapKeys', 'JSONExtractString', 'toUInt32OrZero', 'toInt64',
    'toDecimal64OrNull', 'toDateTime64', 'domain', 'extractURLParameter', 'cityHash64', 'coalesce', 'round',
  ])('allows %s', (name) => {
    expect(isAllowedFunction(name, 'tenant')).toBe(true);
  });

  it.each([
    'file', 'dictGet', 'dictGetString', 'dictHas', 'joinGet', 'joinGetOrNull', 'url', 'remote', 's3', 'aiGenerate',
    'catboostEvaluate', 'evalMLMethod', 'sleep', 'sleepEachRow', 'currentUser', 'hostName', 'getSetting',
    'getServerSetting', 'getMacro', 'hasColumnInTable', 'filesystemAvailable', 'formatRow', 'addressToSymbol',
    'regionToName', 'version', 'uptime', 'currentQueryID', 'fileIf', 'dictGetOrNull', '_CAST', '__getScalar',
    'cutToFirstSignificantSubdomainCustom', 'numbers',
  ])('refuses %s', (name) => {
    expect(isAllowedFunction(name, 'tenant')).toBe(false);
  });

  it('gives the operator server introspection but still no files, dictionaries or network', () => {
    for (const f of ['version', 'uptime', 'currentDatabase', 'getSetting', 'joinGet']) expect(isAllowedFunction(f, 'operator')).toBe(true);
    for (const f of ['file', 'dictGet', 'url', 'aiGenerate', 'catboostEvaluate']) expect(isAllowedFunction(f, 'operator')).toBe(false);
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

describe('parseQueryTree + assertTenantTree', () => {
  const tree = [
    'QUERY id: 0',
    '  JOIN TREE',
    '    JOIN id: 3, strictness: ALL, kind: INNER',
    '      LEFT TABLE EXPRESSION',
    '        QUERY id: 4, alias: __table1, is_subquery: 1, is_cte: 1, cte_name: suppressions',
    '          JOIN TREE',
    '            TABLE id: 7, alias: __table2, table_name: default.events, final: 1',
    '      RIGHT TABLE EXPRESSION',
    '        TABLE id: 9, alias: __table3, table_name: default.users',
    '                TABLE id: 22, alias: __table1, table_name: system.one',
  ];
  it('resolves CTEs as queries and real tables as tables', () => {
    const facts = parseQueryTree(tree);
    expect(facts).toEqual({ tables: ['default.events', 'default.users', 'system.one'], tableFunctions: [] });
    expect(() => assertTenantTree(facts)).not.toThrow();
  });
  it.each([
    { lines: ['    TABLE id: 5, alias: __table1, table_name: default.overwrite_values'], want: /overwrite_values/ },
    { lines: ['    TABLE id: 5, alias: __table1, table_name: system.tables'], want: /system.tables/ },
    { lines: ['        TABLE_FUNCTION id: 3, alias: __table1, table_function_name: numbers'], want: /table functions/ },
    { lines: ['    TABLE id: 5, alias: x, table_name: default.events, table_name: default.suppressions'], want: /cannot verify/ },
  ])('refuses $lines', ({ lines, want }) => {
    expect(refusal(() => assertTenantTree(parseQueryTree(lines))).message).toMatch(want);
  });
  it('knows another analyst database', () => {
    expect(() => assertTenantTree(parseQueryTree(['TABLE id: 1, table_name: tracklane.events']), 'tracklane')).not.toThrow();
    expect(() => assertTenantTree(parseQueryTree(['TABLE id: 1, table_name: default.events']), 'tracklane')).toThrow(QueryRejectedError);
  });
});

describe('tenantFilterSetting', () => {
  it('filters every analyst table and view, bare and qualified', () => {
    const v = tenantFilterSetting('acme-1');
    for (const t of ANALYST_TABLES) {
      expect(v).toContain(`'${t}': 'tenant_id = \\'acme-1\\''`);
      expect(v).toContain(`'default.${t}': 'tenant_id = \\'acme-1\\''`);
    }
    expect(v.startsWith('{') && v.endsWith('}')).toBe(true);
    expect(tenantFilterSetting('a', 'tracklane')).toContain(`'tracklane.events'`);
  });
  it.each(["a'b", 'A', '', '-a', 'a b', 'a\\b', 'x'.repeat(64)])('refuses tenant id %j', (id) => {
    expect(() => tenantFilterSetting(id)).toThrow(/tenant id/);
  });
  it.each([
    { v: "it's", want: "'it\\'s'" },
    { v: 'back\\slash', want: "'back\\\\slash'" },
    { v: "\\'", want: "'\\\\\\''" },
  ])('quotes $v safely', ({ v, want }) => {
    expect(quoteString(v)).toBe(want);
  });
});

describe('settings', () => {
  it('maps the limits to engine settings that throw', () => {
    expect(limitSettings(DEFAULT_QUERY_LIMITS)).toEqual({
      max_memory_usage: 512 * 1024 * 1024,
      max_rows_to_read: 100_000_000,
      max_bytes_to_read: 10 * 1024 ** 3,
      read_overflow_mode: 'throw',
      max_result_rows: 10_000,
      max_result_bytes: 16 * 1024 * 1024,
      result_overflow_mode: 'throw',
      max_execution_time: 20,
      timeout_overflow_mode: 'throw',
    });
  });
  it('builds one SET ending in readonly = 1', () => {
    expect(setStatement({ max_result_rows: 5, result_overflow_mode: 'throw', additional_table_filters: "{'t': 'x = \\'a\\''}" })).toBe(
      "SET max_result_rows = 5, result_overflow_mode = 'throw', additional_table_filters = '{\\'t\\': \\'x = \\\\\\'a\\\\\\'\\'}', readonly = 1",
    );
    expect(() => setStatement({ 'x; DROP': 1 })).toThrow(/setting name/);
  });
});

describe('classifyEngineError', () => {
  const chdb = (code: number, type: string, text: string): Error => new Error(`Code: ${code}. DB::Exception: ${text}. (${type})`);
  it.each([
    { err: chdb(241, 'MEMORY_LIMIT_EXCEEDED', 'Query memory limit exceeded: would use 768.06 MiB'), code: 'query_limit_exceeded', status: 422 },
    { err: chdb(158, 'TOO_MANY_ROWS', "Limit for rows (controlled by 'max_rows_to_read' setting) exceeded"), code: 'query_limit_exceeded', status: 422 },
    { err: chdb(159, 'TIMEOUT_EXCEEDED', 'Timeout exceeded: elapsed 20 seconds'), code: 'query_limit_exceeded', status: 422 },
    { err: chdb(396, 'TOO_MANY_ROWS_OR_BYTES', 'Limit for result exceeded, max rows: 10.00 thousand'), code: 'query_limit_exceeded', status: 422 },
    { err: chdb(62, 'SYNTAX_ERROR', 'Syntax error: failed at position 1'), code: 'query_invalid', status: 400 },
    { err: chdb(456, 'UNKNOWN_QUERY_PARAMETER', 'Substitution `x` is not set'), code: 'query_invalid', status: 400 },
    { err: chdb(164, 'READONLY', 'default: Cannot execute query in readonly mode'), code: 'query_not_allowed', status: 403 },
    { err: chdb(497, 'ACCESS_DENIED', 'analyst: Not enough privileges'), code: 'query_not_allowed', status: 403 },
    { err: chdb(47, 'UNKNOWN_IDENTIFIER', 'Unknown expression identifier `nope` in scope SELECT nope FROM events'), code: 'query_failed', status: 400 },
    { err: chdb(60, 'UNKNOWN_TABLE', 'Unknown table expression identifier'), code: 'query_failed', status: 400 },
  ])('$err.message → $code', ({ err, code, status }) => {
    const r = classifyEngineError(err);
    expect(r?.code).toBe(code);
    expect(r?.status).toBe(status);
    expect(r?.message).not.toMatch(/in scope/i);
  });

  it('reads a ClickHouseError of the HTTP client (code and type fields)', () => {
    const e = Object.assign(new Error('Limit for result exceeded'), { code: '396', type: 'TOO_MANY_ROWS_OR_BYTES' });
    expect(classifyEngineError(e)?.code).toBe('query_limit_exceeded');
  });

  it('SETTINGS refused at parse time is the statement; a setting refused later is ours (infrastructure)', () => {
    const e = chdb(164, 'READONLY', "Code: 164. DB::Exception: Cannot modify 'readonly' setting in readonly mode. (READONLY) (version 26.7.2.1)");
    expect(classifyEngineError(e, 'parse')?.message).toMatch(/SETTINGS clauses are not allowed/);
    expect(classifyEngineError(e, 'run')).toBeNull();
  });

  it.each([
    new Error('connect ECONNREFUSED 127.0.0.1:8123'),
    chdb(202, 'TOO_MANY_SIMULTANEOUS_QUERIES', 'Too many simultaneous queries'),
    chdb(210, 'NETWORK_ERROR', 'Connection reset by peer'),
    chdb(241, 'MEMORY_LIMIT_EXCEEDED', 'Memory limit (total) exceeded'),
    chdb(49, 'LOGICAL_ERROR', 'Bad cast'),
  ])('leaves infrastructure failures alone: %s', (err) => {
    expect(classifyEngineError(err)).toBeNull();
  });

  it('never echoes a long statement', () => {
    const e = chdb(47, 'UNKNOWN_IDENTIFIER', `Missing columns: ${'x'.repeat(10_000)}`);
    expect(classifyEngineError(e)?.message.length).toBeLessThan(500);
  });
});
