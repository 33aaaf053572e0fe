-- 0008: finding the images made from an image (its children, by parent or source) without a scan of
-- the whole table: `zbot prune` keeps the rows a younger image was made from.
CREATE INDEX IF NOT EXISTS generations_parent ON generations(parent_id);
CREATE INDEX IF NOT EXISTS generations_source ON generations(source_id);
