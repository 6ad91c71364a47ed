// What the table modules share about their columns: the compile-time check that a module's
// COLUMNS list names every key of its row, and the insert of rows as tuples in that order.
import type { ClickHouseClient } from '@clickhouse/client';

/**
 * `true` when `Columns` names every key of `Row`, else the keys it misses, so a module's
 * `const listed: AllColumnsListed<Row, typeof COLUMNS> = true` compiles only once it names them all.
 */
export type AllColumnsListed<Row, Columns extends readonly (keyof Row)[]> = Exclude<keyof Row, Columns[number]> extends never ? true : Exclude<keyof Row, Columns[number]>;

/**
 * Inserts rows as JSONCompactEachRow tuples in `columns` order (a column not listed gets its
 * DEFAULT); no rows → no request.
 */
export async function insertRows<Row>(client: ClickHouseClient, table: string, columns: readonly [Extract<keyof Row, string>, ...Extract<keyof Row, string>[]], rows: readonly Row[]): Promise<void> {
  if (rows.length === 0) return;
  await client.insert({ table, values: rows.map((r) => columns.map((c) => r[c])), format: 'JSONCompactEachRow', columns: [...columns] });
}
