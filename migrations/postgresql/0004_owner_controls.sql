-- Owners stay in control of their money and their channels: what each generation cost the
-- host in US dollars (from the API's usageMetadata), budgets that refuse a request before any
-- coin moves, blocklists, blocked members, a moderation-log channel and an audit of every
-- moderation action. PostgreSQL's twin of migrations/0004_owner_controls.sql: the same
-- statements, with text that sorts by code point (COLLATE "C") as on SQLite. Amounts are integer micro-dollars (1 USD = 1000000), BIGINT so that a
-- month's sum fits on PostgreSQL as well (SQLite's INTEGER is 64-bit anyway).

-- One row per generation job (one API call), keyed by the job's image id but without a foreign
-- key: the spend stays on the books when a moderator deletes the image.
--   RESERVED: admitted, counts its estimate against the budgets;
--   BILLED:   the API answered; counts `cost_micros` (from usageMetadata);
--   VOID:     never billed (refused or failed before the API answered); counts nothing.
CREATE TABLE generation_usage (
    id                TEXT COLLATE "C"    PRIMARY KEY,
    guild_id          TEXT COLLATE "C",
    user_id           TEXT COLLATE "C"    NOT NULL,
    model             TEXT    NOT NULL,
    image_size        TEXT,
    status            TEXT    NOT NULL CHECK (status IN ('RESERVED', 'BILLED', 'VOID')),
    -- Coins the member paid for it (0 once refunded).
    coins             BIGINT  NOT NULL DEFAULT 0 CHECK (coins >= 0),
    estimate_micros   BIGINT  NOT NULL CHECK (estimate_micros >= 0),
    cost_micros       BIGINT  NOT NULL DEFAULT 0 CHECK (cost_micros >= 0),
    images            INTEGER NOT NULL DEFAULT 0 CHECK (images >= 0),
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    output_tokens     INTEGER NOT NULL DEFAULT 0,
    image_tokens      INTEGER NOT NULL DEFAULT 0,
    thoughts_tokens   INTEGER NOT NULL DEFAULT 0,
    -- The UTC day (YYYY-MM-DD) and month (YYYY-MM) the job was admitted in: budgets and
    -- /usage group by these columns, so no date function is needed in SQL.
    day               TEXT COLLATE "C"    NOT NULL,
    month             TEXT COLLATE "C"    NOT NULL,
    created_at        TEXT COLLATE "C"    NOT NULL,
    updated_at        TEXT COLLATE "C"    NOT NULL
);

CREATE INDEX idx_generation_usage_guild_day ON generation_usage (guild_id, day);
CREATE INDEX idx_generation_usage_guild_month ON generation_usage (guild_id, month);
CREATE INDEX idx_generation_usage_month ON generation_usage (month);

-- What each budget period holds (`used`: µUSD for a month, images for a day), for the whole
-- deployment ('global') and each server ('guild:<id>'), kept by the same transactions that
-- write the usage rows. A reservation takes its share with one guarded UPDATE
-- (`used + estimate <= cap`), as a debit takes coins: atomic on SQLite and PostgreSQL alike,
-- and the row lock serialises the reservations of one scope.
CREATE TABLE budget_totals (
    scope  TEXT COLLATE "C"   NOT NULL,
    kind   TEXT   NOT NULL CHECK (kind IN ('usd_month', 'images_day')),
    period TEXT COLLATE "C"   NOT NULL,
    used   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, kind, period)
);

-- Budget notices already sent (80% and 100% of a cap, once per scope, cap and period).
CREATE TABLE budget_notices (
    scope      TEXT COLLATE "C"    NOT NULL,
    cap        TEXT    NOT NULL,
    period     TEXT COLLATE "C"    NOT NULL,
    threshold  INTEGER NOT NULL,
    created_at TEXT COLLATE "C"    NOT NULL,
    PRIMARY KEY (scope, cap, period, threshold)
);

-- Per-server caps and content settings (NULL: the default, i.e. none / off).
ALTER TABLE guild_settings ADD COLUMN daily_image_cap INTEGER CHECK (daily_image_cap >= 0);
ALTER TABLE guild_settings ADD COLUMN monthly_budget_micros BIGINT
    CHECK (monthly_budget_micros >= 0);
ALTER TABLE guild_settings ADD COLUMN mod_log_channel_id TEXT;
ALTER TABLE guild_settings ADD COLUMN nsfw_only INTEGER CHECK (nsfw_only IN (0, 1));

-- A server's blocked words and patterns (RE2 syntax), checked on normalised prompts.
CREATE TABLE guild_blocklist (
    id         TEXT COLLATE "C"    PRIMARY KEY,
    guild_id   TEXT COLLATE "C"    NOT NULL,
    kind       TEXT    NOT NULL CHECK (kind IN ('WORD', 'PATTERN')),
    entry      TEXT    NOT NULL,
    actor_id   TEXT COLLATE "C"    REFERENCES users (id) ON DELETE SET NULL,
    created_at TEXT COLLATE "C"    NOT NULL,
    UNIQUE (guild_id, kind, entry)
);

-- Members who may not generate or upload in a server, until `until` (NULL: until unblocked).
CREATE TABLE member_blocks (
    guild_id   TEXT COLLATE "C"    NOT NULL,
    user_id    TEXT COLLATE "C"    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    reason     TEXT    NOT NULL,
    until      TEXT COLLATE "C",
    actor_id   TEXT COLLATE "C"    REFERENCES users (id) ON DELETE SET NULL,
    created_at TEXT COLLATE "C"    NOT NULL,
    PRIMARY KEY (guild_id, user_id)
);

-- Every moderation action: who did what to whom or which image, when and why.
CREATE TABLE moderation_actions (
    id             TEXT COLLATE "C"    PRIMARY KEY,
    guild_id       TEXT COLLATE "C",
    actor_id       TEXT COLLATE "C"    REFERENCES users (id) ON DELETE SET NULL,
    action         TEXT    NOT NULL,
    target_user_id TEXT COLLATE "C"    REFERENCES users (id) ON DELETE SET NULL,
    image_id       TEXT COLLATE "C",
    detail         TEXT,
    reason         TEXT,
    created_at     TEXT COLLATE "C"    NOT NULL
);

CREATE INDEX idx_moderation_actions_guild ON moderation_actions (guild_id, created_at);

-- Discord messages that show an image (its public result, its moderation-log post), so that
-- deleting the image removes them too.
CREATE TABLE image_posts (
    image_id   TEXT COLLATE "C"    NOT NULL,
    channel_id TEXT    NOT NULL,
    message_id TEXT    NOT NULL,
    kind       TEXT    NOT NULL CHECK (kind IN ('RESULT', 'LOG')),
    created_at TEXT COLLATE "C"    NOT NULL,
    PRIMARY KEY (image_id, message_id)
);
