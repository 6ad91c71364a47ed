-- audit_log: one row per admin-scope action and credential change (issue 11): who (credential
-- kind and key id, never a secret), what (action, outcome, HTTP status), on which tenant, from
-- where (the client address masked to /24 or /48), under which request id.
-- NOTE: never a PII value: subject ids appear only as the keyed hash of receipts
-- (libs/compactor/subject-hash.ts), key names and values of overwrites never at all.
-- Tenants read their own rows through the tenant query API (additional_table_filters on
-- tenant_id); operator-level rows of no tenant have tenant_id ''.
CREATE TABLE IF NOT EXISTS audit_log
(
    at              DateTime64(3, 'UTC'),
    tenant_id       LowCardinality(String),
    credential_kind LowCardinality(String),
    key_id          String,
    action          LowCardinality(String),
    request_id      String,
    outcome         LowCardinality(String),
    status          UInt16,
    source          String,
    details         Map(String, String)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (tenant_id, at)
TTL toDateTime(at) + INTERVAL 400 DAY DELETE;
