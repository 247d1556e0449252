-- Servers are tenants (DESIGN 7a). `users` stays the identity, one row per person; money moves
-- into wallets (one per member per server with ECONOMY_SCOPE=guild, one per member with
-- global), every ledger row names its wallet, images record their server and the wallet that
-- paid for them, and each server has its own settings with an audit of who changed what.
--
-- Upgrading keeps everything: each member's balance and ledger become one wallet with
-- guild_id NULL and carried_over = 1. With ECONOMY_SCOPE=global that is their wallet as before;
-- with ECONOMY_SCOPE=guild the first server where they use the bot takes it over (balance and
-- history), instead of giving them starter coins a second time. See README, "Servers".

CREATE TABLE wallets (
    id               TEXT    PRIMARY KEY,
    user_id          TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The server whose economy this wallet belongs to (snowflake as text), or NULL for the
    -- member's one global wallet.
    guild_id         TEXT,
    coins            INTEGER NOT NULL DEFAULT 0 CHECK (coins >= 0),
    -- 1: made by this migration from the old users.coins (see above).
    carried_over     INTEGER NOT NULL DEFAULT 0 CHECK (carried_over IN (0, 1)),
    -- When /daily was last claimed from this wallet.
    daily_claimed_at TEXT,
    created_at       TEXT    NOT NULL,
    updated_at       TEXT    NOT NULL
);

-- One wallet per member per server, and one global wallet per member.
CREATE UNIQUE INDEX idx_wallets_user_guild ON wallets (user_id, guild_id)
    WHERE guild_id IS NOT NULL;
CREATE UNIQUE INDEX idx_wallets_user_global ON wallets (user_id) WHERE guild_id IS NULL;

-- Members who ever had coins or a coin movement keep them in a carried-over wallet. The id is a
-- random version-4 UUID, like every id the bot makes.
INSERT INTO wallets (id, user_id, guild_id, coins, carried_over, created_at, updated_at)
SELECT
    lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4'
        || substr(lower(hex(randomblob(2))), 2) || '-'
        || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(lower(hex(randomblob(2))), 2)
        || '-' || lower(hex(randomblob(6))),
    u.id, NULL, u.coins, 1, u.created_at, u.updated_at
FROM users u
WHERE u.coins > 0 OR EXISTS (SELECT 1 FROM coin_transactions t WHERE t.user_id = u.id);

-- The ledger, rebuilt with the wallet of every row and the DAILY kind. `seq` keeps the
-- insertion order (the old rowids) and, being the INTEGER PRIMARY KEY, survives VACUUM.
CREATE TABLE coin_transactions_0002 (
    seq           INTEGER PRIMARY KEY,
    id            TEXT    NOT NULL UNIQUE,
    wallet_id     TEXT    NOT NULL REFERENCES wallets (id) ON DELETE CASCADE,
    user_id       TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    delta         INTEGER NOT NULL CHECK (delta <> 0),
    balance_after INTEGER NOT NULL CHECK (balance_after >= 0),
    kind          TEXT    NOT NULL
                          CHECK (kind IN ('STARTER', 'GRANT', 'GENERATION', 'REFUND', 'UPLOAD',
                                          'ADJUSTMENT', 'DAILY')),
    image_id      TEXT    REFERENCES images (id) ON DELETE SET NULL,
    actor_id      TEXT    REFERENCES users (id) ON DELETE SET NULL,
    reason        TEXT,
    created_at    TEXT    NOT NULL
);

INSERT INTO coin_transactions_0002 (seq, id, wallet_id, user_id, delta, balance_after, kind,
                                    image_id, actor_id, reason, created_at)
SELECT t.rowid, t.id, w.id, t.user_id, t.delta, t.balance_after, t.kind, t.image_id,
       t.actor_id, t.reason, t.created_at
FROM coin_transactions t
JOIN wallets w ON w.user_id = t.user_id AND w.guild_id IS NULL
ORDER BY t.rowid;

DROP TABLE coin_transactions;
ALTER TABLE coin_transactions_0002 RENAME TO coin_transactions;

CREATE INDEX idx_coin_transactions_wallet ON coin_transactions (wallet_id, seq DESC);
CREATE INDEX idx_coin_transactions_user ON coin_transactions (user_id, seq DESC);
CREATE INDEX idx_coin_transactions_image ON coin_transactions (image_id);
-- A second line of defence behind the status guard: one refund per image, ever.
CREATE UNIQUE INDEX idx_coin_transactions_refund_once
    ON coin_transactions (image_id) WHERE kind = 'REFUND';

-- Images: the server they were made or uploaded in (NULL: a DM, or unknown), and the wallet
-- that paid (a refund goes back there).
ALTER TABLE images ADD COLUMN guild_id TEXT;
ALTER TABLE images ADD COLUMN wallet_id TEXT REFERENCES wallets (id) ON DELETE SET NULL;

-- Generated images recorded their server in metadata.context.
UPDATE images SET guild_id = CAST(json_extract(metadata, '$.context.guild_id') AS TEXT)
WHERE json_type(metadata, '$.context.guild_id') IN ('integer', 'text');

-- Uploads did not. If the database knows exactly one server, every image was made there (the
-- commands only worked in servers); otherwise the server stays unknown and the image shows in
-- its owner's gallery in a DM.
UPDATE images
SET guild_id = (SELECT DISTINCT guild_id FROM images WHERE guild_id IS NOT NULL)
WHERE guild_id IS NULL
  AND (SELECT COUNT(DISTINCT guild_id) FROM images WHERE guild_id IS NOT NULL) = 1;

UPDATE images
SET wallet_id = (SELECT w.id FROM wallets w WHERE w.user_id = images.user_id
                 AND w.guild_id IS NULL);

-- A server's gallery of a member, newest first, by keyset.
CREATE INDEX idx_images_user_guild_created ON images (user_id, guild_id, created_at DESC, id DESC);
CREATE INDEX idx_images_user_guild_type_created
    ON images (user_id, guild_id, type, created_at DESC, id DESC);

-- The balance now lives in wallets only: no second number that could disagree with them.
ALTER TABLE users DROP COLUMN coins;

-- Per-server overrides of the environment's defaults; NULL means "use the default".
CREATE TABLE guild_settings (
    guild_id         TEXT    PRIMARY KEY,
    generation_cost  INTEGER CHECK (generation_cost >= 0),
    upload_cost      INTEGER CHECK (upload_cost >= 0),
    starter_coins    INTEGER CHECK (starter_coins >= 0),
    daily_coins      INTEGER CHECK (daily_coins >= 0),
    jobs_per_member  INTEGER CHECK (jobs_per_member >= 1),
    -- JSON array of channel ids (text) where /generate and /upload work.
    channel_ids      TEXT    CHECK (channel_ids IS NULL OR json_valid(channel_ids)),
    generate_role_id TEXT,
    public_results   INTEGER CHECK (public_results IN (0, 1)),
    updated_at       TEXT    NOT NULL
);

-- Who changed which setting, from what to what (JSON values; NULL = the environment default).
CREATE TABLE guild_settings_changes (
    seq        INTEGER PRIMARY KEY,
    guild_id   TEXT    NOT NULL,
    setting    TEXT    NOT NULL,
    old_value  TEXT,
    new_value  TEXT,
    actor_id   TEXT    REFERENCES users (id) ON DELETE SET NULL,
    created_at TEXT    NOT NULL
);

CREATE INDEX idx_guild_settings_changes_guild ON guild_settings_changes (guild_id, seq DESC);
