-- 0006: images drawn from other images (vary, upscale, edit prompt, another size). `cost` is what a
-- row counts against its requester's limits, in images of work: the images it draws, more for an
-- upscale (ZBOT_UPSCALE_WEIGHT), nothing for a pick. An image-to-image row names the image it starts
-- from (`source_id`, `source_index`) and how much of it is redrawn (`strength`), so that it can be
-- drawn again exactly.
ALTER TABLE generations ADD COLUMN cost INTEGER NOT NULL DEFAULT 1;
ALTER TABLE generations ADD COLUMN strength REAL;
ALTER TABLE generations ADD COLUMN source_id INTEGER REFERENCES generations(id);
ALTER TABLE generations ADD COLUMN source_index INTEGER;
UPDATE generations SET cost = count;
CREATE INDEX IF NOT EXISTS generations_operation ON generations(operation, created_at);
