-- Issue 23: the most images one /generate may ask for in a server (`count`, 1-4; NULL = the
-- default, 4). Each image of a batch is its own job: nothing else changes in the schema.
ALTER TABLE guild_settings ADD COLUMN max_batch INTEGER;
