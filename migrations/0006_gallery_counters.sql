-- Gallery totals without counting: how many COMPLETED images each member has per server and
-- type, kept by the image repository in the same transaction as every change that adds or
-- removes one (a job completing, its further images, an upload, a delete). A server's page
-- reads one or two rows instead of COUNT(*) over up to 100,000 images (155 ms); a DM's
-- gallery adds up the member's rows. `guild_id` is '' for images of no server.
CREATE TABLE gallery_counts (
    user_id  TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    guild_id TEXT    NOT NULL,
    type     TEXT    NOT NULL CHECK (type IN ('GENERATED', 'UPLOADED')),
    count    INTEGER NOT NULL CHECK (count >= 0),
    PRIMARY KEY (user_id, guild_id, type)
);

INSERT INTO gallery_counts (user_id, guild_id, type, count)
SELECT user_id, COALESCE(guild_id, ''), type, COUNT(*)
FROM images
WHERE status = 'COMPLETED'
GROUP BY user_id, COALESCE(guild_id, ''), type;
