"""The drawn images: one PNG per image in a folder beside the database, from the render until the post
and then for ZBOT_KEEP_IMAGES_DAYS (picks, variations and upscales start from them).

A job is "drawn" from the moment its PNG is here until it is posted. A post that fails, or a restart in
between, loses nothing: the image is posted from here, never drawn again. zbot.lifecycle sweeps out the
files of jobs that are over and older than ZBOT_KEEP_IMAGES_DAYS.
Blocking file work: call these through asyncio.to_thread (zbot.lifecycle does).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

log = logging.getLogger(__name__)

_NAME_RE = re.compile(r"^(\d+)(?:-(\d+))?\.png$")  # JOB.png, and JOB-N.png for a grid's image N > 0
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_END = b"IEND\xaeB`\x82"  # the last chunk of every PNG, and its CRC


def drawn_dir(database: Path) -> Path:
    return database.with_name(database.name + "-drawn")


class DrawnImages:
    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

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
            os.replace(partial, final)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise

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
                path.unlink(missing_ok=True)

    def job_ids(self) -> list[int]:
        return sorted({int(m[1]) for p in self.folder.iterdir() if (m := _NAME_RE.match(p.name))})
