import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_MIGRATIONS_DIR, splitStatements } from './migrate.js';

describe('splitStatements', () => {
  it.each([
    { name: 'one statement, no trailing ;', sql: 'SELECT 1', want: ['SELECT 1'] },
    { name: 'two statements', sql: 'SELECT 1;\nSELECT 2;\n', want: ['SELECT 1', 'SELECT 2'] },
    { name: 'comment-only chunks dropped', sql: '-- header\nSELECT 1;\n-- trailing; comment\n', want: ['-- header\nSELECT 1'] },
    { name: '; inside quotes and comments', sql: "SELECT 'a;b', \"c;d\", `e;f` /* g; */ -- h;\n;SELECT 2", want: ["SELECT 'a;b', \"c;d\", `e;f` /* g; */ -- h;", 'SELECT 2'] },
    { name: 'escaped quotes', sql: "SELECT 'it''s;', 'x\\';y';SELECT 3", want: ["SELECT 'it''s;', 'x\\';y'", 'SELECT 3'] },
  ])('$name', ({ sql, want }) => {
    expect(splitStatements(sql)).toEqual(want);
  });

  it('throws on an unterminated quote', () => {
    expect(() => splitStatements("SELECT 'oops")).toThrow(/unterminated/);
  });

  it('the shipped migrations are numbered uniquely and split into idempotent statements', () => {
    const files = readdirSync(DEFAULT_MIGRATIONS_DIR).filter((f) => f.endsWith('.sql')).sort();
    // NOTE: numbers are reserved per change while several are in progress, so one may be missing
    // for a while; two files with one number would apply in an order their names decide.
    const numbers = files.map((f) => Number(f.slice(0, 4)));
    expect(new Set(numbers).size).toBe(numbers.length);
    expect(numbers[0]).toBe(1);
    for (const f of files) {
      for (const stmt of splitStatements(readFileSync(join(DEFAULT_MIGRATIONS_DIR, f), 'utf8'))) {
        expect(stmt.replace(/--[^\n]*\n/g, '').trim()).toMatch(/^(CREATE (TABLE IF NOT EXISTS|OR REPLACE VIEW) |ALTER TABLE \w+ (MODIFY SETTING|ADD COLUMN IF NOT EXISTS) )/);
      }
    }
  });
});
