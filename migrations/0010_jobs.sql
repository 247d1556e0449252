-- One path for every paid job (issue 21): the charge, the refund and the lease belong to the
-- job, whatever it makes. An image job's images are what it produced: they are written, as
-- COMPLETED rows, when the job completes; a job that fails leaves no image row.
--
-- jobs: one row per paid job of any kind ('image' today; 'caption' and others tomorrow).
-- `cost` is what the wallet paid at the reservation, refunded exactly once if the job fails
-- (guarded on status, and on the lease for a sweep). `request` and `result` are the kind's own
-- JSON (what to make; what it made). `lease_owner` is the process whose job it is (0005).
CREATE TABLE jobs (
    id          TEXT    PRIMARY KEY,
    kind        TEXT    NOT NULL,
    user_id     TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    wallet_id   TEXT    REFERENCES wallets (id) ON DELETE SET NULL,
    guild_id    TEXT,
    status      TEXT    NOT NULL
                        CHECK (status IN ('PENDING', 'PROCESSING', 'COMPLETED', 'FAILED')),
    cost        INTEGER NOT NULL DEFAULT 0 CHECK (cost >= 0),
    lease_owner TEXT,
    request     TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(request)),
    result      TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(result)),
    error       TEXT,
    -- A refund that could not be applied (the balance cap): for the owner to settle.
    refund_owed INTEGER,
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL
);
CREATE INDEX idx_jobs_unfinished_owner ON jobs (lease_owner)
    WHERE status IN ('PENDING', 'PROCESSING');
CREATE INDEX idx_jobs_unfinished_user ON jobs (user_id)
    WHERE status IN ('PENDING', 'PROCESSING');
CREATE INDEX idx_jobs_user_created ON jobs (user_id, created_at DESC, id DESC);

-- Every generated image that started a job (not the further images of an answer) is a job:
-- its request is what the image row said of it, its result the image it made.
INSERT INTO jobs (id, kind, user_id, wallet_id, guild_id, status, cost, lease_owner, request,
                  result, error, refund_owed, created_at, updated_at)
SELECT id, 'image', user_id, wallet_id, guild_id, status, coins_used, lease_owner,
       json_object('prompt', prompt,
                   'aspect_ratio', json_extract(metadata, '$.aspect_ratio'),
                   'model', json_extract(metadata, '$.model'),
                   'image_size', json_extract(metadata, '$.image_size'),
                   'context', json(COALESCE(json_extract(metadata, '$.context'), '{}'))),
       CASE WHEN status = 'COMPLETED' THEN json_object('image_ids', json_array(id)) ELSE '{}' END,
       json_extract(metadata, '$.error'),
       json_extract(metadata, '$.refund_owed'),
       created_at, updated_at
FROM images
WHERE type = 'GENERATED' AND json_extract(metadata, '$.extra_of') IS NULL;

-- A finished answer's result lists every image it made, the further ones in their order, as
-- a job completed today does (the API's job resource shows them).
UPDATE jobs SET result = json_object('image_ids', (
    SELECT json_group_array(made.id) FROM (
        SELECT jobs.id AS id, -1 AS position
        UNION ALL
        SELECT e.id, COALESCE(json_extract(e.metadata, '$.index'), 0) FROM images e
        WHERE e.type = 'GENERATED' AND e.status = 'COMPLETED'
          AND json_extract(e.metadata, '$.extra_of') = jobs.id
        ORDER BY position, id
    ) AS made
))
WHERE status = 'COMPLETED'
  AND EXISTS (SELECT 1 FROM images e WHERE json_extract(e.metadata, '$.extra_of') = jobs.id);

-- The ledger names the job its GENERATION and REFUND rows belong to; a refund is unique per
-- job (it was per image row).
ALTER TABLE coin_transactions ADD COLUMN job_id TEXT REFERENCES jobs (id) ON DELETE SET NULL;
UPDATE coin_transactions SET job_id = image_id
WHERE kind IN ('GENERATION', 'REFUND') AND image_id IN (SELECT id FROM jobs);
DROP INDEX idx_coin_transactions_refund_once;
CREATE UNIQUE INDEX idx_coin_transactions_refund_once ON coin_transactions (job_id)
    WHERE kind = 'REFUND' AND job_id IS NOT NULL;
CREATE INDEX idx_coin_transactions_job ON coin_transactions (job_id);

-- Image rows are what jobs made: the unfinished and failed ones live on as jobs only.
DELETE FROM images WHERE status <> 'COMPLETED';
DROP INDEX idx_images_unfinished_owner;
DROP INDEX idx_images_unfinished_user;
