-- PostgreSQL's twin of migrations/0010_jobs.sql (the same tables, rows and guarantees): one
-- path for every paid job; the charge, the refund and the lease belong to the job. Text sorts
-- by code point (COLLATE "C"), as on SQLite.
CREATE TABLE jobs (
    id          TEXT COLLATE "C" PRIMARY KEY,
    kind        TEXT    NOT NULL,
    user_id     TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    wallet_id   TEXT COLLATE "C" REFERENCES wallets (id) ON DELETE SET NULL,
    guild_id    TEXT COLLATE "C",
    status      TEXT    NOT NULL
                        CHECK (status IN ('PENDING', 'PROCESSING', 'COMPLETED', 'FAILED')),
    cost        BIGINT  NOT NULL DEFAULT 0 CHECK (cost >= 0),
    lease_owner TEXT COLLATE "C",
    request     JSONB   NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(request) = 'object'),
    result      JSONB   NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(result) = 'object'),
    error       TEXT,
    refund_owed BIGINT,
    created_at  TEXT COLLATE "C" NOT NULL,
    updated_at  TEXT COLLATE "C" NOT NULL
);
CREATE INDEX idx_jobs_unfinished_owner ON jobs (lease_owner)
    WHERE status IN ('PENDING', 'PROCESSING');
CREATE INDEX idx_jobs_unfinished_user ON jobs (user_id)
    WHERE status IN ('PENDING', 'PROCESSING');
CREATE INDEX idx_jobs_user_created ON jobs (user_id, created_at DESC, id DESC);

INSERT INTO jobs (id, kind, user_id, wallet_id, guild_id, status, cost, lease_owner, request,
                  result, error, refund_owed, created_at, updated_at)
SELECT id, 'image', user_id, wallet_id, guild_id, status, coins_used, lease_owner,
       jsonb_build_object('prompt', prompt,
                          'aspect_ratio', metadata -> 'aspect_ratio',
                          'model', metadata -> 'model',
                          'image_size', metadata -> 'image_size',
                          'context', COALESCE(metadata -> 'context', '{}'::jsonb)),
       CASE WHEN status = 'COMPLETED' THEN jsonb_build_object('image_ids', jsonb_build_array(id))
            ELSE '{}'::jsonb END,
       metadata ->> 'error',
       (metadata ->> 'refund_owed')::bigint,
       created_at, updated_at
FROM images
WHERE type = 'GENERATED' AND metadata -> 'extra_of' IS NULL;

UPDATE jobs SET result = jsonb_build_object('image_ids', jsonb_build_array(jobs.id) || (
    SELECT jsonb_agg(e.id ORDER BY COALESCE((e.metadata ->> 'index')::bigint, 0), e.id)
    FROM images e
    WHERE e.type = 'GENERATED' AND e.status = 'COMPLETED' AND e.metadata ->> 'extra_of' = jobs.id
))
WHERE status = 'COMPLETED'
  AND EXISTS (SELECT 1 FROM images e WHERE e.metadata ->> 'extra_of' = jobs.id);

ALTER TABLE coin_transactions ADD COLUMN job_id TEXT COLLATE "C" REFERENCES jobs (id) ON DELETE SET NULL;
UPDATE coin_transactions SET job_id = image_id
WHERE kind IN ('GENERATION', 'REFUND') AND image_id IN (SELECT id FROM jobs);
DROP INDEX idx_coin_transactions_refund_once;
CREATE UNIQUE INDEX idx_coin_transactions_refund_once ON coin_transactions (job_id)
    WHERE kind = 'REFUND' AND job_id IS NOT NULL;
CREATE INDEX idx_coin_transactions_job ON coin_transactions (job_id);

DELETE FROM images WHERE status <> 'COMPLETED';
DROP INDEX idx_images_unfinished_owner;
DROP INDEX idx_images_unfinished_user;
