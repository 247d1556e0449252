-- Issue 23 (b): members pay each other (/pay: a TRANSFER ledger kind), a per-server daily
-- limit on payments and a switch for members' private mode, and members' own preferences
-- (private results, hidden from /leaderboard).

-- The ledger, rebuilt with the TRANSFER kind (SQLite can't change a CHECK in place). Every
-- column, row, `seq` and index is kept as it was.
CREATE TABLE coin_transactions_0013 (
    seq           INTEGER PRIMARY KEY,
    id            TEXT    NOT NULL UNIQUE,
    wallet_id     TEXT    NOT NULL REFERENCES wallets (id) ON DELETE CASCADE,
    user_id       TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    delta         INTEGER NOT NULL CHECK (delta <> 0),
    balance_after INTEGER NOT NULL CHECK (balance_after >= 0),
    kind          TEXT    NOT NULL
                          CHECK (kind IN ('STARTER', 'GRANT', 'GENERATION', 'REFUND', 'UPLOAD',
                                          'ADJUSTMENT', 'DAILY', 'TRANSFER')),
    image_id      TEXT    REFERENCES images (id) ON DELETE SET NULL,
    actor_id      TEXT    REFERENCES users (id) ON DELETE SET NULL,
    reason        TEXT,
    created_at    TEXT    NOT NULL,
    job_id        TEXT    REFERENCES jobs (id) ON DELETE SET NULL
);

INSERT INTO coin_transactions_0013 (seq, id, wallet_id, user_id, delta, balance_after, kind,
                                    image_id, actor_id, reason, created_at, job_id)
SELECT seq, id, wallet_id, user_id, delta, balance_after, kind, image_id, actor_id, reason,
       created_at, job_id
FROM coin_transactions
ORDER BY seq;

DROP TABLE coin_transactions;
ALTER TABLE coin_transactions_0013 RENAME TO coin_transactions;

CREATE INDEX idx_coin_transactions_wallet ON coin_transactions (wallet_id, seq DESC);
CREATE INDEX idx_coin_transactions_user ON coin_transactions (user_id, seq DESC);
CREATE INDEX idx_coin_transactions_image ON coin_transactions (image_id);
CREATE UNIQUE INDEX idx_coin_transactions_refund_once ON coin_transactions (job_id)
    WHERE kind = 'REFUND' AND job_id IS NOT NULL;
CREATE INDEX idx_coin_transactions_job ON coin_transactions (job_id);
-- What a wallet paid others lately (the daily limit of /pay).
CREATE INDEX idx_coin_transactions_transfers ON coin_transactions (wallet_id, created_at)
    WHERE kind = 'TRANSFER' AND delta < 0;

-- Coins a member may pay others in 24 hours (NULL: PAY_DAILY_LIMIT; 0: /pay off), and
-- whether members may keep their results private (/settings me private).
ALTER TABLE guild_settings ADD COLUMN pay_daily_limit BIGINT CHECK (pay_daily_limit >= 0);
ALTER TABLE guild_settings ADD COLUMN private_mode INTEGER CHECK (private_mode IN (0, 1));

-- A member's own preferences, wherever they use the bot.
CREATE TABLE member_preferences (
    user_id            TEXT    PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    private_results    INTEGER NOT NULL DEFAULT 0 CHECK (private_results IN (0, 1)),
    leaderboard_hidden INTEGER NOT NULL DEFAULT 0 CHECK (leaderboard_hidden IN (0, 1)),
    updated_at         TEXT    NOT NULL
);

-- Style presets (/settings style): a server's named prompt suffixes, each with up to a few
-- reference images kept in object storage under styles/ (keys as a JSON array).
CREATE TABLE style_presets (
    id             TEXT    PRIMARY KEY,
    guild_id       TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    suffix         TEXT    NOT NULL,
    reference_keys TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(reference_keys)),
    created_by     TEXT    REFERENCES users (id) ON DELETE SET NULL,
    created_at     TEXT    NOT NULL,
    UNIQUE (guild_id, name)
);

-- /leaderboard: a server's creators (images made there) and its richest wallets.
CREATE INDEX idx_images_guild_made ON images (guild_id, user_id)
    WHERE type = 'GENERATED' AND status = 'COMPLETED';
CREATE INDEX idx_wallets_guild_coins ON wallets (guild_id, coins);
