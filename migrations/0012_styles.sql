-- 0012: styles (issue 29). A row records the style it was drawn in, by its name in ZBOT_STYLES (NULL: none),
-- so that its rerolls, variations, upscales, edits and picks keep it, a restart draws it the same way, and
-- /stats counts images by style. The prompt column stays what the user typed: the style's template is
-- applied where the engine encodes it.
ALTER TABLE generations ADD COLUMN style TEXT;
CREATE INDEX IF NOT EXISTS generations_style ON generations(style) WHERE style IS NOT NULL;
