-- 0009: refused requests are counted, not stored one by one. A row per refusal, with its prompt, let one
-- key or member asking past their limit grow the file without bound (500 refusals of 1,000-character
-- prompts: 0.2 MB -> 4.8 MB), and `zbot prune` can't remove rows younger than the longest window.
-- Now one row per user, server, front end, reason and hour, with how many and the last prompt refused
-- (cut short): enough for an admin to see who keeps trying what, bounded whatever they send.
-- guild_id is 0 outside a server (HTTP, the command line), so that the upsert's key has no NULL in it.
CREATE TABLE refusals (
    user_id   INTEGER NOT NULL,
    guild_id  INTEGER NOT NULL DEFAULT 0,
    source    TEXT    NOT NULL,                -- discord | cli | http
    reason    TEXT    NOT NULL,                -- the refusal's kind: rate_limited, bad_input, queue_full...
    hour      INTEGER NOT NULL,                -- UNIX seconds at the start of the hour (UTC)
    count     INTEGER NOT NULL,
    last_at   REAL    NOT NULL,
    sample    TEXT    NOT NULL DEFAULT '',     -- the last refused prompt, at most 200 characters
    error     TEXT    NOT NULL DEFAULT '',     -- the last sentence the user was shown
    PRIMARY KEY (user_id, guild_id, source, reason, hour)
) WITHOUT ROWID;
CREATE INDEX refusals_hour ON refusals (hour);

-- The rejected rows kept so far become counts. Their kind was not stored: it is read back from the
-- sentence they were refused with.
INSERT INTO refusals (user_id, guild_id, source, reason, hour, count, last_at, sample, error)
SELECT user_id, coalesce(guild_id, 0), source,
       CASE WHEN error LIKE 'You may draw%' OR error LIKE 'You''ve reached%' THEN 'rate_limited'
            WHEN error LIKE 'You already have%' THEN 'too_many_pending'
            WHEN error LIKE 'The queue is%' THEN 'queue_full'
            ELSE 'bad_input' END AS reason,
       -- with one max() in a group, SQLite takes the bare prompt and error from that (the latest) row
       CAST(created_at / 3600 AS INTEGER) * 3600 AS hour, count(*), max(created_at),
       substr(prompt, 1, 200), coalesce(error, '')
FROM generations WHERE status = 'rejected'
GROUP BY 1, 2, 3, 4, 5;

-- A rejected row has no image, so nothing is made from it; the guard is for a hand-edited file.
DELETE FROM generations WHERE status = 'rejected'
    AND id NOT IN (SELECT parent_id FROM generations WHERE parent_id IS NOT NULL)
    AND id NOT IN (SELECT source_id FROM generations WHERE source_id IS NOT NULL)
    AND id NOT IN (SELECT generation_id FROM reports);
