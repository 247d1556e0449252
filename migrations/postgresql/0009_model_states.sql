-- PostgreSQL's twin of migrations/0009_model_states.sql (the same table and columns): what the
-- deployment knows of Google's models, shared by every process. `listed` is 0/1 and the JSON
-- columns are text, as on SQLite, so the repository reads both the same way.
CREATE TABLE model_states (
    model             TEXT COLLATE "C" PRIMARY KEY,
    display_name      TEXT,
    listed            INTEGER NOT NULL DEFAULT 0,
    methods           TEXT NOT NULL DEFAULT '[]',
    input_token_limit INTEGER,
    listed_at         TEXT,
    retired_at        TEXT,
    retired_reason    TEXT,
    refused           TEXT NOT NULL DEFAULT '{}',
    notice            TEXT,
    updated_at        TEXT NOT NULL
);
