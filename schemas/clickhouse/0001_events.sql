-- events: one row per accepted event (DESIGN.md §4). Dedup key is (tenant_id, event_id).
--
-- TRICKY: a client retry re-sends the same messageId in a new HTTP request, so the
-- collector stamps a new received_at (and the batch a new sent_at), and the corrected
-- `timestamp` (= received_at - (sent_at - client timestamp)) moves with them. Anything
-- derived from those may differ between two copies of one event. ReplacingMergeTree only
-- collapses rows with an equal sorting key, and background merges only happen inside one
-- partition, so:
--   * ORDER BY is exactly the dedup key (tenant_id, event_id): unique per event and
--     identical on every redelivery.
--   * PARTITION BY the month of `client_ts`, the client's own timestamp reconstructed by
--     the sink (timestamp + sent_at - received_at); it is the same on a retry, so copies
--     land in one partition and merges physically collapse them. Where it cannot be
--     reconstructed exactly (clamped timestamps, no sent_at) a copy may land in another
--     month: SELECT … FINAL still returns one row, because FINAL merges across partitions
--     when the partition key is not part of the sorting key (checked in
--     test/clickhouse/sink.integration.test.ts). Never add
--     do_not_merge_across_partitions_select_final=1 for this table.
--   * time-range scans prune by partition (month) and by the minmax index on timestamp.
-- Version = received_at: the latest delivery wins.
-- NOTE: old_parts_lifetime is short so superseded parts (after merges and the compactor's
-- forced merges / mutations) are physically removed within seconds, not minutes.
CREATE TABLE IF NOT EXISTS events
(
    tenant_id           LowCardinality(String),
    event_id            String,
    type                LowCardinality(String),
    event               Nullable(String),
    user_id             Nullable(String),
    anonymous_id        Nullable(String),
    previous_id         Nullable(String),
    session_id          Nullable(String),
    account_id          Nullable(String),
    account_source      LowCardinality(Nullable(String)),
    account_domain      Nullable(String),
    timestamp           DateTime64(3, 'UTC'),
    client_ts           DateTime64(3, 'UTC'),
    sent_at             Nullable(DateTime64(3, 'UTC')),
    received_at         DateTime64(3, 'UTC'),
    timestamp_clamped   UInt8,
    ip                  Nullable(String),
    user_agent          Nullable(String),
    geo_country         LowCardinality(Nullable(String)),
    geo_region          LowCardinality(Nullable(String)),
    geo_city            LowCardinality(Nullable(String)),
    geo_lat             Nullable(Float64),
    geo_lon             Nullable(Float64),
    geo_timezone        LowCardinality(Nullable(String)),
    ip_asn              Nullable(UInt32),
    ip_org              LowCardinality(Nullable(String)),
    ua_browser          LowCardinality(Nullable(String)),
    ua_browser_version  LowCardinality(Nullable(String)),
    ua_os               LowCardinality(Nullable(String)),
    ua_os_version       LowCardinality(Nullable(String)),
    ua_device_type      LowCardinality(Nullable(String)),
    url                 Nullable(String),
    path                Nullable(String),
    referrer            Nullable(String),
    title               Nullable(String),
    search              Nullable(String),
    locale              LowCardinality(Nullable(String)),
    element_tag         LowCardinality(Nullable(String)),
    element_id          Nullable(String),
    element_classes     Array(String),
    element_label       Nullable(String),
    element_href        Nullable(String),
    properties          Map(String, String),
    -- the identify trait snapshot: where old PII lives; the compactor rewrites it
    traits              Map(String, String),
    account_traits      Map(String, String),
    identity_anonymized UInt8,
    key_version         UInt16,
    INDEX idx_timestamp timestamp TYPE minmax GRANULARITY 1,
    INDEX idx_user_id user_id TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = ReplacingMergeTree(received_at)
PARTITION BY toYYYYMM(client_ts)
ORDER BY (tenant_id, event_id)
SETTINGS old_parts_lifetime = 30;
