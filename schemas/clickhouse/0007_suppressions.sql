-- Suppression (issue 4): an erasure with `suppress` drops the user's later events — counted,
-- never silently. The sink keeps these in memory (libs/compactor/overwrite-registry.ts); a user
-- suppressed twice has two rows, and the earliest decides (read with min(requested_at)).
-- NOTE: the user id only as its sha256 (a user id may be an email, and a deleted user must
-- leave no PII behind); the sink hashes an event's user id to look it up.
CREATE TABLE IF NOT EXISTS suppressions
(
    tenant_id       LowCardinality(String),
    subject_id_hash String,
    request_id      String,
    requested_at    DateTime64(3, 'UTC'),
    -- when the compactor wrote it (ClickHouse's clock): sinks poll for new rows by this
    registered_at   DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
ORDER BY (tenant_id, subject_id_hash);

-- Fleet sinks poll overwrite_values for rows newer than the last they saw: by the time the
-- compactor wrote them, not by requested_at (a request can be applied long after it was made).
ALTER TABLE overwrite_values ADD COLUMN IF NOT EXISTS registered_at DateTime64(3, 'UTC') DEFAULT now64(3);
-- The subject id only as its sha256 from now on (rows outlive the request by the race window);
-- `id` is left empty. Rows written before hold the id and get the hash computed from it.
ALTER TABLE overwrite_values ADD COLUMN IF NOT EXISTS id_hash String DEFAULT lower(hex(SHA256(id)));

-- Events dropped because their user is suppressed, per request and day (summed on merge);
-- GET /v1/admin/requests/{id} reports them as suppressedEvents.
CREATE TABLE IF NOT EXISTS suppressed_events
(
    tenant_id  LowCardinality(String),
    request_id String,
    day        Date,
    events     UInt64
)
ENGINE = SummingMergeTree
ORDER BY (tenant_id, request_id, day);

-- The batch's suppressed (tenant, user) keys: events received after the request but stored
-- before the sinks knew of it are deleted by the compactor (counted in suppressed_events).
CREATE TABLE IF NOT EXISTS overwrite_suppress_keys
(
    tenant_id String,
    id        String
)
ENGINE = Set;

-- Hashes (cityHash64(payload, error)) of the dead letters a batch deletes because they hold
-- an old value: the mutation names this table, never a value.
CREATE TABLE IF NOT EXISTS overwrite_dead_letter_hashes
(
    h UInt64
)
ENGINE = Set;

-- The batch's deleted subjects (mode delete): every row of theirs leaves users/accounts, the
-- scrubbed tombstone included, once the merge made it the only one.
CREATE TABLE IF NOT EXISTS overwrite_erase_keys
(
    subject   String,
    tenant_id String,
    id        String
)
ENGINE = Set;
