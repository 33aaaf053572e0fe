-- 0011: your own picture, Zoom out and Pan (issue 28). A Zoom out or Pan row records what it did to its
-- source image (`factor`: 2 or 1.5 for a Zoom out; `direction`: left, right, up or down for a Pan), so that
-- a result, its rerolls and its edits are drawn again exactly. A row drawn from an uploaded picture names
-- it by `upload`, the SHA-256 of its PNG as kept beside the database (the folder's uploads/, one file
-- however many jobs use it), swept like a drawn image once no job within ZBOT_KEEP_IMAGES_DAYS needs it.
ALTER TABLE generations ADD COLUMN factor REAL;
ALTER TABLE generations ADD COLUMN direction TEXT;
ALTER TABLE generations ADD COLUMN upload TEXT;
CREATE INDEX IF NOT EXISTS generations_upload ON generations(upload) WHERE upload IS NOT NULL;
