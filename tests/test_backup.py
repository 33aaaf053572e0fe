"""`zbot backup` of a large database while another connection keeps writing, as a busy bot does."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from zbot.core.maintenance import backup
from zbot.core.store import Store

BALLAST_MB = 210
BOUND_S = 30.0  # a one-step copy takes about 1 s here; the old stepped copy never ended


async def big_database(path: Path, megabytes: int) -> None:
    """zbot's schema plus `megabytes` of blobs, written in one statement (about 2 s), and a table the
    test's writer appends to."""
    store = await Store.open(path)
    await store.close()
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE ballast (id INTEGER PRIMARY KEY, data BLOB)")
    db.execute("CREATE TABLE ticks (id INTEGER PRIMARY KEY, at REAL)")
    db.execute("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
               "INSERT INTO ballast (data) SELECT zeroblob(1000000) FROM n", (megabytes,))
    db.commit()
    db.close()


class Writer(threading.Thread):
    """Commits one row every `every_s` on its own connection until stopped."""

    def __init__(self, database: Path, every_s: float):
        super().__init__(daemon=True)
        self.database, self.every_s = database, every_s
        self.stop = threading.Event()
        self.committed = 0

    def run(self) -> None:
        db = sqlite3.connect(self.database, timeout=30)
        try:
            while not self.stop.is_set():
                db.execute("INSERT INTO ticks (at) VALUES (?)", (time.time(),))
                db.commit()
                self.committed += 1
                self.stop.wait(self.every_s)
        finally:
            db.close()


async def test_a_backup_of_a_200_mb_database_finishes_while_another_connection_commits_every_50_ms(tmp_path):
    database = tmp_path / "zbot.sqlite3"
    await big_database(database, BALLAST_MB)
    assert database.stat().st_size >= 200 * 10**6
    writer = Writer(database, every_s=0.05)
    writer.start()
    while writer.committed < 3:
        time.sleep(0.01)
    before = writer.committed
    done: list = []
    copying = threading.Thread(target=lambda: done.append(backup(database, tmp_path / "copy.sqlite3")), daemon=True)
    started = time.monotonic()
    copying.start()
    copying.join(BOUND_S)
    took = time.monotonic() - started
    finished = not copying.is_alive()
    writer.stop.set()  # lets a copy that never ends on its own end, so the test can fail cleanly
    writer.join()
    copying.join()
    assert finished, f"the backup did not finish within {BOUND_S:.0f} s while the writer committed"
    after = writer.committed
    copy = sqlite3.connect(done[0].path)
    try:
        assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        ticks = [row[0] for row in copy.execute("SELECT id FROM ticks ORDER BY id")]
        ballast = copy.execute("SELECT count(*), sum(length(data)) FROM ballast").fetchone()
    finally:
        copy.close()
    # A snapshot: every row committed before the backup began, none missing in between.
    assert ticks == list(range(1, len(ticks) + 1)) and before <= len(ticks) <= after
    assert ballast == (BALLAST_MB, BALLAST_MB * 1000000)
    assert after - before >= 2, f"the writer should have committed during the {took:.1f} s copy"
    database.unlink()  # 400 MB that pytest's kept temporary folders need not hold
    done[0].path.unlink()
