-- PostgreSQL's twin of migrations/0008_web_sessions.sql: web gallery sessions kept on the
-- server, so that signing out ends them (text sorts by code point, as on SQLite).
CREATE TABLE web_sessions (
    id          TEXT COLLATE "C" PRIMARY KEY,
    discord_id  TEXT COLLATE "C" NOT NULL,
    name        TEXT NOT NULL,
    server_ids  TEXT NOT NULL,
    csrf        TEXT COLLATE "C" NOT NULL,
    created_at  TEXT COLLATE "C" NOT NULL,
    expires_at  TEXT COLLATE "C" NOT NULL
);

CREATE INDEX idx_web_sessions_expires ON web_sessions (expires_at);
