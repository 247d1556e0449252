-- Web gallery sessions, kept on the server so that signing out ends them: the session cookie
-- only carries a session's random id (signed), and a page is served only while its row is
-- here and unexpired. `server_ids` is the JSON array of servers the visitor shared with the
-- bot at sign-in, less those they have been seen to leave since (each server page checks the
-- membership again, as API tokens do).
CREATE TABLE web_sessions (
    id          TEXT PRIMARY KEY,
    discord_id  TEXT NOT NULL,
    name        TEXT NOT NULL,
    server_ids  TEXT NOT NULL,
    csrf        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);

-- Expired sessions are swept by time.
CREATE INDEX idx_web_sessions_expires ON web_sessions (expires_at);
