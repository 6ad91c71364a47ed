-- users / accounts: current attributes, one full snapshot per version (DESIGN.md §4).
-- NOTE: every row is a complete snapshot, never a partial update: the sink merges an
-- identify's traits into the stored row before inserting (libs/sink/dimension-merge.ts),
-- and the compactor writes whole rows too. version = received_at in ms for pipeline
-- writes, the request time for overwrites; is_deleted = 1 hides the key from FINAL.
-- Reserved traits live in their columns only; `traits` holds the rest (JSON-encoded values).
CREATE TABLE IF NOT EXISTS users
(
    tenant_id           LowCardinality(String),
    user_id             String,
    email               Nullable(String),
    first_name          Nullable(String),
    last_name           Nullable(String),
    name                Nullable(String),
    phone               Nullable(String),
    title               Nullable(String),
    company             Nullable(String),
    account_id          Nullable(String),
    traits              Map(String, String),
    first_seen          DateTime64(3, 'UTC'),
    last_seen           DateTime64(3, 'UTC'),
    identity_anonymized UInt8,
    version             UInt64,
    is_deleted          UInt8,
    updated_at          DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY (tenant_id, user_id)
SETTINGS old_parts_lifetime = 30;

CREATE TABLE IF NOT EXISTS accounts
(
    tenant_id   LowCardinality(String),
    account_id  String,
    domain      Nullable(String),
    source      LowCardinality(String),
    name        Nullable(String),
    traits      Map(String, String),
    version     UInt64,
    is_deleted  UInt8,
    updated_at  DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY (tenant_id, account_id)
SETTINGS old_parts_lifetime = 30;
