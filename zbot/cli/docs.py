"""The configuration reference, generated from the Settings class so docs/configuration.md and
.env.example can't drift from the code (a test compares them)."""

from __future__ import annotations

from zbot.config import Settings, env_value


def settings_rows() -> list[tuple[str, str, str]]:
    rows = []
    for name, field in Settings.model_fields.items():
        default = field.default_factory() if field.default_factory else field.default
        rows.append((f"ZBOT_{name.upper()}", env_value(default), field.description or ""))
    return rows


def markdown_table() -> str:
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for name, default, meaning in settings_rows():
        shown = f"`{default}`" if default else "(empty)"
        lines.append(f"| `{name}` | {shown} | {meaning.replace('|', '/')} |")
    return "\n".join(lines)


FIRST = "ZBOT_DISCORD_TOKEN"  # the one setting every install needs
# Read by docker-compose.yml, not by zbot: (name, default shown, meaning).
COMPOSE_ONLY = (
    ("GRAFANA_ADMIN_PASSWORD", "admin", "Grafana's admin password (the monitoring profile); admin while unset."),
    ("BACKUP_EVERY", "86400", "Seconds between two backups of the database (the backup profile)."),
    ("BACKUP_KEEP", "7", "How many backups the backup profile keeps, the newest."),
)


def env_example() -> str:
    """.env.example: the token to set, then every other setting commented out at its default, so that a
    copied .env pins nothing and a later change of a default still reaches its user."""
    lines = ["# zbot settings: copy to .env, set the token, and uncomment only what you change. A line left",
             "# commented keeps zbot's default, also when a later version changes it.", ""]
    rows = sorted(settings_rows(), key=lambda row: row[0] != FIRST)
    for name, default, meaning in rows:
        lines.append(f"# {meaning}")
        lines.append(f"{name}={default}" if name == FIRST else f"# {name}={default}")
        lines.append("")
    lines += ["# -- Read by docker compose, not by zbot --", ""]
    for name, default, meaning in COMPOSE_ONLY:
        lines += [f"# {meaning}", f"# {name}={default}", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    print(env_example() if "--env" in sys.argv else markdown_table())
