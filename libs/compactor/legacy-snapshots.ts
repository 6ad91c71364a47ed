// The one data step of migration 0010 (a migration holds CREATE statements only): trait maps that
// rows of `events` written before it still hold are copied to identify_snapshots, then emptied in
// `events`. The compactor runs it at the start of a round that finds such rows, so it never
// overlaps a round's rewrite (one round at a time, under the fleet compactor's lease).
// NOTE: no id or value in any SQL text: the statements name tables and columns only.
import type { ClickHouseClient } from '@clickhouse/client';
import { IDENTIFY_SNAPSHOT_COLUMNS } from '../clickhouse/tables/identify-snapshots.js';
import type { CompactorTarget } from './compactor-target.js';

const HOLDS_MAPS = '(notEmpty(traits) OR notEmpty(account_traits))';
const EMPTY = "CAST(map(), 'Map(String, String)')";

/** The copy: every row of `events` holding a trait map, as its snapshot row. */
export function copyLegacySnapshotsSql(): string {
  const columns = IDENTIFY_SNAPSHOT_COLUMNS.join(', ');
  return (
    `INSERT INTO default.identify_snapshots (${columns}) SELECT ${columns} FROM default.events WHERE ${HOLDS_MAPS} ` +
    // NOTE: snapshots partition by month like events: one copy may span any number of months
    `SETTINGS max_partitions_per_insert_block = 0`
  );
}

/**
 * The emptying: only maps whose copy is in identify_snapshots (same tenant, event and
 * received_at), so a row an older sink wrote after the copy keeps its maps until the next run.
 * TRICKY: the IN subquery makes the mutation non-deterministic to ClickHouse; on a cluster the
 * target allows that (libs/clickhouse/cluster-ddl.ts), as for the lookup tables.
 */
export const EMPTY_LEGACY_MAPS_MUTATION =
  `ALTER TABLE default.events UPDATE traits = ${EMPTY}, account_traits = ${EMPTY} ` +
  `WHERE ${HOLDS_MAPS} AND (tenant_id, event_id, received_at) IN (SELECT tenant_id, event_id, received_at FROM default.identify_snapshots) ` +
  `SETTINGS mutations_sync = 2`;

/**
 * Moves the trait maps still in `events` to identify_snapshots. Idempotent and safe to interrupt:
 * a copy repeated collapses under FINAL (same key, same version), and maps are emptied only once
 * copied. Rows already in identify_snapshots under a later received_at keep winning under FINAL.
 */
export async function moveLegacySnapshots(client: ClickHouseClient, target: CompactorTarget): Promise<void> {
  await client.command({ query: copyLegacySnapshotsSql() });
  await target.alter(EMPTY_LEGACY_MAPS_MUTATION);
}
