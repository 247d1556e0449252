-- Issue 23 (b): members pay each other (/pay: a TRANSFER ledger kind), a per-server daily
-- limit on payments and a switch for members' private mode, and members' own preferences
-- (private results, hidden from /leaderboard).

ALTER TABLE coin_transactions DROP CONSTRAINT coin_transactions_kind_check;
ALTER TABLE coin_transactions ADD CONSTRAINT coin_transactions_kind_check
    CHECK (kind IN ('STARTER', 'GRANT', 'GENERATION', 'REFUND', 'UPLOAD', 'ADJUSTMENT',
                    'DAILY', 'TRANSFER'));
-- What a wallet paid others lately (the daily limit of /pay).
CREATE INDEX idx_coin_transactions_transfers ON coin_transactions (wallet_id, created_at)
    WHERE kind = 'TRANSFER' AND delta < 0;

-- Coins a member may pay others in 24 hours (NULL: PAY_DAILY_LIMIT; 0: /pay off), and
-- whether members may keep their results private (/settings me private).
ALTER TABLE guild_settings ADD COLUMN pay_daily_limit BIGINT CHECK (pay_daily_limit >= 0);
ALTER TABLE guild_settings ADD COLUMN private_mode INTEGER CHECK (private_mode IN (0, 1));

-- A member's own preferences, wherever they use the bot.
CREATE TABLE member_preferences (
    user_id            TEXT COLLATE "C" PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    private_results    INTEGER NOT NULL DEFAULT 0 CHECK (private_results IN (0, 1)),
    leaderboard_hidden INTEGER NOT NULL DEFAULT 0 CHECK (leaderboard_hidden IN (0, 1)),
    updated_at         TEXT COLLATE "C" NOT NULL
);

-- Style presets (/settings style): a server's named prompt suffixes, each with up to a few
-- reference images kept in object storage under styles/ (keys as a JSON array).
CREATE TABLE style_presets (
    id             TEXT COLLATE "C" PRIMARY KEY,
    guild_id       TEXT COLLATE "C" NOT NULL,
    name           TEXT    NOT NULL,
    suffix         TEXT    NOT NULL,
    reference_keys TEXT    NOT NULL DEFAULT '[]',
    created_by     TEXT COLLATE "C" REFERENCES users (id) ON DELETE SET NULL,
    created_at     TEXT COLLATE "C" NOT NULL,
    UNIQUE (guild_id, name)
);

-- /leaderboard: a server's creators (images made there) and its richest wallets.
CREATE INDEX idx_images_guild_made ON images (guild_id, user_id)
    WHERE type = 'GENERATED' AND status = 'COMPLETED';
CREATE INDEX idx_wallets_guild_coins ON wallets (guild_id, coins);
