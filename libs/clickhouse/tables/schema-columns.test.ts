// Every table module writes exactly the columns its migrations create, but those ClickHouse
// fills in itself (DEFAULT now64(3)): a column added to a table and not to its module (or the
// other way round) fails here, not at the first insert.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_MIGRATIONS_DIR, splitStatements } from '../migrate.js';
import { ACCOUNT_ROW_COLUMNS } from './accounts.js';
import { AUDIT_COLUMNS } from './audit-log.js';
import { DEAD_LETTER_COLUMNS } from './dead-letters.js';
import { EVENT_COLUMNS } from './events.js';
import { HISTORY_TRANSLATION_COLUMNS } from './history-translations.js';
import { IDENTIFY_SNAPSHOT_COLUMNS } from './identify-snapshots.js';
import { OVERWRITE_REQUEST_COLUMNS } from './overwrite-requests.js';
import { OVERWRITE_VALUE_COLUMNS } from './overwrite-values.js';
import { PSEUDONYM_KEY_COLUMNS, SHRED_COLUMNS } from './pseudonym-keys.js';
import { SUPPRESSED_EVENTS_COLUMNS } from './suppressed-events.js';
import { SUPPRESSION_COLUMNS } from './suppressions.js';
import { USER_ROW_COLUMNS } from './users.js';
import { VIOLATION_COLUMNS } from './violations.js';

/** table → its columns, in the order the migrations create them, and those with a DEFAULT */
function schemaColumns(): Map<string, { columns: string[]; defaulted: Set<string> }> {
  const tables = new Map<string, { columns: string[]; defaulted: Set<string> }>();
  const files = readdirSync(DEFAULT_MIGRATIONS_DIR).filter((f) => f.endsWith('.sql')).sort();
  for (const f of files) {
    for (const stmt of splitStatements(readFileSync(join(DEFAULT_MIGRATIONS_DIR, f), 'utf8'))) {
      const sql = stmt.replace(/--[^\n]*/g, '');
      const created = /CREATE TABLE IF NOT EXISTS (\w+)\s*\(([\s\S]*?)\n\)\s*\nENGINE/.exec(sql);
      const added = /ALTER TABLE (\w+) ADD COLUMN IF NOT EXISTS (\w+) (.*)/.exec(sql);
      const lines = created ? (created[2] ?? '').split('\n') : added ? [`${added[2]} ${added[3]}`] : [];
      const name = created?.[1] ?? added?.[1];
      if (name === undefined) continue;
      const table = tables.get(name) ?? { columns: [], defaulted: new Set<string>() };
      for (const line of lines) {
        const column = /^\s*(\w+)\s+\S/.exec(line)?.[1];
        if (column === undefined || /^(INDEX|PROJECTION|CONSTRAINT)$/.test(column)) continue;
        table.columns.push(column);
        if (/\sDEFAULT\s/.test(line)) table.defaulted.add(column);
      }
      tables.set(name, table);
    }
  }
  return tables;
}

describe('table modules and the migrations', () => {
  const schema = schemaColumns();

  it.each([
    { table: 'events', columns: EVENT_COLUMNS },
    { table: 'identify_snapshots', columns: IDENTIFY_SNAPSHOT_COLUMNS },
    { table: 'users', columns: USER_ROW_COLUMNS },
    { table: 'accounts', columns: ACCOUNT_ROW_COLUMNS },
    { table: 'dead_letters', columns: DEAD_LETTER_COLUMNS },
    { table: 'overwrite_requests', columns: OVERWRITE_REQUEST_COLUMNS },
    { table: 'overwrite_values', columns: OVERWRITE_VALUE_COLUMNS, filledIn: ['registered_at'] },
    { table: 'suppressions', columns: SUPPRESSION_COLUMNS, filledIn: ['registered_at'] },
    { table: 'suppressed_events', columns: SUPPRESSED_EVENTS_COLUMNS },
    { table: 'audit_log', columns: AUDIT_COLUMNS },
    { table: 'pseudonym_keys', columns: PSEUDONYM_KEY_COLUMNS },
    { table: 'pseudonym_key_shreds', columns: SHRED_COLUMNS },
    { table: 'history_translations', columns: HISTORY_TRANSLATION_COLUMNS },
    { table: 'violations', columns: VIOLATION_COLUMNS },
  ])('$table: the module writes every column but those ClickHouse fills in', ({ table, columns, filledIn = [] }) => {
    const found = schema.get(table);
    expect(found, table).toBeDefined();
    expect([...columns].sort()).toEqual(found?.columns.filter((c) => !filledIn.includes(c)).sort());
    for (const c of filledIn) expect(found?.defaulted.has(c), c).toBe(true);
  });
});
