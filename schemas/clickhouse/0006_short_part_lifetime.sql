-- Superseded parts of the tables the compactor rewrites (dead_letters: it deletes those
-- holding an old value) (DESIGN.md §5 step 3): a mutation or
-- merge leaves the old part on disk, inactive, for old_parts_lifetime (8 minutes by default),
-- and it still holds the overwritten values. Keep that as short as the engine allows.
-- Measured on chDB 3.4: with old_parts_lifetime = 1 alone an outdated part lived 33–38 s
-- (the cleanup task backs off up to max_cleanup_delay_period); with the cleanup periods at
-- 1 s, about 5 s. The compactor checks system.parts before it verifies.
-- NOTE: ALTER … MODIFY SETTING is idempotent: re-applying it changes nothing.
ALTER TABLE events MODIFY SETTING old_parts_lifetime = 1, cleanup_delay_period = 1, max_cleanup_delay_period = 1;
ALTER TABLE users MODIFY SETTING old_parts_lifetime = 1, cleanup_delay_period = 1, max_cleanup_delay_period = 1;
ALTER TABLE accounts MODIFY SETTING old_parts_lifetime = 1, cleanup_delay_period = 1, max_cleanup_delay_period = 1;
ALTER TABLE dead_letters MODIFY SETTING old_parts_lifetime = 1, cleanup_delay_period = 1, max_cleanup_delay_period = 1;
