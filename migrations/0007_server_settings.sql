-- 0007: per-server settings, set from Discord (/settings) or `zbot settings`, on top of the
-- environment's; a NULL value is the default again (a reset). Every change is kept in settings_audit,
-- written by triggers in the same statement's transaction.
CREATE TABLE server_settings (
    guild_id   INTEGER NOT NULL,
    name       TEXT    NOT NULL,
    value      TEXT,
    updated_at REAL    NOT NULL,
    updated_by INTEGER NOT NULL,
    PRIMARY KEY (guild_id, name)
);

CREATE TABLE settings_audit (
    id        INTEGER PRIMARY KEY,
    guild_id  INTEGER NOT NULL,
    name      TEXT    NOT NULL,
    old_value TEXT,
    new_value TEXT,
    actor_id  INTEGER NOT NULL,
    at        REAL    NOT NULL
);
CREATE INDEX settings_audit_guild ON settings_audit(guild_id, id);

CREATE TRIGGER server_settings_inserted AFTER INSERT ON server_settings
BEGIN
    INSERT INTO settings_audit (guild_id, name, old_value, new_value, actor_id, at)
    VALUES (new.guild_id, new.name, NULL, new.value, new.updated_by, new.updated_at);
END;

CREATE TRIGGER server_settings_updated AFTER UPDATE ON server_settings
WHEN old.value IS NOT new.value
BEGIN
    INSERT INTO settings_audit (guild_id, name, old_value, new_value, actor_id, at)
    VALUES (new.guild_id, new.name, old.value, new.value, new.updated_by, new.updated_at);
END;
