"""zbot as a user installs it from a wheel, not from this checkout: the schema must travel with it."""

from __future__ import annotations

import shutil
import site
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CREATE_TABLES = textwrap.dedent("""
    import asyncio, sqlite3, sys
    import zbot
    from zbot.core.store import Store

    assert zbot.__file__.startswith(sys.argv[1]), zbot.__file__  # the installed copy, not the checkout
    async def main():
        store = await Store.open("fresh.sqlite3")
        await store.close()
    asyncio.run(main())
    db = sqlite3.connect("fresh.sqlite3")
    print(db.execute("PRAGMA user_version").fetchone()[0],
          sorted(r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")))
""")


def run(*args, cwd: Path) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_a_wheel_installed_into_a_fresh_venv_creates_its_tables(tmp_path: Path):
    # Built from a copy of the sources (a build writes into its source folder), offline: with the
    # setuptools installed here (the test extra brings it), from no index.
    source = tmp_path / "src"
    for folder in ("zbot", "migrations"):  # the schema lives at the top of the project, outside the package
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
        "-w", tmp_path / "dist", source, cwd=tmp_path)
    [wheel] = (tmp_path / "dist").glob("zbot-*.whl")
    import zipfile

    with zipfile.ZipFile(wheel) as archive:  # the licence travels with the package
        [licence] = [name for name in archive.namelist() if name.endswith("LICENSE")]
        assert licence.endswith(".dist-info/licenses/LICENSE"), licence  # where PEP 639 puts it
        assert "Apache License" in archive.read(licence).decode()
        metadata = archive.read(next(n for n in archive.namelist() if n.endswith("METADATA"))).decode()
        # An SPDX expression (PEP 639), not the `license = {text = ...}` table setuptools deprecates
        # (an error from 2027-02-18), which wrote a free-text "License:" field instead.
        assert "License-Expression: Apache-2.0" in metadata and "License-File: LICENSE" in metadata
        assert "\nLicense:" not in metadata
        # Every package of every layer, and the whole schema, mapped into the package as zbot/migrations.
        names = set(archive.namelist())
        packages = {str(p.relative_to(ROOT)) for p in (ROOT / "zbot").rglob("__init__.py")}
        assert packages <= names, packages - names
        schema = {f"zbot/migrations/{p.name}" for p in (ROOT / "migrations").glob("*.sql")}
        assert len(schema) >= 10 and schema <= names, schema - names
    fresh = tmp_path / "fresh"
    run(sys.executable, "-m", "venv", "--without-pip", fresh, cwd=tmp_path)
    python = fresh / "bin" / "python"
    run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q", wheel,
        cwd=tmp_path)
    installed = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))",
                         cwd=tmp_path).stdout.strip())
    # zbot's dependencies (not zbot itself) from this environment, so nothing is downloaded.
    ours = sysconfig.get_path("purelib")
    (installed / "deps.pth").write_text("\n".join({ours, *site.getsitepackages()}) + "\n")
    out = run(python, "-c", CREATE_TABLES, installed, cwd=tmp_path).stdout.split(maxsplit=1)
    assert int(out[0]) == len(schema) and "generations" in out[1] and "bans" in out[1]
