-- Opt-in translation of history (issue 15 item 2, libs/compactor/history-translation.ts): a
-- tenant's clear identify ids received before `anonymizeSince` become their pseudonyms under the
-- current key version. NOTE: CREATE statements only — the rewrite itself is a code step of the
-- compactor, never a migration (libs/clickhouse/migrate.test.ts).

-- history_translations: one receipt per translation request, latest version wins. Written
-- `pending` (version 0) by the API, then by the compactor, which polls for pending ones.
-- NOTE: no id and no value, only counts.
CREATE TABLE IF NOT EXISTS history_translations
(
    request_id      String,
    tenant_id       LowCardinality(String),
    status          LowCardinality(String),
    key_version     UInt16,
    anonymize_since DateTime64(3, 'UTC'),
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

-- The lookup tables a translation's mutations read (filled on every node, emptied after it,
-- like overwrite_join in 0005): the mutation text names them, never an id or a value.
-- TRICKY: named overwrite_* so the compactor's KILL of its unfinished mutations
-- (compactor-target.ts) stops a failed translation's too; a translation never runs alongside an
-- overwrite batch (the compactor's lease / the embedded runner's exclusive section).

-- The tenant being translated: its PII trait names, its anonymizeSince, the target version.
CREATE TABLE IF NOT EXISTS overwrite_translation_tenant
(
    tenant_id   String,
    pii_traits  Array(String),
    since       DateTime64(3, 'UTC'),
    key_version UInt16
)
ENGINE = Join(ANY, LEFT, tenant_id);

CREATE TABLE IF NOT EXISTS overwrite_translation_tenants
(
    tenant_id String
)
ENGINE = Set;

-- (tenant, clear identify id) → its pseudonym under the target version
CREATE TABLE IF NOT EXISTS overwrite_translation_ids
(
    tenant_id String,
    id        String,
    pseudonym String
)
ENGINE = Join(ANY, LEFT, tenant_id, id);

-- the same clear ids as keys: the rows re-keyed away from them (users) and the verification
CREATE TABLE IF NOT EXISTS overwrite_translation_id_keys
(
    tenant_id String,
    id        String
)
ENGINE = Set;

-- (tenant, stored JSON-encoded trait value) → the JSON-encoded pseudonym of its value: the
-- values of the tenant's PII traits (any_key = 0: under those keys only), and every clear
-- identify id as a JSON string (any_key = 1: under any key — a trait holding the id is the id)
CREATE TABLE IF NOT EXISTS overwrite_translation_values
(
    tenant_id String,
    value     String,
    hashed    String,
    any_key   UInt8
)
ENGINE = Join(ANY, LEFT, tenant_id, value);

-- hashes (cityHash64(payload, error)) of the dead letters the translation deletes
CREATE TABLE IF NOT EXISTS overwrite_translation_dead_letters
(
    h UInt64
)
ENGINE = Set;
