-- Members' data (issue 25): a server's own image retention, and indexes for the sweep that
-- deletes images past it (by server, and across servers by age).
-- A server's image retention in days (0: kept until deleted); NULL: IMAGE_RETENTION_DAYS.
ALTER TABLE guild_settings ADD COLUMN image_retention_days INTEGER
    CHECK (image_retention_days >= 0);

CREATE INDEX idx_images_guild_created ON images (guild_id, created_at);
CREATE INDEX idx_images_created ON images (created_at);
