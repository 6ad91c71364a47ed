// The `violations` table (schemas/clickhouse/0013_violations.sql): one row per tracking plan
// violation (issue 16 item 6), a MergeTree kept 90 days (TTL); written by the collector's
// violation writer (libs/plans/violation-writer.ts), read by tenants through the query API.
// NOTE: never an event's value: rules are schema paths, properties are key paths.
import type { ClickHouseClient } from '@clickhouse/client';
import { VIOLATION_ACTIONS, type ViolationAction } from '../../plans/plan-judge.js';
import { ms, num, oneOf, selectList, str, type JsonRow } from './row-values.js';
import { insertRows, type AllColumnsListed } from './table-columns.js';

/** One row of `violations`; times in ms. */
export interface ViolationRow {
  tenant_id: string;
  received_at: number;
  event_id: string;
  event_type: string;
  /** the track event name; '' for identify */
  event_name: string;
  plan_version: number;
  action: ViolationAction;
  /** schema path of the failed keyword (`#/properties/price/type`), or `unplanned` */
  rule: string;
  keyword: string;
  /** JSON pointer into the event: `/properties/price`, `/traits/email`; '' for the whole event */
  property: string;
  reason: string;
}

export const VIOLATION_COLUMNS = ['tenant_id', 'received_at', 'event_id', 'event_type', 'event_name', 'plan_version', 'action', 'rule', 'keyword', 'property', 'reason'] as const satisfies readonly (keyof ViolationRow)[];

// Compile-time guard: VIOLATION_COLUMNS names every ViolationRow key.
const allViolationColumnsListed: AllColumnsListed<ViolationRow, typeof VIOLATION_COLUMNS> = true;
void allViolationColumnsListed;

/** SELECT list whose rows parseViolationRow reads. */
export const VIOLATION_SELECT = selectList(VIOLATION_COLUMNS, new Set(['received_at']));

export function parseViolationRow(r: JsonRow): ViolationRow {
  return {
    tenant_id: str(r.tenant_id),
    received_at: ms(r.received_at),
    event_id: str(r.event_id),
    event_type: str(r.event_type),
    event_name: str(r.event_name),
    plan_version: num(r.plan_version),
    action: oneOf(VIOLATION_ACTIONS, r.action, 'action'),
    rule: str(r.rule),
    keyword: str(r.keyword),
    property: str(r.property),
    reason: str(r.reason),
  };
}

export async function insertViolations(client: ClickHouseClient, rows: readonly ViolationRow[], table = 'violations'): Promise<void> {
  await insertRows(client, table, VIOLATION_COLUMNS, rows);
}
