-- Pseudonym keys (DESIGN.md §3, libs/privacy): the second copy of every stored key version,
-- wrapped (AES-256-GCM under a key derived from TRACKLANE_MASTER_KEY, libs/privacy/key-wrap.ts),
-- beside the key store (Redis in the fleet, the data dir embedded). Not an analyst table: the
-- analyst user gets no grant on it and tenant queries refuse it (analyst-settings.ts).
-- A shred deletes the version's rows with a mutation; old_parts_lifetime keeps the superseded
-- part (which still holds the row) on disk for seconds only, and the keeper waits for it to go.
CREATE TABLE IF NOT EXISTS pseudonym_keys
(
    tenant_id      LowCardinality(String),
    version        UInt32,
    wrapped_base64 String,
    created_at     DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(created_at)
ORDER BY (tenant_id, version)
SETTINGS old_parts_lifetime = 1, cleanup_delay_period = 1, max_cleanup_delay_period = 1;

-- pseudonym_key_shreds: the receipt of each shredded version, latest row wins. It names where
-- copies were destroyed (place → entries) and the copies outside Tracklane's reach that are
-- the operator's to purge (backups, Redis persistence files, filesystem blocks).
CREATE TABLE IF NOT EXISTS pseudonym_key_shreds
(
    tenant_id      LowCardinality(String),
    version        UInt32,
    status         LowCardinality(String),
    destroyed      Map(String, UInt64),
    remaining      Array(String),
    outside_copies Array(String),
    reason         Nullable(String),
    verified_at    Nullable(DateTime64(3, 'UTC')),
    updated_at     DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (tenant_id, version);
