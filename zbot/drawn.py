"""The drawn images that are not posted yet: one PNG per job in a folder beside the database.

A job is "drawn" from the moment its PNG is here until it is posted; then the file goes. A post that
fails, or a restart in between, loses nothing: the image is posted from here, never drawn again.
Blocking file work: call these through asyncio.to_thread (zbot.lifecycle does).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

log = logging.getLogger(__name__)

_NAME_RE = re.compile(r"^(\d+)\.png$")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_END = b"IEND\xaeB`\x82"  # the last chunk of every PNG, and its CRC


def drawn_dir(database: Path) -> Path:
    return database.with_name(database.name + "-drawn")


class DrawnImages:
    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def path(self, job_id: int) -> Path:
        return self.folder / f"{job_id}.png"

    def save(self, job_id: int, png: bytes) -> None:
        """Write the image whole or not at all: a temporary file renamed into place. Not synced to the
        disk, like SQLite's own writes here (synchronous=NORMAL): a crash of the process keeps it; a
        power cut may not, and `load` then finds it incomplete and the job is drawn again."""
        final = self.path(job_id)
        partial = final.with_suffix(f".{os.getpid()}.part")
        try:
            partial.write_bytes(png)
            os.replace(partial, final)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise

    def load(self, job_id: int) -> bytes | None:
        """The kept PNG, or None if there is none or it is not whole (it must end with its IEND chunk)."""
        try:
            png = self.path(job_id).read_bytes()
        except FileNotFoundError:
            return None
        if not (png.startswith(PNG_SIGNATURE) and png.endswith(PNG_END)):
            log.warning("the kept image of job %s is incomplete; it will be drawn again", job_id)
            return None
        return png

    def remove(self, job_id: int) -> None:
        self.path(job_id).unlink(missing_ok=True)

    def job_ids(self) -> list[int]:
        return sorted(int(m[1]) for p in self.folder.iterdir() if (m := _NAME_RE.match(p.name)))
