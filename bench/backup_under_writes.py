"""`zbot backup` of a 240 MiB database while another connection commits a row every 0.2 s (a busy
bot's rate) or every 0.05 s: how long zbot.core.maintenance.backup takes (the copy and its integrity check),
and, for comparison, whether SQLite's backup in steps of 1,024 pages (zbot before) ends at all within
a cap, and how many steps it took.

    python bench/backup_under_writes.py [--mib 240] [--runs 3] [--stepped-cap-s 20]

One JSON line last; bench/results/backup-cpu2.json holds a run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from zbot.core.maintenance import backup  # noqa: E402


def build(path: Path, mib: int) -> None:
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")  # as zbot's Store opens it
    db.execute("CREATE TABLE generations (id INTEGER PRIMARY KEY)")  # backup counts its rows
    db.execute("CREATE TABLE ballast (id INTEGER PRIMARY KEY, data BLOB)")
    db.execute("CREATE TABLE ticks (id INTEGER PRIMARY KEY, at REAL)")
    db.execute("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
               "INSERT INTO ballast (data) SELECT randomblob(1048576) FROM n", (mib,))
    db.commit()
    db.close()


class Writer(threading.Thread):
    def __init__(self, database: Path, every_s: float):
        super().__init__(daemon=True)
        self.database, self.every_s, self.stop, self.commits = database, every_s, threading.Event(), 0

    def run(self) -> None:
        db = sqlite3.connect(self.database, timeout=30)
        while not self.stop.is_set():
            db.execute("INSERT INTO ticks (at) VALUES (?)", (time.time(),))
            db.commit()
            self.commits += 1
            self.stop.wait(self.every_s)
        db.close()


def under_writes(database: Path, every_s: float, work) -> tuple[float, int, object]:
    writer = Writer(database, every_s)
    writer.start()
    time.sleep(0.3)
    before, started = writer.commits, time.perf_counter()
    try:
        result = work()
    finally:
        took = time.perf_counter() - started
        writer.stop.set()
        writer.join()
    return took, writer.commits - before, result


def stepped(database: Path, target: Path, cap_s: float) -> dict:
    """SQLite's backup in steps of 1,024 pages, as zbot did, given up after `cap_s`."""
    steps, started = [0], time.perf_counter()

    def progress(status, remaining, total):
        steps[0] += 1
        if time.perf_counter() - started > cap_s:
            raise TimeoutError

    source, copy = sqlite3.connect(database, timeout=30), sqlite3.connect(target)
    try:
        source.backup(copy, pages=1024, sleep=0.005, progress=progress)
        finished = True
    except TimeoutError:
        finished = False
    finally:
        copy.close()
        source.close()
        target.unlink(missing_ok=True)
    return {"finished": finished, "steps": steps[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=240)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--stepped-cap-s", type=float, default=20.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        database = Path(folder) / "zbot.sqlite3"
        started = time.perf_counter()
        build(database, args.mib)
        built_s = time.perf_counter() - started
        size = database.stat().st_size
        pages = sqlite3.connect(database).execute("PRAGMA page_count").fetchone()[0]
        rates = {}
        for every_s in (0.2, 0.05):
            runs = []
            for n in range(args.runs):
                target = Path(folder) / f"copy{n}.sqlite3"
                took, commits, copy = under_writes(database, every_s, lambda t=target: backup(database, t))
                runs.append({"s": round(took, 3), "commits_during": commits})
                target.unlink()
            old_s, old_commits, old = under_writes(
                database, every_s, lambda: stepped(database, Path(folder) / "old.sqlite3", args.stepped_cap_s))
            rates[f"write_every_{every_s}s"] = {
                "backup_s_median": round(statistics.median(r["s"] for r in runs), 3), "runs": runs,
                "stepped_1024_pages": {**old, "s": round(old_s, 1), "commits_during": old_commits,
                                       "steps_if_nobody_wrote": -(-pages // 1024)}}
    print(json.dumps({
        "bench": "backup_under_writes", "database_mib": round(size / 2**20, 1), "pages": pages,
        "build_s": round(built_s, 2),
        "method": "sqlite3 backup API, one step (pages=-1), then integrity_check", **rates,
        "machine": f"{platform.machine()} {os.cpu_count()} cpu, {platform.python_version()}, SQLite {sqlite3.sqlite_version}",
    }))


if __name__ == "__main__":
    main()
