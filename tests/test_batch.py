"""`zbot batch` (the prompts file, the images and the index it writes) and `zbot download` (the weights)."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from support.renderers import FakeRenderer

from zbot.app import open_core
from zbot.cli import main as cli
from zbot.cli.batch import INDEX, Line, draw_all, file_name, parse_prompts, read_batch, summary

# -- the prompts file -----------------------------------------------------------------------------

def test_a_line_is_a_prompt_with_an_optional_seed_after_the_last_bar():
    lines, problems = parse_prompts(
        "# a comment\n"
        "a red fox\n"
        "\n"
        "   a lighthouse at dusk | 42  \n"
        "a | b, as it is |\n"
        "一只红狐狸 | 7\n"
        "   # an indented comment\n"
        "x | y | 3\n")
    assert problems == []
    assert lines == [Line(2, "a red fox", None), Line(4, "a lighthouse at dusk", 42),
                     Line(5, "a | b, as it is", None), Line(6, "一只红狐狸", 7), Line(8, "x | y", 3)]


def test_every_bad_line_is_reported_with_its_number_before_anything_is_drawn(settings, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a fox\n | 5\na cat | seven\na dog | 4294967296\n\na kite\n")
    with pytest.raises(Exception) as raised:
        read_batch(settings, prompts, size=None, steps=None)
    assert str(raised.value).splitlines() == [
        "line 2: Describe the image you want: the prompt is empty.",
        ("line 3: 'seven' after the last | is not a seed (a whole number); a prompt that contains | "
         "ends with | or | SEED"),
        "line 4: The seed must be a whole number from 0 to 4294967295.",
        f"3 bad lines in {prompts}; nothing was drawn",
    ]


@pytest.mark.parametrize("text, size, message", [
    ("# only comments\n\n", None, "has no prompts"),
    ("a fox\n", "giant", "line 1: Unknown size 'giant'"),
])
def test_an_empty_file_or_a_bad_option_is_refused(settings, tmp_path, text, size, message):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text(text)
    with pytest.raises(Exception, match=message):
        read_batch(settings, prompts, size=size, steps=None)


def test_file_names_sort_like_the_prompts_file_and_survive_any_prompt():
    assert file_name(Line(3, "A red fox, in the SNOW!", None), 42) == "0003-a-red-fox-in-the-snow-42.png"
    assert file_name(Line(12, "一只红狐狸", None), 7) == "0012-一只红狐狸-7.png"
    assert file_name(Line(1, "../../etc/passwd", None), 1) == "0001-etc-passwd-1.png"
    assert file_name(Line(1, "???", None), 1) == "0001-image-1.png"
    assert file_name(Line(1, "word " * 100, None), 1) == "0001-word-word-word-word-word-word-1.png"


# -- drawing --------------------------------------------------------------------------------------

async def test_each_image_is_written_with_an_index_record_that_reproduces_it(settings, tmp_path):
    lines = [Line(1, "a red fox", 42), Line(3, "bad", None), Line(4, "a kite", None)]
    out = tmp_path / "out"
    seen: list[float] = []
    async with open_core(settings, [FakeRenderer(fail_prompts=("bad",))]) as core:
        drawn = await draw_all(core.service, settings, lines, out, size="wide", steps=3,
                               on_progress=seen.append)
        records = [json.loads(line) for line in (out / INDEX).read_text().splitlines()]
        # Draw each again from its record alone: the same PNG.
        again = await draw_all(core.service, settings,
                               [Line(r["line"], r["prompt"], r["seed"]) for r in records],
                               tmp_path / "again", size=records[0]["size"], steps=records[0]["steps"])

    assert [d.error for d in drawn] == [None, "the renderer failed (RuntimeError)", None]
    assert [r["line"] for r in records] == [1, 4] and records[0]["seed"] == 42
    assert {k: records[0][k] for k in ("prompt", "size", "width", "height", "steps", "file")} == {
        "prompt": "a red fox", "size": "wide", "width": 96, "height": 64, "steps": 3,
        "file": "0001-a-red-fox-42.png"}
    assert records[1]["file"] == drawn[2].file.name and records[1]["seed"] == drawn[2].result.seed
    for record, redrawn in zip(records, again, strict=True):
        assert (out / record["file"]).read_bytes() == redrawn.file.read_bytes()
    assert sorted(seen) == seen and seen[-1] == 3.0  # progress only moves forward, to every image

    table = summary(drawn, out, 1.5)
    assert table.row_count == 3 and "2 of 3 images" in str(table.title)


async def test_the_queue_holds_at_most_the_running_job_and_the_next(settings, tmp_path):
    renderer = FakeRenderer(delay=0.05)
    depths: list[int] = []
    async with open_core(settings, [renderer]) as core:
        lines = [Line(n, f"fox {n}", n) for n in range(1, 7)]
        drawn = await draw_all(core.service, settings, lines, tmp_path / "out", size=None, steps=2,
                               on_progress=lambda done: depths.append(core.executor.depth))
    assert all(d.result for d in drawn) and renderer.ran == sorted(renderer.ran)
    assert max(depths) <= 2


def zbot(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ZBOT_")}
    return subprocess.run([sys.executable, "-m", "zbot.cli.main", *args], cwd=cwd, env={**clean, **env},
                          capture_output=True, text=True, timeout=120, check=False)


async def test_zbot_batch_draws_every_line_and_any_image_can_be_drawn_again(settings, tiny_model, tmp_path,
                                                                          tiny_checker):
    (tmp_path / "prompts.txt").write_text("# two foxes\na red fox | 7\n\na blue fox\n")
    # The real checker's code path on a random checkpoint of its architecture; a threshold nothing reaches.
    env = {"ZBOT_MODEL": str(tiny_model), "ZBOT_SIZES": '{"small": "64x64"}', "ZBOT_STEPS": "2",
           "ZBOT_SAFETY_MODEL": str(tiny_checker), "ZBOT_SAFETY_THRESHOLD": "1"}
    done = zbot("batch", "prompts.txt", "--out", "out", cwd=tmp_path, **env)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in (tmp_path / "out" / INDEX).read_text().splitlines()]
    assert [(r["line"], r["prompt"]) for r in records] == [(2, "a red fox"), (4, "a blue fox")]
    assert records[0]["seed"] == 7 and all(str(r["seed"]) in done.stdout for r in records)
    assert all(r["safety"]["checker"] == "vit" and 0 < r["safety"]["score"] < 1 and not r["safety"]["flagged"]
               for r in records)
    assert "2 of 2 images" in done.stdout and "index.jsonl" in done.stdout and "Traceback" not in done.stderr

    # Here, in another process, from the record alone: the same PNG.
    second = records[1]
    s = settings.model_copy(update={"model": str(tiny_model), "device": "cpu", "sizes": {"small": "64x64"}})
    async with open_core(s) as core:
        [again] = await draw_all(core.service, s, [Line(0, second["prompt"], second["seed"])],
                                 tmp_path / "again", size=second["size"], steps=second["steps"])
    assert again.file.read_bytes() == (tmp_path / "out" / second["file"]).read_bytes()


def test_a_bad_prompts_file_is_an_error_per_line_and_exit_1(settings, tmp_path, capsys, restore_logging):
    (tmp_path / "prompts.txt").write_text("a fox | x\n\n | 3\n")
    assert cli.main(["batch", "prompts.txt", "--out", "out"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("zbot: line 1: 'x' after the last |") and err[1].startswith("zbot: line 3: ")
    assert err[-1] == "zbot: 2 bad lines in prompts.txt; nothing was drawn"
    assert not (tmp_path / "out").exists()


# -- zbot download --------------------------------------------------------------------------------

def cached_snapshot(tiny_model: Path, cache: Path) -> Path:
    snapshot = cache / "models" / "Tongyi-MAI--Z-Image-Turbo" / "snapshots" / "master"
    snapshot.parent.mkdir(parents=True)
    snapshot.symlink_to(tiny_model, target_is_directory=True)
    return snapshot


@pytest.fixture
def offline(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)


def cached_checker(checker: Path, cache: Path, repo: str = "Falconsai/nsfw_image_detection") -> Path:
    """The checker as huggingface_hub keeps a download: models--ORG--NAME/snapshots/REV, refs/main = REV."""
    folder = cache / f"models--{repo.replace('/', '--')}"
    snapshot = folder / "snapshots" / ("0" * 40)
    shutil.copytree(checker, snapshot)
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text("0" * 40)
    return snapshot


def test_download_finds_complete_cached_snapshots_without_the_network(settings, tiny_model, tiny_checker, tmp_path,
                                                                      monkeypatch, capsys, offline, restore_logging):
    snapshot = cached_snapshot(tiny_model, tmp_path / "cache")
    checker = cached_checker(tiny_checker, tmp_path / "hf")
    monkeypatch.setenv("MODELSCOPE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf"))  # read at import
    assert cli.main(["download"]) == 0
    out = capsys.readouterr().out
    assert "Tongyi-MAI/Z-Image-Turbo: complete in" in out and str(snapshot) in out and " MB)" in out
    assert f"Falconsai/nsfw_image_detection (the safety checker): in {checker}" in out


def fake_modelscope(monkeypatch, download):
    """ModelScope's snapshot_download: nothing cached; `download(model)` stands for the network."""
    ms = importlib.import_module("modelscope.hub.snapshot_download")
    calls = []

    def snapshot_download(model, local_files_only=False, **kwargs):
        calls.append((model, local_files_only))
        if local_files_only:
            raise ValueError("not in the cache")
        return str(download(model))

    monkeypatch.setattr(ms, "snapshot_download", snapshot_download)
    return calls


def test_download_fetches_what_is_missing_and_checks_it_is_complete(settings, tiny_model, tmp_path,
                                                                    monkeypatch, capsys, offline,
                                                                    restore_logging):
    target = tmp_path / "cache" / "Org--Model"
    calls = fake_modelscope(monkeypatch, lambda model: shutil.copytree(tiny_model, target))
    assert cli.main(["download", "--model", "Org/Model"]) == 0
    assert calls == [("Org/Model", True), ("Org/Model", False)]
    assert f"Org/Model: complete in {target}" in capsys.readouterr().out


def test_an_incomplete_download_or_no_network_is_one_line_and_exit_1(settings, tiny_model, tmp_path,
                                                                      monkeypatch, capsys, offline,
                                                                      restore_logging):
    partial = tmp_path / "partial"
    partial.mkdir()
    shutil.copy(tiny_model / "model_index.json", partial)
    fake_modelscope(monkeypatch, lambda model: partial)
    assert cli.main(["download", "--model", "Org/Model"]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == \
        f"zbot: the download of Org/Model into {partial} is incomplete; run the command again"

    def unreachable(model):
        raise ConnectionError("Max retries exceeded: modelscope.cn")

    fake_modelscope(monkeypatch, unreachable)
    assert cli.main(["download", "--model", "Org/Model"]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("zbot: could not download Org/Model from ModelScope (ConnectionError")


def test_download_of_a_local_folder_only_checks_it(settings, tiny_model, capsys, offline, restore_logging):
    assert cli.main(["download", "--model", str(tiny_model)]) == 0
    assert f"complete in {tiny_model}" in capsys.readouterr().out
    assert cli.main(["download", "--model", "/no/such/folder"]) == 1
    assert "no such directory" in capsys.readouterr().err
