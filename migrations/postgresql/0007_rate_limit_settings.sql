-- PostgreSQL's twin of migrations/0007_rate_limit_settings.sql: per-member rate limits a server
-- may set with /settings (a JSON object of action -> uses a minute; NULL = the host's).
ALTER TABLE guild_settings ADD COLUMN rate_limits TEXT;
