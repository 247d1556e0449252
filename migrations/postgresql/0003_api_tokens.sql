-- Personal API tokens (`/token`): each belongs to one member and the server it was made in.
-- Only a SHA-256 hash of the token is kept; `prefix` (its first characters) is what listings
-- show. PostgreSQL's twin of migrations/0003_api_tokens.sql (text sorts by code point, as on
-- SQLite).

CREATE TABLE api_tokens (
    id           TEXT COLLATE "C" PRIMARY KEY,
    user_id      TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The server (snowflake as text) the token acts in.
    guild_id     TEXT COLLATE "C" NOT NULL,
    name         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    prefix       TEXT NOT NULL,
    created_at   TEXT COLLATE "C" NOT NULL,
    last_used_at TEXT COLLATE "C",
    revoked_at   TEXT COLLATE "C"
);

-- A member's tokens in a server, newest first (`/token list`).
CREATE INDEX idx_api_tokens_user_guild ON api_tokens (user_id, guild_id, created_at);
