-- 0001: one row per generation request, whatever became of it.
-- Enough to reroll any past image after a restart (prompt, size, seed, steps), to find the posted
-- message again (channel_id, message_id), and to answer usage questions (who, when, how long).
-- Times are UNIX seconds (UTC) as REAL.
CREATE TABLE generations (
    id             INTEGER PRIMARY KEY,
    source         TEXT    NOT NULL DEFAULT 'discord',   -- discord | cli | http
    user_id        INTEGER NOT NULL,
    guild_id       INTEGER,
    channel_id     INTEGER,
    prompt         TEXT    NOT NULL,
    seed           INTEGER,
    size           TEXT,
    width          INTEGER,
    height         INTEGER,
    steps          INTEGER,
    status         TEXT    NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed', 'rejected')),
    error          TEXT,
    created_at     REAL    NOT NULL,
    started_at     REAL,
    finished_at    REAL,
    render_s       REAL,
    parent_id      INTEGER REFERENCES generations(id),
    interaction_id INTEGER,
    message_id     INTEGER
);
