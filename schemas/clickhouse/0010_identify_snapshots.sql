-- identify_snapshots: the trait snapshots events carry (DESIGN.md §4 "identify history"), in a
-- narrow table of their own, written by the sink beside `events` (libs/sink/clickhouse-sink.ts).
-- One row per event whose `traits` (identify: the user's traits) or `account_traits` (group: the
-- account's) is not empty; from this migration on the sink writes those maps here and leaves
-- them empty in `events`.
--
-- NOTE: this is where the compactor rewrites old PII (libs/compactor/mutation-sql.ts): an
-- attribute overwrite mutates this table, `users` and `accounts`, never `events`, so its cost
-- follows the identify history rather than the size of `events`.
-- NOTE: rows written to `events` before this migration hold their maps there, and a migration
-- holds CREATE statements only: the compactor moves them (libs/compactor/legacy-snapshots.ts) at
-- the start of a round that finds any (eventsHoldSnapshots, asked every round and again when it
-- verifies), and rewrites and verifies `events` too while any remain.
-- TRICKY: same dedup key, version and partitioning as `events` (see 0001_events.sql): a
-- redelivered event's snapshot collapses with its first copy under FINAL and in merges.
-- Deleting a user's events (erasure with deleteEvents, suppression) deletes these rows too.
CREATE TABLE IF NOT EXISTS identify_snapshots
(
    tenant_id      LowCardinality(String),
    event_id       String,
    type           LowCardinality(String),
    user_id        Nullable(String),
    anonymous_id   Nullable(String),
    account_id     Nullable(String),
    timestamp      DateTime64(3, 'UTC'),
    client_ts      DateTime64(3, 'UTC'),
    received_at    DateTime64(3, 'UTC'),
    -- identify: the user's traits as sent (JSON-encoded values)
    traits         Map(String, String),
    -- group: the account's traits as sent
    account_traits Map(String, String)
)
ENGINE = ReplacingMergeTree(received_at)
PARTITION BY toYYYYMM(client_ts)
ORDER BY (tenant_id, event_id)
SETTINGS old_parts_lifetime = 1, cleanup_delay_period = 1, max_cleanup_delay_period = 1;

-- events_with_traits: `events FINAL` as analysts read it before the snapshots moved, every
-- column in its place, `traits` / `account_traits` joined back from identify_snapshots.
-- Analysts who read identify traits read this view (or identify_snapshots FINAL directly);
-- the other shipped views (0004) never read the trait maps and are unchanged.
-- TRICKY: GLOBAL: on a cluster both tables are Distributed, and a plain JOIN of one inside a
-- query on the other is refused (distributed_product_mode = 'deny'); GLOBAL runs the snapshot side
-- once (under the tenant's row filter) and ships it to the shards. On one node it changes nothing.
-- NOTE: an event written before migration 0010 and not yet moved has its maps in `events` and no
-- snapshot row; any other has them here and empty maps in `events`: the view takes whichever is set.
CREATE OR REPLACE VIEW events_with_traits AS
SELECT
    e.* REPLACE (
        if(notEmpty(s.traits), s.traits, e.traits) AS traits,
        if(notEmpty(s.account_traits), s.account_traits, e.account_traits) AS account_traits
    )
FROM events AS e FINAL
GLOBAL LEFT JOIN (SELECT tenant_id, event_id, traits, account_traits FROM identify_snapshots FINAL) AS s
    ON s.tenant_id = e.tenant_id AND s.event_id = e.event_id;
