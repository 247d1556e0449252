-- PostgreSQL's twin of migrations/0015_characters.sql: the character and style library
-- (issue 22), the same columns; `refs` is JSON text, as on SQLite.
CREATE TABLE characters (
    id          TEXT COLLATE "C" PRIMARY KEY,
    guild_id    TEXT COLLATE "C" NOT NULL,
    owner_id    TEXT COLLATE "C" NOT NULL DEFAULT '',
    created_by  TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    name_key    TEXT COLLATE "C" NOT NULL,
    refs        TEXT NOT NULL DEFAULT '[]',
    created_at  TEXT COLLATE "C" NOT NULL
);

CREATE UNIQUE INDEX idx_characters_name ON characters (guild_id, owner_id, name_key);
