// The `identify_snapshots` table (schemas/clickhouse/0010_identify_snapshots.sql): the trait
// maps an event carries (identify: the user's, group: the account's), one row per event that
// has any, a ReplacingMergeTree on (tenant_id, event_id) with version received_at like `events`.
// NOTE: the sink writes these maps here and leaves them empty in `events`, so the compactor's
// rewrites of old PII touch this narrow table only.
import type { ClickHouseClient } from '@clickhouse/client';
import { EVENT_TYPES, type EventType, type JsonMap } from '../../events/envelope.js';
import { ms, nullableStr, oneOf, selectList, str, stringMap, type JsonRow } from './row-values.js';
import type { AllColumnsListed } from './table-columns.js';

/** One row of `identify_snapshots`; times in ms. */
export interface IdentifySnapshotRow {
  tenant_id: string;
  event_id: string;
  type: EventType;
  user_id: string | null;
  anonymous_id: string | null;
  account_id: string | null;
  timestamp: number;
  client_ts: number;
  received_at: number;
  traits: JsonMap;
  account_traits: JsonMap;
}

/** Insert column order for JSONCompactEachRow; every IdentifySnapshotRow key exactly once. */
export const IDENTIFY_SNAPSHOT_COLUMNS = [
  'tenant_id',
  'event_id',
  'type',
  'user_id',
  'anonymous_id',
  'account_id',
  'timestamp',
  'client_ts',
  'received_at',
  'traits',
  'account_traits',
] as const satisfies readonly (keyof IdentifySnapshotRow)[];

// Compile-time guard: IDENTIFY_SNAPSHOT_COLUMNS names every IdentifySnapshotRow key.
const allSnapshotColumnsListed: AllColumnsListed<IdentifySnapshotRow, typeof IDENTIFY_SNAPSHOT_COLUMNS> = true;
void allSnapshotColumnsListed;

/** An IdentifySnapshotRow's values in IDENTIFY_SNAPSHOT_COLUMNS order (JSONCompactEachRow). */
export type IdentifySnapshotTuple = unknown[];

/** SELECT list whose rows parseIdentifySnapshotRow reads. */
export const IDENTIFY_SNAPSHOT_SELECT = selectList(IDENTIFY_SNAPSHOT_COLUMNS, new Set(['timestamp', 'client_ts', 'received_at']));

export function parseIdentifySnapshotRow(r: JsonRow): IdentifySnapshotRow {
  return {
    tenant_id: str(r.tenant_id),
    event_id: str(r.event_id),
    type: oneOf(EVENT_TYPES, r.type, 'identify_snapshots.type'),
    user_id: nullableStr(r.user_id),
    anonymous_id: nullableStr(r.anonymous_id),
    account_id: nullableStr(r.account_id),
    timestamp: ms(r.timestamp),
    client_ts: ms(r.client_ts),
    received_at: ms(r.received_at),
    traits: stringMap(r.traits),
    account_traits: stringMap(r.account_traits),
  };
}

export function identifySnapshotTuple(row: IdentifySnapshotRow): IdentifySnapshotTuple {
  return IDENTIFY_SNAPSHOT_COLUMNS.map((c) => row[c]);
}

/** Inserts rows given as IDENTIFY_SNAPSHOT_COLUMNS tuples; nothing to insert → no request. */
export async function insertIdentifySnapshotTuples(
  client: ClickHouseClient,
  tuples: readonly IdentifySnapshotTuple[],
  opts: { table?: string; liftPartitionLimit?: boolean } = {},
): Promise<void> {
  if (tuples.length === 0) return;
  await client.insert({
    table: opts.table ?? 'identify_snapshots',
    values: tuples,
    format: 'JSONCompactEachRow',
    columns: [...IDENTIFY_SNAPSHOT_COLUMNS],
    // NOTE: partitioned by the client's month like events (see InsertEventsOptions in events.ts)
    ...(opts.liftPartitionLimit ? { clickhouse_settings: { max_partitions_per_insert_block: '0' } } : {}),
  });
}

export async function insertIdentifySnapshots(client: ClickHouseClient, rows: readonly IdentifySnapshotRow[], table = 'identify_snapshots'): Promise<void> {
  await insertIdentifySnapshotTuples(client, rows.map(identifySnapshotTuple), { table });
}
