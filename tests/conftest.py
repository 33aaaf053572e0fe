"""Shared fixtures: a fresh database per test, a tiny model built once per session, a fake renderer."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from support.renderers import FakeRenderer

from zbot.config import Settings

# No test reaches the network: a checker or model not on disk fails instead of being downloaded.
os.environ["HF_HUB_OFFLINE"] = "1"
from zbot.core.store import Store


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    # Keep a developer's own .env and ZBOT_* variables out of the tests.
    monkeypatch.chdir(tmp_path)
    for name in list(__import__("os").environ):
        if name.startswith("ZBOT_"):
            monkeypatch.delenv(name)
    return Settings(database=tmp_path / "zbot.sqlite3", sizes={"square": "64x64", "wide": "96x64"}, safety="off")


@pytest.fixture
async def store(settings: Settings):
    store = await Store.open(settings.database)
    yield store
    await store.close()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from zbot.engine.tiny import build_tiny_model

    if "PYTEST_XDIST_WORKER" not in os.environ:  # one process: a session of its own
        return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")
    # pytest-xdist's workers share one build (their temp folders sit in one run's folder): the first
    # builds it, the others wait for it (pytest-xdist's recipe for a session fixture made once). Built
    # beside it and renamed: a build cut short is never taken for a model.
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp().parent / "tiny-model"
    with FileLock(f"{shared}.lock"):
        if not shared.is_dir():
            os.replace(build_tiny_model(tmp_path_factory.mktemp("tiny") / "model"), shared)
    return shared


@pytest.fixture
async def fake():
    """The fake Discord the bot tests run against: errors logged by discord.py or zbot fail the test, and
    an interaction answered later than Discord's 3 s gets "Unknown interaction"."""
    from support.fake_discord import FakeDiscord

    async with FakeDiscord(watch_loggers=("discord", "zbot")) as fake:
        fake.callback_deadline = 3.0
        yield fake


@pytest.fixture(scope="session")
def tiny_checker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random classifier of the safety checker's real architecture: ZBOT_SAFETY_MODEL for tests."""
    from zbot.engine.tiny import build_tiny_checker

    return build_tiny_checker(tmp_path_factory.mktemp("checker") / "vit")


@pytest.fixture
def fake_renderer() -> FakeRenderer:
    return FakeRenderer()


@pytest.fixture
def restore_logging():
    """cli.main (called in-process) sets up logging on the root logger; put it back for the next test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)


@pytest.fixture
def zbot_here(settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, restore_logging):
    """`zbot ARGS` as `zbot.cli.main.main` in the test's process (no ~5 s of imports for a process of its
    own), in the test's folder with the ZBOT_* variables given: returns (exit status, stdout, stderr)."""
    from zbot.cli import main as cli

    def run(*args: str, **env: str) -> tuple[int, str, str]:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        code = cli.main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


# `make test` runs the files on two workers (pytest-xdist, a file each at a time): the longest files go
# first, so that neither worker is left with one of them at the end while the other waits.
LONGEST_FIRST = ("test_engine_start.py", "test_ray.py", "test_restarts.py", "test_run_process.py", "test_cli.py",
                 "test_compile_fallback.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: place for place, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(LONGEST_FIRST)))  # stable: the rest in file order
