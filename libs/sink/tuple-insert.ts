// The sink's inserts of positional rows (events, identify_snapshots): on chDB the rows are
// encoded here and handed to the engine's raw insert; on a ClickHouse server they go through
// the table module's insert (@clickhouse/client), as they always did. Same rows, same format
// (JSONCompactEachRow), same columns either way.
import type { ClickHouseClient } from '@clickhouse/client';
import { encodedInserter } from '../clickhouse/client.js';
import { EVENT_COLUMNS, insertEventTuples, type EventTuple } from '../clickhouse/tables/events.js';
import { IDENTIFY_SNAPSHOT_COLUMNS, insertIdentifySnapshotTuples, type IdentifySnapshotTuple } from '../clickhouse/tables/identify-snapshots.js';

export interface TupleInsertOptions {
  table: string;
  /** max_partitions_per_insert_block = 0 (see InsertEventsOptions in tables/events.ts) */
  liftPartitionLimit?: boolean;
}

/**
 * Rows as JSONCompactEachRow: one JSON array per line, exactly what @clickhouse/client sends
 * for the same rows (JSON.stringify of each, '\n' after each).
 */
export function encodeCompactRows(tuples: readonly (readonly unknown[])[]): Buffer {
  const lines = new Array<string>(tuples.length);
  for (let i = 0; i < tuples.length; i++) lines[i] = JSON.stringify(tuples[i]);
  return Buffer.from(`${lines.join('\n')}\n`);
}

export interface TupleInserts {
  events(tuples: readonly EventTuple[], opts: TupleInsertOptions): Promise<void>;
  snapshots(tuples: readonly IdentifySnapshotTuple[], opts: TupleInsertOptions): Promise<void>;
}

export function tupleInserts(client: ClickHouseClient): TupleInserts {
  const encoded = encodedInserter(client);
  if (!encoded) {
    return {
      events: (tuples, opts) => insertEventTuples(client, tuples, opts),
      snapshots: (tuples, opts) => insertIdentifySnapshotTuples(client, tuples, opts),
    };
  }
  const insert = async (columns: readonly string[], tuples: readonly (readonly unknown[])[], opts: TupleInsertOptions): Promise<void> => {
    if (tuples.length === 0) return;
    // NOTE: a SETTINGS clause of this INSERT alone (not a session SET as client.insert makes on chDB)
    await encoded({ table: opts.table, columns, body: encodeCompactRows(tuples), ...(opts.liftPartitionLimit ? { settings: { max_partitions_per_insert_block: 0 } } : {}) });
  };
  return {
    events: (tuples, opts) => insert(EVENT_COLUMNS, tuples, opts),
    snapshots: (tuples, opts) => insert(IDENTIFY_SNAPSHOT_COLUMNS, tuples, opts),
  };
}
