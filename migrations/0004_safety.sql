-- 0004: the safety check's verdict on each image, and reports of images people find wrong.
-- safety_score: the checker's score (0-1), NULL when no check ran (ZBOT_SAFETY=off, or drawn before);
-- safety_checker: which checker gave it. A flagged image that was withheld has status 'blocked'.
ALTER TABLE generations ADD COLUMN safety_score REAL;
ALTER TABLE generations ADD COLUMN safety_checker TEXT;

CREATE TABLE reports (
    id                INTEGER PRIMARY KEY,
    generation_id     INTEGER NOT NULL REFERENCES generations(id),
    reporter_id       INTEGER NOT NULL,
    guild_id          INTEGER,
    note              TEXT    NOT NULL DEFAULT '',
    created_at        REAL    NOT NULL,
    report_message_id INTEGER,              -- the report in ZBOT_REPORT_CHANNEL_ID, when it was posted
    resolved_by       INTEGER,              -- the admin who deleted the image from the report
    resolved_at       REAL
);
-- One report per person and image: a second click adds nothing to the admins' channel.
CREATE UNIQUE INDEX reports_generation_reporter ON reports (generation_id, reporter_id);
CREATE INDEX reports_guild_created ON reports (guild_id, created_at);
