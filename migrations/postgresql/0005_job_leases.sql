-- More than one process (DESIGN 7b): shared state lives in the database only.
--
-- Every running bot process has a row here, with a lease its heartbeat renews. A job
-- (PENDING/PROCESSING image), an API slot, an object being written and a named lock belong to
-- a process; they are its own while its lease runs. A process that dies stops renewing: once
-- its lease has expired, whichever process notices first fails and refunds its jobs (exactly
-- once: guarded on status and on the lease), frees its slots and deletes its half-written
-- objects. A missing row is a dead process too.
CREATE TABLE bot_processes (
    id          TEXT COLLATE "C" PRIMARY KEY,
    -- For people: host, pid and shards.
    name        TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    lease_until TEXT COLLATE "C" NOT NULL
);

-- Whose job an unfinished image is. NULL (jobs from before this migration): nobody's, so a
-- leftover that the first process to start fails and refunds.
ALTER TABLE images ADD COLUMN lease_owner TEXT COLLATE "C";

-- Unfinished jobs by process (the sweep of expired leases) and by member (the job cap).
CREATE INDEX idx_images_unfinished_owner ON images (lease_owner)
    WHERE status IN ('PENDING', 'PROCESSING');
CREATE INDEX idx_images_unfinished_user ON images (user_id)
    WHERE status IN ('PENDING', 'PROCESSING');

-- MAX_CONCURRENT_GENERATIONS for the whole deployment (the API key's quota is shared): one
-- row per slot, taken by a process for one job's call to the model. A slot whose holder's
-- lease has expired is free.
CREATE TABLE generation_slots (
    slot     INTEGER PRIMARY KEY,
    holder   TEXT COLLATE "C",
    job_id   TEXT,
    taken_at TEXT
);

-- Objects being written whose row is not committed yet: the storage sweep leaves them alone,
-- and when their process dies they are deleted.
CREATE TABLE object_intents (
    key        TEXT COLLATE "C" PRIMARY KEY,
    owner      TEXT COLLATE "C" NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX idx_object_intents_owner ON object_intents (owner);

-- Named locks held by one live process at a time (start-up command sync and storage sweep).
CREATE TABLE leases (
    name        TEXT COLLATE "C" PRIMARY KEY,
    holder      TEXT COLLATE "C" NOT NULL,
    acquired_at TEXT NOT NULL
);
