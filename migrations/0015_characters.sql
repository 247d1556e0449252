-- The character and style library (issue 22): named sets of reference images that /generate
-- sends with `character:<name>`. A member's own (`owner_id` = their user id) or their server's
-- shared style sheet (`owner_id` = '', saved by its moderators). `refs` is a JSON list of
-- {"key", "mime_type"}: objects under characters/ in the store (copied bytes, never links).
CREATE TABLE characters (
    id          TEXT PRIMARY KEY,
    guild_id    TEXT NOT NULL,
    owner_id    TEXT NOT NULL DEFAULT '',
    created_by  TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    name_key    TEXT NOT NULL,
    refs        TEXT NOT NULL DEFAULT '[]',
    created_at  TEXT NOT NULL
);

-- One name per owner in a server (case-insensitive: `name_key` is the folded name).
CREATE UNIQUE INDEX idx_characters_name ON characters (guild_id, owner_id, name_key);
