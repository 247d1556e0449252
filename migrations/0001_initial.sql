-- The seed's data layer (users, images) plus Discord identity and a coin ledger.
-- Kept compatible with Cloudflare D1 (SQLite). Ids are UUID text; times are ISO-8601 UTC text
-- with microseconds and a trailing Z, so text order is time order.

CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL,
    checksum   TEXT    NOT NULL,
    applied_at TEXT    NOT NULL
);

CREATE TABLE users (
    id           TEXT    PRIMARY KEY,
    email        TEXT    UNIQUE,
    google_id    TEXT    UNIQUE,
    -- Snowflakes as text: they exceed JavaScript's safe integers (D1 clients are JS).
    discord_id   TEXT    UNIQUE,
    first_name   TEXT,
    last_name    TEXT,
    display_name TEXT,
    roles        TEXT    NOT NULL DEFAULT '["USER"]' CHECK (json_valid(roles)),
    language     TEXT    NOT NULL DEFAULT 'en',
    coins        INTEGER NOT NULL DEFAULT 0 CHECK (coins >= 0),
    created_at   TEXT    NOT NULL,
    updated_at   TEXT    NOT NULL
);

CREATE TABLE images (
    id            TEXT    PRIMARY KEY,
    user_id       TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    type          TEXT    NOT NULL CHECK (type IN ('GENERATED', 'UPLOADED')),
    status        TEXT    NOT NULL DEFAULT 'PENDING'
                          CHECK (status IN ('PENDING', 'PROCESSING', 'COMPLETED', 'FAILED')),
    title         TEXT,
    description   TEXT,
    prompt        TEXT,
    storage_key   TEXT,
    storage_url   TEXT,
    thumbnail_key TEXT,
    thumbnail_url TEXT,
    metadata      TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(metadata)),
    coins_used    INTEGER NOT NULL DEFAULT 0 CHECK (coins_used >= 0),
    created_at    TEXT    NOT NULL,
    updated_at    TEXT    NOT NULL
);

-- The gallery reads newest first by keyset (created_at, id); never by OFFSET.
CREATE INDEX idx_images_user_created ON images (user_id, created_at DESC, id DESC);
CREATE INDEX idx_images_user_type_created ON images (user_id, type, created_at DESC, id DESC);
-- Crash recovery finds unfinished jobs by status and age.
CREATE INDEX idx_images_status_updated ON images (status, updated_at);

CREATE TABLE coin_transactions (
    id            TEXT    PRIMARY KEY,
    user_id       TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    delta         INTEGER NOT NULL CHECK (delta <> 0),
    balance_after INTEGER NOT NULL CHECK (balance_after >= 0),
    kind          TEXT    NOT NULL
                          CHECK (kind IN ('STARTER', 'GRANT', 'GENERATION', 'REFUND', 'UPLOAD',
                                          'ADJUSTMENT')),
    image_id      TEXT    REFERENCES images (id) ON DELETE SET NULL,
    actor_id      TEXT    REFERENCES users (id) ON DELETE SET NULL,
    reason        TEXT,
    created_at    TEXT    NOT NULL
);

CREATE INDEX idx_coin_transactions_user ON coin_transactions (user_id, created_at DESC);
CREATE INDEX idx_coin_transactions_image ON coin_transactions (image_id);
-- A second line of defence behind the status guard: one refund per image, ever.
CREATE UNIQUE INDEX idx_coin_transactions_refund_once
    ON coin_transactions (image_id) WHERE kind = 'REFUND';

-- Key/value facts the bot keeps about itself (e.g. the hash of the last synced command set).
CREATE TABLE bot_state (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
