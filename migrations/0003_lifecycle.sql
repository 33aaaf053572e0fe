-- 0003: a job's whole life in one status column, and who holds an unfinished job.
-- "done" splits into "drawn" (rendered, its PNG kept beside the database until posted) and "posted";
-- "deleted", "cancelled" and "blocked" are new. `owner` names the process holding a queued, running
-- or drawn job (zbot/instance.py), so that a restart adopts only the jobs of processes that are gone.
-- SQLite can't change a CHECK constraint in place: the table is rebuilt (foreign keys are off meanwhile).
CREATE TABLE generations_new (
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
    status         TEXT    NOT NULL CHECK (status IN ('queued', 'running', 'drawn', 'posted', 'deleted',
                                                      'failed', 'cancelled', 'blocked', 'rejected')),
    error          TEXT,
    created_at     REAL    NOT NULL,
    started_at     REAL,
    finished_at    REAL,
    render_s       REAL,
    parent_id      INTEGER REFERENCES generations(id),
    interaction_id INTEGER,
    message_id     INTEGER,
    owner          TEXT
);

INSERT INTO generations_new (id, source, user_id, guild_id, channel_id, prompt, seed, size, width, height,
                             steps, status, error, created_at, started_at, finished_at, render_s, parent_id,
                             interaction_id, message_id)
SELECT id, source, user_id, guild_id, channel_id, prompt, seed, size, width, height, steps,
       CASE WHEN status != 'done' THEN status
            -- a Discord image drawn in the last hour but not posted: the next start draws and posts it
            -- (older ones were given up by the zbot that drew them; they stay in the history as images)
            WHEN source = 'discord' AND message_id IS NULL AND created_at > CAST(strftime('%s', 'now') AS REAL) - 3600
                 THEN 'drawn'
            ELSE 'posted' END,
       error, created_at, started_at, finished_at, render_s, parent_id, interaction_id, message_id
FROM generations;

DROP TABLE generations;
ALTER TABLE generations_new RENAME TO generations;

CREATE INDEX generations_user_created ON generations (user_id, created_at);
-- The admission's queue count asks for exactly these two statuses (a partial index is used only then).
CREATE INDEX generations_status ON generations (status) WHERE status IN ('queued', 'running');
CREATE INDEX generations_undelivered ON generations (owner) WHERE status IN ('queued', 'running', 'drawn');
CREATE INDEX generations_channel_user ON generations (channel_id, user_id, id);
CREATE INDEX generations_message ON generations (message_id) WHERE message_id IS NOT NULL;
CREATE INDEX generations_guild_created ON generations (guild_id, created_at);

-- Small facts the bot keeps between runs (e.g. where its commands were last synced).
CREATE TABLE bot_state (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
