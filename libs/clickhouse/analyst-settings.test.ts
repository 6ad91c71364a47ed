// The settings of an analyst statement (analyst-settings.ts): bounds, the tenant filter, the SET.
import { describe, expect, it } from 'vitest';
import { ANALYST_TABLES, DEFAULT_QUERY_LIMITS, limitSettings, quoteString, setStatement, tenantFilterSetting } from './analyst-settings.js';

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
