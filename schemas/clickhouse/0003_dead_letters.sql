-- dead_letters: poison or permanently failing records, with the stage and reason.
-- NOTE: a poison payload may carry PII (emails, IPs, traits) exactly as the client sent it,
-- so rows expire after 30 days; the TTL is the bound on how long such PII can linger here.
CREATE TABLE IF NOT EXISTS dead_letters
(
    tenant_id   LowCardinality(String),
    received_at DateTime64(3, 'UTC'),
    stage       LowCardinality(String),
    reason      String,
    event_id    Nullable(String),
    payload     String,
    error       Nullable(String)
)
ENGINE = MergeTree
PARTITION BY toYYYYMMDD(received_at)
ORDER BY (tenant_id, received_at)
TTL toDateTime(received_at) + INTERVAL 30 DAY DELETE
SETTINGS old_parts_lifetime = 30, ttl_only_drop_parts = 1;
