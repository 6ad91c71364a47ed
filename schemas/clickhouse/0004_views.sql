-- Views for the common questions (DESIGN.md §4). All read `events FINAL`, so a redelivered
-- event stored twice is counted once here. A visitor is the user id when known, else the
-- anonymous id (so a visitor who identifies mid-day counts once per id that day).
-- TRICKY: a SELECT alias is visible in WHERE, so `assumeNotNull(x) AS x … WHERE x IS NOT NULL`
-- filters nothing. Rows are filtered in a subquery before the alias is introduced.
CREATE OR REPLACE VIEW daily_active_users AS
SELECT
    tenant_id,
    toDate(timestamp) AS day,
    uniqExact(visitor) AS users
FROM
(
    SELECT tenant_id, timestamp, coalesce(user_id, anonymous_id) AS visitor
    FROM events FINAL
)
WHERE visitor IS NOT NULL
GROUP BY tenant_id, day;

CREATE OR REPLACE VIEW sessions AS
SELECT
    tenant_id,
    assumeNotNull(sid) AS session_id,
    argMaxIf(user_id, timestamp, user_id IS NOT NULL) AS user_id,
    argMinIf(anonymous_id, timestamp, anonymous_id IS NOT NULL) AS anonymous_id,
    min(timestamp) AS started_at,
    max(timestamp) AS ended_at,
    count() AS events
FROM
(
    SELECT tenant_id, session_id AS sid, user_id, anonymous_id, timestamp
    FROM events FINAL
    WHERE session_id IS NOT NULL
)
GROUP BY tenant_id, sid;

CREATE OR REPLACE VIEW top_pages AS
SELECT
    tenant_id,
    assumeNotNull(page_path) AS path,
    count() AS views,
    uniqExact(coalesce(user_id, anonymous_id)) AS visitors
FROM
(
    SELECT tenant_id, path AS page_path, user_id, anonymous_id
    FROM events FINAL
    WHERE type = 'page' AND path IS NOT NULL
)
GROUP BY tenant_id, page_path;

CREATE OR REPLACE VIEW events_by_account AS
SELECT
    tenant_id,
    assumeNotNull(acc) AS account_id,
    toDate(timestamp) AS day,
    count() AS events,
    uniqExact(coalesce(user_id, anonymous_id)) AS users
FROM
(
    SELECT tenant_id, account_id AS acc, timestamp, user_id, anonymous_id
    FROM events FINAL
    WHERE account_id IS NOT NULL
)
GROUP BY tenant_id, acc, day;

CREATE OR REPLACE VIEW events_by_country AS
SELECT
    tenant_id,
    assumeNotNull(country) AS geo_country,
    toDate(timestamp) AS day,
    count() AS events,
    uniqExact(coalesce(user_id, anonymous_id)) AS users
FROM
(
    SELECT tenant_id, geo_country AS country, timestamp, user_id, anonymous_id
    FROM events FINAL
    WHERE geo_country IS NOT NULL
)
GROUP BY tenant_id, country, day;
