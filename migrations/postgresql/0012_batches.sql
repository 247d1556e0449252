-- PostgreSQL's twin of migrations/0012_batches.sql: the most images one /generate may ask for
-- in a server (1-4; NULL = the default, 4).
ALTER TABLE guild_settings ADD COLUMN max_batch INTEGER;
