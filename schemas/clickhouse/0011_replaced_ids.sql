-- Erasures that leave no linkable id (issue 15 item 3, libs/compactor/replaced-ids.ts): the
-- subject's kept events carry one random, unlinkable id instead of its clear id or any
-- pseudonym of it.
--
-- The round's (tenant, old id) → new id, and the keys whose rows a mutation re-keys: filled
-- per round and emptied after it, like overwrite_join (0005): the mutation text names these
-- tables, never an id.
CREATE TABLE IF NOT EXISTS overwrite_id_join
(
    tenant_id    String,
    id           String,
    new_id       String,
    requested_at DateTime64(3, 'UTC')
)
ENGINE = Join(ANY, LEFT, tenant_id, id);

CREATE TABLE IF NOT EXISTS overwrite_replace_keys
(
    tenant_id String,
    id        String
)
ENGINE = Set;

-- The round's verified replacing requests: their new ids leave replaced_ids.
CREATE TABLE IF NOT EXISTS overwrite_replaced_requests
(
    request_id String
)
ENGINE = Set;

-- replaced_ids: the new id of each replacing request, sealed (AES-256-GCM under the overwrite
-- records' key, bound to request, tenant and subject hash), for the sinks: an event received
-- before the request but sunk after it takes the same new id. NOTE: `sealed` is kept only until
-- the request is verified (the compactor empties it then): afterwards nothing links the new id
-- to the old one, and the row only tells sinks that the subject's id was replaced (a straggler
-- takes a random id of its own). The TTL is the overwrite registry's race window.
CREATE TABLE IF NOT EXISTS replaced_ids
(
    request_id   String,
    tenant_id    LowCardinality(String),
    id_hash      String,
    sealed       String,
    requested_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY (tenant_id, id_hash, request_id)
TTL toDateTime(requested_at) + INTERVAL 30 DAY DELETE
SETTINGS old_parts_lifetime = 1, cleanup_delay_period = 1, max_cleanup_delay_period = 1;
