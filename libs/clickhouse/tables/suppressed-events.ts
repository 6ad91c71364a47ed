// The `suppressed_events` table (schemas/clickhouse/0007_suppressions.sql): events dropped
// because their user is suppressed, per request and day, a SummingMergeTree (counts add up on
// merge). Sinks write what they dropped, the compactor what it deleted; receipts sum it per
// request (libs/compactor/receipts.ts), so no row is read back as written.
import type { ClickHouseClient } from '@clickhouse/client';

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
type MissingSuppressedEventsColumns = Exclude<keyof SuppressedEventsRow, (typeof SUPPRESSED_EVENTS_COLUMNS)[number]>;
const allSuppressedEventsColumnsListed: MissingSuppressedEventsColumns extends never ? true : MissingSuppressedEventsColumns = true;
void allSuppressedEventsColumnsListed;

export async function insertSuppressedEvents(client: ClickHouseClient, rows: readonly SuppressedEventsRow[], table = 'suppressed_events'): Promise<void> {
  if (rows.length === 0) return;
  await client.insert({
    table,
    values: rows.map((r) => SUPPRESSED_EVENTS_COLUMNS.map((c) => r[c])),
    format: 'JSONCompactEachRow',
    columns: [...SUPPRESSED_EVENTS_COLUMNS],
  });
}
