import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_MIGRATIONS_DIR, splitStatements } from './migrate.js';
import { DELETE_CLEAR_USERS, DELETE_DEAD_LETTERS, OPTIMIZE_USERS_FINAL, TRANSLATE_EVENTS, TRANSLATE_SNAPSHOTS } from '../compactor/translation-sql.js';

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

  it('the shipped migrations are numbered without gaps and split into idempotent statements', () => {
    const files = readdirSync(DEFAULT_MIGRATIONS_DIR).filter((f) => f.endsWith('.sql')).sort();
    expect(files.map((f) => Number(f.slice(0, 4)))).toEqual(files.map((_, i) => i + 1));
    for (const f of files) {
      for (const stmt of splitStatements(readFileSync(join(DEFAULT_MIGRATIONS_DIR, f), 'utf8'))) {
        expect(stmt.replace(/--[^\n]*\n/g, '').trim()).toMatch(/^(CREATE (TABLE IF NOT EXISTS|OR REPLACE VIEW) |ALTER TABLE \w+ (MODIFY SETTING|ADD COLUMN IF NOT EXISTS) )/);
      }
    }
  });

  // Data steps (history translation, key migration, moving legacy snapshots) are code steps of the
  // compactor or `tracklane migrate`, never DDL migrations: a migration runs once, unverified,
  // with its text kept in system.mutations — no place for ids, and no receipt.
  const DATA_STATEMENT = /\b(ALTER\s+TABLE\s+\S+\s+(UPDATE|DELETE)|INSERT\s+INTO|OPTIMIZE\s+TABLE|TRUNCATE|DELETE\s+FROM|EXCHANGE\s+TABLES)\b/i;
  it('no shipped migration holds a data statement', () => {
    for (const f of readdirSync(DEFAULT_MIGRATIONS_DIR).filter((n) => n.endsWith('.sql'))) {
      for (const stmt of splitStatements(readFileSync(join(DEFAULT_MIGRATIONS_DIR, f), 'utf8'))) {
        expect(stmt.replace(/--[^\n]*\n/g, ''), f).not.toMatch(DATA_STATEMENT);
      }
    }
  });

  it('the history translation (issue 15) lives in code: its statements are the compactor\'s, naming lookup tables only', () => {
    const statements = [TRANSLATE_EVENTS, TRANSLATE_SNAPSHOTS, DELETE_CLEAR_USERS, DELETE_DEAD_LETTERS, OPTIMIZE_USERS_FINAL];
    for (const sql of statements) expect(sql).toMatch(DATA_STATEMENT);
    // NOTE: the mutations read ids and values from the translation's Join/Set tables, never a literal
    for (const sql of statements.slice(0, 4)) {
      expect(sql).toMatch(/default\.overwrite_translation_/);
      expect(sql.replace(/'default\.overwrite_translation_\w+'|'(pseudonym|hashed|any_key|pii_traits|since|key_version)'/g, '')).not.toMatch(/'[^']+'/);
    }
    const migration = readFileSync(join(DEFAULT_MIGRATIONS_DIR, '0012_history_translation.sql'), 'utf8');
    expect(splitStatements(migration).every((s) => /^CREATE TABLE IF NOT EXISTS /.test(s.replace(/--[^\n]*\n/g, '').trim()))).toBe(true);
  });
});
