// The columns users and accounts share as ReplacingMergeTree(version, is_deleted) snapshots:
// the non-reserved traits and the version bookkeeping.
import type { ClickHouseClient } from '@clickhouse/client';
import type { JsonMap } from '../../events/envelope.js';
import { flag, ms, num, stringMap, type JsonRow } from './row-values.js';
import { insertRows } from './table-columns.js';

export interface SnapshotColumns {
  /** non-reserved traits, JSON-encoded values (reserved ones live in their columns) */
  traits: JsonMap;
  version: number;
  is_deleted: 0 | 1;
  /** ms */
  updated_at: number;
}

export function parseSnapshotColumns(r: JsonRow): SnapshotColumns {
  return { traits: stringMap(r.traits), version: num(r.version), is_deleted: flag(r.is_deleted), updated_at: ms(r.updated_at) };
}

/** Inserts whole snapshots (never partial rows: a ReplacingMergeTree keeps the latest whole row). */
export async function insertSnapshots<Row extends SnapshotColumns>(
  client: ClickHouseClient,
  table: string,
  columns: readonly [Extract<keyof Row, string>, ...Extract<keyof Row, string>[]],
  rows: readonly Row[],
): Promise<void> {
  await insertRows(client, table, columns, rows);
}
