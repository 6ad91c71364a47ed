// The `suppressed_events` table (schemas/clickhouse/0007_suppressions.sql): events dropped
// because their user is suppressed, per request and day, a SummingMergeTree (counts add up on
// merge). Sinks write what they dropped, the compactor what it deleted; receipts sum it per
// request (libs/compactor/receipts.ts), so no row is read back as written.
import type { ClickHouseClient } from '@clickhouse/client';
import { insertRows, type AllColumnsListed } from './table-columns.js';

/** One row of `suppressed_events`: a count to add. */
export interface SuppressedEventsRow {
  tenant_id: string;
  /** '' when the request is not known */
  request_id: string;
  /** the UTC day the events were received, YYYY-MM-DD */
  day: string;
  events: number;
}

export const SUPPRESSED_EVENTS_COLUMNS = ['tenant_id', 'request_id', 'day', 'events'] as const satisfies readonly (keyof SuppressedEventsRow)[];

// Compile-time guard: SUPPRESSED_EVENTS_COLUMNS names every SuppressedEventsRow key.
const allSuppressedEventsColumnsListed: AllColumnsListed<SuppressedEventsRow, typeof SUPPRESSED_EVENTS_COLUMNS> = true;
void allSuppressedEventsColumnsListed;

export async function insertSuppressedEvents(client: ClickHouseClient, rows: readonly SuppressedEventsRow[], table = 'suppressed_events'): Promise<void> {
  await insertRows(client, table, SUPPRESSED_EVENTS_COLUMNS, rows);
}
