// "No copy left anywhere": every String/Map/Array column of every stored table of the current
// database, searched (case-insensitively) for each needle. Shared by the overwrite tests.
import { toNumber } from '../../libs/clickhouse/client.js';

/** Runs read-only SQL and returns its rows (a client, the admin query API, …). */
export type RunQuery = <T>(sql: string) => Promise<T[]>;

const sqlString = (s: string): string => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

/** `table.column` of every column holding one of the needles. */
export async function grepEveryColumn(run: RunQuery, needles: readonly string[]): Promise<string[]> {
  const columns = await run<{ table: string; name: string }>(
    `SELECT c.table AS table, c.name AS name FROM system.columns c
     JOIN system.tables t ON t.database = c.database AND t.name = c.table
     WHERE c.database = currentDatabase() AND t.engine NOT LIKE '%View' AND t.engine NOT IN ('Set', 'Join')
       AND (c.type LIKE '%String%' OR c.type LIKE 'Map%' OR c.type LIKE 'Array%')`,
  );
  // NOTE: a schema this small would mean the query above stopped seeing the tables
  if (columns.length < 50) throw new Error(`only ${columns.length} columns found to search`);
  const hits: string[] = [];
  for (const { table, name } of columns) {
    for (const needle of needles) {
      const [r] = await run<{ n: unknown }>(`SELECT count() AS n FROM \`${table}\` WHERE positionCaseInsensitive(toString(\`${name}\`), ${sqlString(needle)}) > 0`);
      if (toNumber(r?.n) > 0) hits.push(`${table}.${name}`);
    }
  }
  return hits;
}
