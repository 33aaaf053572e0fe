"""Which process holds a job: each process that draws (zbot run, draw, batch) is an instance with an
id, and holds an exclusive lock on a file named after it for as long as it lives.

A job row's `owner` is the instance that admitted or adopted it. Whether that instance is still alive is
a question the lock answers at once, also right after a kill -9 or a container restart (the operating
system drops a dead process's locks): if another process can take the lock, the owner is gone and its
unfinished jobs may be adopted. Two bots on one database each keep their own jobs, and a restart never
draws or posts a job that a live process still holds.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import time
from pathlib import Path

try:
    import fcntl

    def _try_lock(fd: int) -> None:
        """Take an exclusive lock on the open file, or raise OSError (BlockingIOError) if it is held."""
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
except ImportError:  # pragma: no cover - Windows
    import msvcrt

    def _try_lock(fd: int) -> None:
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)

log = logging.getLogger(__name__)

_ID_RE = re.compile(r"^[0-9a-f]{16}$")


def instances_dir(database: Path) -> Path:
    """Beside the database's real file, so that every process reaching it by another path (a symlink,
    a relative one) looks at the same locks. (SQLite resolves symlinks the same way for its -wal file;
    a second name that no path resolves to, a hard link, would split SQLite's own locking too.)"""
    database = database.expanduser().resolve()
    return database.with_name(database.name + "-instances")


class Instance:
    """This process, as the owner of the jobs it admits. `close()` (or the process's end) releases it."""

    def __init__(self, database: Path):
        self.folder = instances_dir(database)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.id = f"{int(time.time()):08x}{secrets.token_hex(4)}"  # sortable by start time, and unique
        self._fd: int | None = _locked(self.folder / f"{self.id}.lock", create=True)
        if self._fd is None:
            raise RuntimeError(f"could not lock {self.folder / self.id}.lock")
        self._unreadable: set[str] = set()  # owners whose lock file we may not open, said once each

    def alive(self, owner: str | None) -> bool:
        """Whether the instance `owner` still runs (this one always does). None, an id not of this
        scheme, or a lock nobody holds: gone. A lock file we may not open: alive (its jobs stay its)."""
        if owner == self.id:
            return True
        if owner is None or not _ID_RE.match(owner):
            return False
        path = self.folder / f"{owner}.lock"
        try:
            fd = _locked(path, create=False)
        except FileNotFoundError:  # closed cleanly, or swept as gone already
            return False
        except PermissionError:
            # Another user's (a `zbot batch` run as root, its file 0600): whether it runs, we can't tell,
            # and taking its jobs over while it runs would draw and post them twice.
            if owner not in self._unreadable:
                self._unreadable.add(owner)
                log.warning("may not open %s (another user's?); its jobs are left to it. Run every zbot on "
                            "this database as the same user", path)
            return True
        if fd is None:
            return True
        try:
            path.unlink(missing_ok=True)  # its owner is gone: nobody needs the file any more
        except OSError:  # a folder we may not remove others' files from; the lock tells all the same
            log.debug("could not remove %s", path, exc_info=True)
        finally:
            os.close(fd)
        return False

    def close(self) -> None:
        """Release the lock (the process's end does the same) and remove the file."""
        if self._fd is None:
            return
        try:
            (self.folder / f"{self.id}.lock").unlink(missing_ok=True)
        except OSError:
            log.debug("could not remove the lock file of instance %s", self.id, exc_info=True)
        os.close(self._fd)
        self._fd = None

    def __repr__(self) -> str:
        return f"<zbot instance {self.id} (pid {os.getpid()})>"


def _locked(path: Path, *, create: bool) -> int | None:
    """An open descriptor of `path` holding its exclusive lock, or None if another process holds it.
    Another's file is opened read-only: flock needs no more, and its owner may be another user."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT if create else os.O_RDONLY, 0o644)
    try:
        _try_lock(fd)
    except OSError:
        os.close(fd)
        return None
    return fd
