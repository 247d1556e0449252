-- What the deployment knows of Google's models, shared by every process (issue 19): the API's
-- models list as last read (`listed`), models retired by a 404 NOT_FOUND (`retired_at`: from
-- then on no process charges anyone for them), settings the API refused for a model we had to
-- guess the limits of (`refused`: {"sizes": [...], "ratios": [...], "thinking": [...]}), and
-- what the API said of a model's life in an answer (`notice`: its modelStatus, told once).
CREATE TABLE model_states (
    model             TEXT PRIMARY KEY,
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
