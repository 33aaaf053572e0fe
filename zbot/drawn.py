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


def drawn_dir(database: Path) -> Path:
    return database.with_name(database.name + "-drawn")


class DrawnImages:
    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def path(self, job_id: int) -> Path:
        return self.folder / f"{job_id}.png"

    def save(self, job_id: int, png: bytes) -> None:
        """Write the image whole or not at all (a temporary file renamed into place, synced first)."""
        final = self.path(job_id)
        partial = final.with_suffix(f".{os.getpid()}.part")
        try:
            with open(partial, "wb") as file:
                file.write(png)
                file.flush()
                os.fsync(file.fileno())
            os.replace(partial, final)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise

    def load(self, job_id: int) -> bytes | None:
        try:
            return self.path(job_id).read_bytes()
        except FileNotFoundError:
            return None

    def remove(self, job_id: int) -> None:
        self.path(job_id).unlink(missing_ok=True)

    def job_ids(self) -> list[int]:
        return sorted(int(m[1]) for p in self.folder.iterdir() if (m := _NAME_RE.match(p.name)))
