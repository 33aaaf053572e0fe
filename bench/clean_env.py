"""A view of the installed packages holding only what zbot needs, for timing a start as a zbot install
would see it on a machine whose image carries much more.

The GPU machines we benchmark on have scipy, pandas, scikit-learn, peft, torchvision and more installed,
and diffusers and transformers import those whenever they are present: ~7 s of a start's imports there
(bench/results/gpu-nvidia-h200-start-probes-2026-12-03.txt). A zbot install (the Docker image, a venv)
has none of them. `clean_site_packages` links every installed distribution that zbot's dependencies
require, directly or not, into one folder; a process started with `python -S` and that folder on
PYTHONPATH imports exactly what such an install would have.
"""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

ROOT = Path(__file__).resolve().parent.parent


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def zbot_requirements(extras: tuple[str, ...] = ("fp8",)) -> list[str]:
    """zbot's runtime dependencies from pyproject.toml, with the extras a GPU install would add."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in extras:
        wanted += project.get("optional-dependencies", {}).get(extra, [])
    return [Requirement(text).name for text in wanted]


def requirement_closure(roots: list[str]) -> set[str]:
    """The installed distributions `roots` need, directly or through others (extras not asked for,
    and requirements whose markers don't hold here, left out); canonical names."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = canonical(todo.pop())
        if name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # not installed here (discord.py on the GPU machine, say): nothing to link
        seen.add(name)
        for text in dist.requires or []:
            try:
                requirement = Requirement(text)
            except InvalidRequirement:
                continue
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return seen


def clean_site_packages(folder: Path, keep: set[str]) -> Path:
    """Link the top-level files and folders of each installed distribution in `keep` (the first found
    on sys.path, as imports would find it) into `folder`; returns it."""
    folder.mkdir(parents=True, exist_ok=True)
    linked: set[str] = set()
    done: set[str] = set()
    for dist in metadata.distributions():
        name = canonical(dist.metadata["Name"] or "")
        if name not in keep or name in done:
            continue
        done.add(name)
        base = Path(dist.locate_file(""))
        tops = {Path(str(path)).parts[0] for path in (dist.files or []) if not str(path).startswith("..")}
        for top in tops:
            source, target = base / top, folder / top
            if top in linked or top == "__pycache__" or not source.exists():
                continue  # a folder several distributions share (nvidia/): linked once, whole
            target.symlink_to(source)
            linked.add(top)
    return folder
