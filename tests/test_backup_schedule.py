"""Backups on a schedule (deploy/backup.sh, run by docker compose's backup profile and the systemd
timer): a real `zbot backup` of a real database, the KEEP newest copies kept, none deleted on failure."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import yaml

from zbot.core.store import Store

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "deploy" / "backup.sh"
OLD = [f"zbot-2026010{day}T030000Z.sqlite3" for day in range(1, 6)]


def run_backup(folder: Path, database: Path, keep: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "ZBOT_DATABASE": str(database),
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}  # this checkout's `zbot`
    return subprocess.run(["sh", SCRIPT, folder, str(keep), "0"], cwd=folder.parent, env=env,
                          capture_output=True, text=True, timeout=60)


async def test_a_backup_is_taken_and_only_the_newest_are_kept(tmp_path):
    database = tmp_path / "zbot.sqlite3"
    await (await Store.open(database)).close()
    folder = tmp_path / "backups"
    folder.mkdir()
    for name in OLD:
        (folder / name).write_bytes(b"an older backup")
    (folder / "notes.txt").write_text("not a backup: left alone")
    done = run_backup(folder, database, keep=3)
    assert done.returncode == 0, done.stderr
    left = sorted(p.name for p in folder.iterdir())
    [new] = [name for name in left if name not in OLD and name != "notes.txt"]
    assert left == sorted([new, *OLD[-2:], "notes.txt"])  # the new one and the two newest old ones
    tables = {r[0] for r in sqlite3.connect(folder / new).execute("SELECT name FROM sqlite_master")}
    assert "generations" in tables


def test_a_failed_backup_deletes_no_older_one(tmp_path):
    folder = tmp_path / "backups"
    folder.mkdir()
    for name in OLD:
        (folder / name).write_bytes(b"an older backup")
    done = run_backup(folder, tmp_path / "no-such.sqlite3", keep=1)  # no database: zbot backup fails
    assert done.returncode != 0 and "no database" in done.stderr
    assert sorted(p.name for p in folder.iterdir()) == OLD


def test_the_compose_file_runs_it_in_a_profile_of_its_own():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    backup = compose["services"]["backup"]
    assert backup["profiles"] == ["backup"] and "profiles" not in compose["services"]["zbot"]
    mounts = dict(v.split(":")[:2] for v in backup["volumes"])
    assert (ROOT / "deploy/backup.sh").exists() and mounts["./deploy/backup.sh"] == backup["entrypoint"][1]
    # The same database the bot writes: its volume and its path.
    bot = compose["services"]["zbot"]
    assert mounts["data"] == "/data" and "data:/data" in bot["volumes"]
    assert backup["environment"]["ZBOT_DATABASE"] == bot["environment"]["ZBOT_DATABASE"]
    assert mounts["backups"] == backup["entrypoint"][2] and "backups" in compose["volumes"]
