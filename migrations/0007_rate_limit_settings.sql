-- Per-member rate limits a server may set with /settings (stricter than the host's
-- RATE_LIMITS): a JSON object of action -> uses a minute, only the actions it set; NULL = the
-- host's defaults.
ALTER TABLE guild_settings ADD COLUMN rate_limits TEXT;
