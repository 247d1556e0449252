-- Gallery totals without counting: PostgreSQL's twin of migrations/0006_gallery_counters.sql
-- (the same statements; text sorts by code point, COLLATE "C", as on SQLite). How many COMPLETED
-- images each member has per server and type, kept by the image repository in the same
-- transaction as every change that adds or removes one. `guild_id` is '' for images of no
-- server.
CREATE TABLE gallery_counts (
    user_id  TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    guild_id TEXT COLLATE "C" NOT NULL,
    type     TEXT    NOT NULL CHECK (type IN ('GENERATED', 'UPLOADED')),
    count    BIGINT  NOT NULL CHECK (count >= 0),
    PRIMARY KEY (user_id, guild_id, type)
);

INSERT INTO gallery_counts (user_id, guild_id, type, count)
SELECT user_id, COALESCE(guild_id, ''), type, COUNT(*)
FROM images
WHERE status = 'COMPLETED'
GROUP BY user_id, COALESCE(guild_id, ''), type;
