"""The drawn images: one PNG per image in a folder beside the database, from the render until the post
and then for ZBOT_KEEP_IMAGES_DAYS (picks, variations and upscales start from them).

A job is "drawn" from the moment its PNG is here until it is posted. A post that fails, or a restart in
between, loses nothing: the image is posted from here, never drawn again. zbot.core.lifecycle sweeps out the
files of jobs that are over and older than ZBOT_KEEP_IMAGES_DAYS, and those of the oldest jobs beyond
ZBOT_KEEP_IMAGES_MAX_GB (`trim`), so that kept images can't fill the disk the database writes to.
Blocking file work: call these through asyncio.to_thread (zbot.core.lifecycle does).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)

_NAME_RE = re.compile(r"^(\d+)(?:-(\d+))?\.png$")  # JOB.png, and JOB-N.png for a grid's image N > 0
_UPLOAD_RE = re.compile(r"^([0-9a-f]{64})\.png$")  # uploads/SHA256.png: a picture someone drew from
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_END = b"IEND\xaeB`\x82"  # the last chunk of every PNG, and its CRC
# A save's temporary file older than this is a crashed save's: a live one (of any process on this
# folder) is renamed into place within a second.
STALE_PART_S = 15 * 60


def drawn_dir(database: Path) -> Path:
    """The folder beside the database's real file: every process reaching it by another path (a symlink,
    a relative path) finds the same images. (SQLite resolves symlinks the same way for its -wal file.)"""
    database = database.expanduser().resolve()
    return database.with_name(database.name + "-drawn")


class DrawnImages:
    def __init__(self, folder: Path, *, max_bytes: int = 0):
        """`max_bytes`: the budget `trim` keeps the kept PNGs within; 0: none. Sweeps out crashed saves'
        temporary files, and measures the folder."""
        self.folder = folder
        self.max_bytes = max_bytes
        self._lock = threading.Lock()  # saves and removals run on several threads
        self.bytes = 0  # the kept PNGs' size: counted on save and removal, measured again by `measure`
        folder.mkdir(parents=True, exist_ok=True)
        self.sweep_partials()
        self.measure()

    def path(self, job_id: int, index: int = 0) -> Path:
        return self.folder / (f"{job_id}.png" if index == 0 else f"{job_id}-{index}.png")

    def save(self, job_id: int, png: bytes, index: int = 0) -> None:
        """Write the image whole or not at all: a temporary file renamed into place. Not synced to the
        disk, like SQLite's own writes here (synchronous=NORMAL): a crash of the process keeps it; a
        power cut may not, and `load` then finds it incomplete and the job is drawn again."""
        final = self.path(job_id, index)
        partial = final.with_suffix(f".{os.getpid()}.part")
        try:
            partial.write_bytes(png)
            replaced = _size(final)  # a save again (a retried render) replaces its file
            os.replace(partial, final)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        with self._lock:
            self.bytes += len(png) - replaced

    def load(self, job_id: int, index: int = 0) -> bytes | None:
        """The kept PNG, or None if there is none or it is not whole (it must end with its IEND chunk)."""
        try:
            png = self.path(job_id, index).read_bytes()
        except FileNotFoundError:
            return None
        if not (png.startswith(PNG_SIGNATURE) and png.endswith(PNG_END)):
            log.warning("the kept image of job %s is incomplete; it will be drawn again", job_id)
            return None
        return png

    def load_all(self, job_id: int, count: int) -> list[bytes] | None:
        """Every image of a job of `count`, or None if any is missing or cut short."""
        if count < 1:
            return None  # a pick row: its image is its grid's
        pngs = [self.load(job_id, index) for index in range(count)]
        return None if any(png is None for png in pngs) else pngs

    def remove(self, job_id: int) -> None:
        for path in self.folder.glob(f"{job_id}*.png"):
            if (m := _NAME_RE.match(path.name)) and int(m[1]) == job_id:
                size = _size(path)
                path.unlink(missing_ok=True)
                with self._lock:
                    self.bytes -= size

    # -- uploaded pictures: kept once by their hash, however many jobs draw from them ---------------------

    @property
    def uploads(self) -> Path:
        return self.folder / "uploads"

    def save_upload(self, png: bytes) -> str:
        """Keep an uploaded picture (as the PNG that jobs draw from); its hash, which names it. The same
        picture uploaded again is not written again."""
        digest = hashlib.sha256(png).hexdigest()
        final = self.uploads / f"{digest}.png"
        if final.exists():
            return digest
        self.uploads.mkdir(exist_ok=True)
        partial = final.with_suffix(f".{os.getpid()}.part")
        try:
            partial.write_bytes(png)
            os.replace(partial, final)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        with self._lock:
            self.bytes += len(png)
        return digest

    def load_upload(self, digest: str) -> bytes | None:
        """A kept upload by its hash; None when it is gone (or the hash names no file: never a path)."""
        if not _UPLOAD_RE.match(f"{digest}.png"):
            return None
        try:
            return (self.uploads / f"{digest}.png").read_bytes()
        except FileNotFoundError:
            return None

    def upload_hashes(self) -> list[str]:
        if not self.uploads.is_dir():
            return []
        return sorted(m[1] for p in self.uploads.iterdir() if (m := _UPLOAD_RE.match(p.name)))

    def remove_upload(self, digest: str) -> None:
        path = self.uploads / f"{digest}.png"
        size = _size(path)
        path.unlink(missing_ok=True)
        with self._lock:
            self.bytes -= size

    def _upload_bytes(self) -> int:
        return sum(_size(self.uploads / f"{digest}.png") for digest in self.upload_hashes())

    def job_ids(self) -> list[int]:
        return sorted({int(m[1]) for p in self.folder.iterdir() if (m := _NAME_RE.match(p.name))})

    # -- keeping the folder within bounds ---------------------------------------------------------

    def sizes(self) -> dict[int, int]:
        """Bytes kept per job (a grid's images together)."""
        sizes: dict[int, int] = {}
        with os.scandir(self.folder) as entries:
            for entry in entries:
                if m := _NAME_RE.match(entry.name):
                    try:
                        sizes[int(m[1])] = sizes.get(int(m[1]), 0) + entry.stat().st_size
                    except FileNotFoundError:  # removed meanwhile (another process's sweep)
                        pass
        return sizes

    def measure(self) -> int:
        """The kept PNGs' size, read from the disk (other processes on this database save and sweep
        here too); `bytes` is set to it."""
        total = sum(self.sizes().values()) + self._upload_bytes()
        with self._lock:
            self.bytes = total
        return total

    def over_budget(self) -> bool:
        return 0 < self.max_bytes < self.bytes

    def trim(self, keep: set[int]) -> list[int]:
        """Remove the oldest jobs' images (by job id, which grows with time) until the folder is within
        `max_bytes`, never those of a job in `keep`. The ids removed, oldest first."""
        if not self.max_bytes:
            return []
        sizes = self.sizes()
        total = sum(sizes.values()) + self._upload_bytes()  # uploads count too; the sweep removes those
        removed = []
        for job_id in sorted(sizes):
            if total <= self.max_bytes:
                break
            if job_id in keep:
                continue
            self.remove(job_id)
            total -= sizes[job_id]
            removed.append(job_id)
        with self._lock:
            self.bytes = total
        return removed

    def sweep_partials(self, older_than_s: float = STALE_PART_S) -> int:
        """Remove the temporary files that saves cut short by a crash left; the number removed."""
        cutoff, swept = time.time() - older_than_s, 0
        for path in [*self.folder.glob("*.part"), *self.uploads.glob("*.part")]:
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    swept += 1
            except FileNotFoundError:  # renamed into place or swept meanwhile
                continue
        if swept:
            log.info("removed %d temporary files of image saves a crash cut short", swept)
        return swept


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
