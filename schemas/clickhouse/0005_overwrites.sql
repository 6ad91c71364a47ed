-- Retroactive overwrites (DESIGN.md §5, libs/compactor): receipts, the staging / registry of
-- requested values, and the lookup tables a mutation reads its values from.
--
-- TRICKY: ClickHouse keeps every mutation's text in system.mutations (and query_log), so a
-- mutation must never carry a PII value. The compactor loads the batch's new values into
-- `overwrite_join` (Join engine) and its keys into `overwrite_keys` (Set engine); the
-- mutation text only names those tables: joinGet('default.overwrite_join', …) for values,
-- `IN default.overwrite_keys` for the rows to touch. Both are fully qualified because a
-- mutation runs without a current database.

-- overwrite_requests: one receipt per request_id, latest version wins.
-- NOTE: never the clear subject id (a user id may be an email): only its sha256.
CREATE TABLE IF NOT EXISTS overwrite_requests
(
    request_id      String,
    tenant_id       LowCardinality(String),
    subject         LowCardinality(String),
    subject_id_hash String,
    mode            LowCardinality(String),
    status          LowCardinality(String),
    rows_rewritten  Map(String, UInt64),
    reason          Nullable(String),
    attempts        UInt16,
    requested_at    DateTime64(3, 'UTC'),
    applied_at      Nullable(DateTime64(3, 'UTC')),
    verified_at     Nullable(DateTime64(3, 'UTC')),
    version         UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (request_id)
SETTINGS old_parts_lifetime = 1, cleanup_delay_period = 1, max_cleanup_delay_period = 1;

-- overwrite_values: the NEW values of every request (never the old ones), one row per
-- attribute. It is the durable half of the overwrite registry the sink consults for events
-- received before a request but sunk after it (libs/compactor/overwrite-registry.ts).
-- new_value NULL = the attribute is cleared. Rows expire: the race window is minutes, and an
-- erased user's anonymized values need not live forever.
CREATE TABLE IF NOT EXISTS overwrite_values
(
    request_id   String,
    tenant_id    LowCardinality(String),
    subject      LowCardinality(String),
    id           String,
    attr         String,
    new_value    Nullable(String),
    mode         LowCardinality(String),
    delete_events UInt8,
    requested_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY (tenant_id, subject, id, request_id, attr)
TTL toDateTime(requested_at) + INTERVAL 30 DAY DELETE
SETTINGS old_parts_lifetime = 1, cleanup_delay_period = 1, max_cleanup_delay_period = 1;

-- The batch being applied, keyed by (subject, tenant_id, id): `repl` maps an events map key
-- (e.g. firstName) to its new JSON-encoded value, `drop_keys` the keys to remove (cleared
-- attributes). Truncated and refilled per batch; one compactor per deployment applies
-- batches one at a time.
CREATE TABLE IF NOT EXISTS overwrite_join
(
    subject      String,
    tenant_id    String,
    id           String,
    repl         Map(String, String),
    drop_keys    Array(String),
    requested_at DateTime64(3, 'UTC')
)
ENGINE = Join(ANY, LEFT, subject, tenant_id, id);

CREATE TABLE IF NOT EXISTS overwrite_keys
(
    subject   String,
    tenant_id String,
    id        String
)
ENGINE = Set;

-- The batch's (tenant, user) keys whose events are deleted (mode delete + delete_events).
CREATE TABLE IF NOT EXISTS overwrite_delete_keys
(
    tenant_id String,
    id        String
)
ENGINE = Set;

-- NOTE: events/users/accounts get old_parts_lifetime = 1 s and 1 s cleanup periods from the
-- compactor at start (ALTER … MODIFY SETTING, idempotent; libs/compactor/compactor.ts), as
-- migrations hold CREATE statements only (libs/clickhouse/migrate.test.ts). Measured on chDB
-- 3.4: with old_parts_lifetime = 1 alone an outdated part lived 33–38 s (the cleanup task
-- backs off up to max_cleanup_delay_period); with the cleanup periods at 1 s, ≈ 5 s.
