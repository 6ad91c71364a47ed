-- Tracklane's read-only analyst user for a ClickHouse SERVER (DESIGN.md §8). NOT a migration:
-- schemas/clickhouse/ holds the numbered migrations that run automatically; this file is applied
-- once by whoever runs the server, as a user allowed to manage access (access_management = 1).
--
-- What it gives: the user `tracklane_analyst`, which
--   * may SELECT the analyst tables and views only (events, identify_snapshots, users, accounts,
--     dead_letters, overwrite_requests, audit_log, violations, the views of 0004_views.sql and
--     events_with_traits of 0010_identify_snapshots.sql) — not the compactor's
--     tables (overwrite_values, overwrite_join/keys/…, suppressions, …) or tracklane_migrations;
--   * holds no other grant at all: no SOURCES (file, url, remote, s3, mysql, …), no dictGet, no
--     CREATE TEMPORARY TABLE (which table functions need), no introspection;
--   * runs with readonly = 1 and the bounds of libs/clickhouse/analyst-sql.ts
--     (DEFAULT_QUERY_LIMITS), which no statement can raise.
-- Tracklane sends readonly, the bounds and a tenant's additional_table_filters with every
-- request. A setting that is sent with the value the profile already has is not a change, so
-- only what Tracklane must change per request is CHANGEABLE_IN_READONLY: additional_table_filters
-- (the tenant) and the result bounds (its EXPLAIN steps read more rows than an answer may hold,
-- up to the MAX here). If you change Tracklane's limits, change them here too: a differing value
-- is refused (READONLY) and Tracklane answers with an infrastructure error, not a wrong bound.
--
-- Apply (replace the password hash first: echo -n 'the password' | sha256sum):
--   clickhouse-client --multiquery < schemas/clickhouse-server/analyst-user.sql
-- Re-applying is safe: the profile is replaced, the role's grants are reset to exactly these.
-- Another database than `default` (CLICKHOUSE_DATABASE): replace `default.` below.
-- A cluster (CLICKHOUSE_CLUSTER): add ON CLUSTER '{cluster}' to every statement, or keep users in
-- replicated access storage. Distributed reads run on the shards as the cluster's configured user
-- unless the cluster has a <secret>; with one, also GRANT SELECT on the same tables' `_local`.
--
-- Point Tracklane at it: give the analyst client (the tenant query path) this user's name and
-- password — an HTTP client of its own, response compression off (enable_http_compression is a
-- setting, and readonly refuses to change it) — and createAnalystSql({ engine: 'server',
-- tenantClient, operatorClient }). The operator path may keep Tracklane's own user: it also runs
-- with readonly = 1, the bounds, and no table function but generated rows.

CREATE SETTINGS PROFILE OR REPLACE tracklane_analyst SETTINGS
    readonly = 1,
    max_memory_usage = 536870912,
    max_rows_to_read = 100000000,
    max_bytes_to_read = 10737418240,
    read_overflow_mode = 'throw',
    max_result_rows = 10000 MAX 1000000 CHANGEABLE_IN_READONLY,
    max_result_bytes = 16777216 MAX 268435456 CHANGEABLE_IN_READONLY,
    result_overflow_mode = 'throw',
    max_execution_time = 20,
    timeout_overflow_mode = 'throw',
    max_bytes_before_external_group_by = 0,
    max_bytes_before_external_sort = 0,
    allow_ddl = 0,
    allow_introspection_functions = 0,
    additional_table_filters CHANGEABLE_IN_READONLY;

CREATE ROLE IF NOT EXISTS tracklane_analyst_reader;

-- exactly these grants, whatever the role held before (no SOURCES, no dictGet, nothing else)
REVOKE ALL ON *.* FROM tracklane_analyst_reader;

GRANT SELECT ON default.events TO tracklane_analyst_reader;
GRANT SELECT ON default.identify_snapshots TO tracklane_analyst_reader;
GRANT SELECT ON default.users TO tracklane_analyst_reader;
GRANT SELECT ON default.accounts TO tracklane_analyst_reader;
GRANT SELECT ON default.dead_letters TO tracklane_analyst_reader;
GRANT SELECT ON default.overwrite_requests TO tracklane_analyst_reader;
GRANT SELECT ON default.audit_log TO tracklane_analyst_reader;
GRANT SELECT ON default.violations TO tracklane_analyst_reader;
GRANT SELECT ON default.daily_active_users TO tracklane_analyst_reader;
GRANT SELECT ON default.sessions TO tracklane_analyst_reader;
GRANT SELECT ON default.top_pages TO tracklane_analyst_reader;
GRANT SELECT ON default.events_by_account TO tracklane_analyst_reader;
GRANT SELECT ON default.events_by_country TO tracklane_analyst_reader;
GRANT SELECT ON default.events_with_traits TO tracklane_analyst_reader;

CREATE USER IF NOT EXISTS tracklane_analyst
    IDENTIFIED WITH sha256_hash BY 'REPLACE_WITH_THE_SHA256_HEX_OF_THE_PASSWORD'
    HOST ANY
    SETTINGS PROFILE 'tracklane_analyst';

-- the user holds nothing directly; everything comes from the role
REVOKE ALL ON *.* FROM tracklane_analyst;
GRANT tracklane_analyst_reader TO tracklane_analyst;
ALTER USER tracklane_analyst DEFAULT ROLE tracklane_analyst_reader SETTINGS PROFILE 'tracklane_analyst';
