-- PostgreSQL's twin of migrations/0014_conversations.sql (the same tables, columns and
-- indexes; text compared by code point, COLLATE "C", as on SQLite): conversations and their
-- turns, each turn one paid image job.
CREATE TABLE conversations (
    id            TEXT COLLATE "C" PRIMARY KEY,
    user_id       TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    guild_id      TEXT COLLATE "C",
    root_image_id TEXT COLLATE "C" NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    branched_from TEXT COLLATE "C",
    channel_id    TEXT COLLATE "C",
    thread_id     TEXT COLLATE "C" UNIQUE,
    created_at    TEXT COLLATE "C" NOT NULL,
    updated_at    TEXT COLLATE "C" NOT NULL
);
CREATE INDEX idx_conversations_user ON conversations (user_id, created_at DESC, id DESC);
CREATE INDEX idx_conversations_root ON conversations (root_image_id);

CREATE TABLE conversation_turns (
    id              TEXT COLLATE "C" PRIMARY KEY,
    conversation_id TEXT COLLATE "C" NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    position        INTEGER NOT NULL CHECK (position >= 1),
    job_id          TEXT COLLATE "C" NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    prompt          TEXT NOT NULL,
    undone_at       TEXT COLLATE "C",
    created_at      TEXT COLLATE "C" NOT NULL
);
CREATE INDEX idx_conversation_turns_order
    ON conversation_turns (conversation_id, position, created_at);
CREATE INDEX idx_conversation_turns_job ON conversation_turns (job_id);
