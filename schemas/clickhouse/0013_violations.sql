-- violations: what tracking plans found in events (issue 16 item 6, libs/plans/): one row per
-- violation, written by the collector (libs/plans/violation-writer.ts) whatever the plan did
-- about it (flagged: stored as is; omitted: stored without the property; blocked: dropped).
-- NOTE: never the offending value — the rule is a schema path, the property path is made of
-- keys, the reason is the validator's message built from the schema. Tenants read their own rows
-- through the tenant query API (additional_table_filters on tenant_id). Kept 90 days: it is
-- operational data (what to fix in an instrumentation), not history.
CREATE TABLE IF NOT EXISTS violations
(
    tenant_id    LowCardinality(String),
    received_at  DateTime64(3, 'UTC'),
    event_id     String,
    event_type   LowCardinality(String),
    event_name   String,
    plan_version UInt32,
    action       LowCardinality(String),
    rule         String,
    keyword      LowCardinality(String),
    property     String,
    reason       String
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(received_at)
ORDER BY (tenant_id, received_at)
TTL toDateTime(received_at) + INTERVAL 90 DAY DELETE;
