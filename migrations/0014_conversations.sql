-- Conversations (issue 22): talking to the model about an image, turn after turn. A
-- conversation starts from an image (`root_image_id`: a result, or any image its owner may
-- remix) and is an ordered list of turns. Each turn is one paid image job (the money is the
-- job's: charged once, refunded once on failure, see 0010); what the turn sent and got back
-- lives with that job's image row, written in the transaction that completes the job: the
-- prompt, the input image keys (`metadata.input_keys`), the output image keys and the model's
-- parts with their `thoughtSignature`s and text (`metadata.turn`). Images stay in object
-- storage like every gallery image.
--
-- conversation_turns: `position` 1, 2, ... after the root. A Reroll adds a turn at the same
-- position (the newest turn of a position whose job did not fail is the one that counts);
-- Undo sets `undone_at` on the last position's turns (free: nothing is refunded or deleted).
-- A Branch is a new conversation whose first turns name the same jobs (no copy is made).
CREATE TABLE conversations (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    guild_id      TEXT,
    root_image_id TEXT NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    -- The turn it was branched from (another conversation's), if any.
    branched_from TEXT,
    -- Where it is shown on Discord: a thread (NULL: replies in a channel, or the API).
    channel_id    TEXT,
    thread_id     TEXT UNIQUE,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX idx_conversations_user ON conversations (user_id, created_at DESC, id DESC);
CREATE INDEX idx_conversations_root ON conversations (root_image_id);

CREATE TABLE conversation_turns (
    id              TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    position        INTEGER NOT NULL CHECK (position >= 1),
    job_id          TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    prompt          TEXT NOT NULL,
    undone_at       TEXT,
    created_at      TEXT NOT NULL
);
CREATE INDEX idx_conversation_turns_order ON conversation_turns (conversation_id, position, created_at);
CREATE INDEX idx_conversation_turns_job ON conversation_turns (job_id);
