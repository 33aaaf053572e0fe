-- 0005: a job may draw several images (a grid of candidates): `count` of them, of the seeds seed,
-- seed + 1, ...; the limits count images, not jobs. `operation` says what made a row: a draw, a reroll,
-- or a pick (one image of a grid posted on its own, from the kept files: nothing drawn, count 0).
ALTER TABLE generations ADD COLUMN count INTEGER NOT NULL DEFAULT 1;
ALTER TABLE generations ADD COLUMN operation TEXT NOT NULL DEFAULT 'draw';
UPDATE generations SET operation = 'reroll' WHERE parent_id IS NOT NULL;
