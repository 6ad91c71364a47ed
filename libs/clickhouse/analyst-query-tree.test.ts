// EXPLAIN QUERY TREE checks (analyst-query-tree.ts) for a tenant's statement.
import { describe, expect, it } from 'vitest';
import { QueryRejectedError } from './analyst-errors.js';
import { assertTenantTree, parseQueryTree } from './analyst-query-tree.js';

const refusal = (fn: () => unknown): QueryRejectedError => {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(QueryRejectedError);
    return err as QueryRejectedError;
  }
  throw new Error('expected a QueryRejectedError');
};
// The tree below is verbatim EXPLAIN QUERY TREE output of chDB 26.7 (one row per line).
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
