-- 0010: bans. A server's managers (or a bot owner) stop a member from using zbot in that server; a bot
-- owner can stop someone everywhere (guild_id NULL). One row per user and place: a ban given again takes
-- the same row, and an unban keeps it with who lifted it, so that the trigger can record that (like
-- server_settings' NULL value, 0007). Every ban and unban is kept in bans_audit, written by triggers in
-- the same statement's transaction. A ban past its expires_at no longer applies: nothing has to run then.
CREATE TABLE bans (
    id         INTEGER PRIMARY KEY,
    guild_id   INTEGER,                   -- NULL: every server
    user_id    INTEGER NOT NULL,          -- a Discord user
    reason     TEXT    NOT NULL DEFAULT '',
    expires_at REAL,                      -- NULL: until it is lifted
    banned_by  INTEGER NOT NULL,          -- 0: the command line
    created_at REAL    NOT NULL,
    lifted_by  INTEGER,
    lifted_at  REAL                       -- NULL while it stands
);
-- A place NULL is kept apart from every server id (none is 0): one row per user and place, whatever SQLite
-- thinks of NULLs in a unique index.
CREATE UNIQUE INDEX bans_place ON bans (user_id, ifnull(guild_id, 0));
CREATE INDEX bans_guild ON bans (guild_id);

CREATE TABLE bans_audit (
    id         INTEGER PRIMARY KEY,
    guild_id   INTEGER,                   -- NULL: every server
    user_id    INTEGER NOT NULL,
    action     TEXT    NOT NULL,          -- ban | unban
    reason     TEXT,
    expires_at REAL,
    actor_id   INTEGER NOT NULL,          -- 0: the command line
    at         REAL    NOT NULL
);
CREATE INDEX bans_audit_guild ON bans_audit (guild_id, id);

CREATE TRIGGER bans_given AFTER INSERT ON bans
BEGIN
    INSERT INTO bans_audit (guild_id, user_id, action, reason, expires_at, actor_id, at)
    VALUES (new.guild_id, new.user_id, 'ban', new.reason, new.expires_at, new.banned_by, new.created_at);
END;

CREATE TRIGGER bans_given_again AFTER UPDATE ON bans
WHEN new.lifted_at IS NULL
BEGIN
    INSERT INTO bans_audit (guild_id, user_id, action, reason, expires_at, actor_id, at)
    VALUES (new.guild_id, new.user_id, 'ban', new.reason, new.expires_at, new.banned_by, new.created_at);
END;

CREATE TRIGGER bans_lifted AFTER UPDATE ON bans
WHEN new.lifted_at IS NOT NULL AND old.lifted_at IS NULL
BEGIN
    INSERT INTO bans_audit (guild_id, user_id, action, reason, expires_at, actor_id, at)
    VALUES (new.guild_id, new.user_id, 'unban', old.reason, old.expires_at, new.lifted_by, new.lifted_at);
END;
