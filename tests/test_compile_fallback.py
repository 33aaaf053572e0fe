"""torch.compile that can't work at start: the engine says so in one line and serves eagerly, never a dead
bot. The compiler is taken away as a host without one would have it: CXX and CC name no program and PATH
holds no g++ (Inductor's check finds that before compiling), or the compiler is there but fails on
every file (found only when the first image compiles). Each start is a process of its own, with a
compile cache of its own: a warm cache would need no compiler."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CHILD = """
import json, logging, sys
lines = []
handler = logging.Handler()
handler.emit = lambda record: lines.append((record.levelname, record.name, record.getMessage()))
logging.getLogger().addHandler(handler)
logging.getLogger().setLevel(logging.INFO)
from zbot.engine.engine import Engine
from zbot.core.jobs import RenderSpec
engine = Engine(sys.argv[1], device="cpu", compile="on", sizes=[(64, 64)])
engine.load()
image = engine.render(RenderSpec(1, "a red fox", 3, 64, 64, 2), lambda *_: None)
print(json.dumps({"compiled": engine.compiled, "pending": [what for what, _ in engine.pending_warmups],
                  "colours": len(set(image.getdata())), "recompiles": engine.recompiles,
                  "warnings": [line for line in lines if line[0] in ("WARNING", "ERROR", "CRITICAL")]}))
"""


def start_without_compiler(model: Path, tmp_path: Path, cxx: str, path: str) -> dict:
    env = {**os.environ, "CXX": cxx, "CC": cxx, "PATH": path, "OMP_NUM_THREADS": "1",
           "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor-cache")}
    done = subprocess.run([sys.executable, "-c", CHILD, str(model)], capture_output=True, text=True, timeout=600,
                          env=env, cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def assert_served_eagerly(seen: dict, why: str) -> None:
    assert seen["compiled"] is False and seen["recompiles"] == 0
    assert seen["pending"] == []  # no warm-up draws left to do: they were for the compiler
    assert seen["colours"] > 1  # an image, not a flat colour
    [(level, logger, message)] = seen["warnings"]  # one line, and nothing else complains
    assert (level, logger) == ("WARNING", "zbot.engine.engine")
    assert message.startswith("torch.compile is off: ") and why in message
    assert "serving without it, images take about 1.6x as long" in message


@pytest.mark.skipif(sys.platform == "win32", reason="Inductor on the CPU needs a C++ compiler")
def test_no_compiler_on_the_host_serves_eagerly_after_one_line(tiny_model: Path, tmp_path: Path):
    only_python = str(Path(sys.executable).parent)  # the venv's bin: python, no g++ or cc
    seen = start_without_compiler(tiny_model, tmp_path, "/nonexistent/g++", only_python)
    assert_served_eagerly(seen, "no C++ compiler for Inductor")


@pytest.mark.skipif(sys.platform == "win32", reason="Inductor on the CPU needs a C++ compiler")
def test_a_compiler_that_fails_at_the_first_image_serves_eagerly_after_one_line(tiny_model: Path, tmp_path: Path):
    # Answers `--version` (Inductor's check passes) and fails on every file it is given to compile.
    broken = tmp_path / "bin" / "g++"
    broken.parent.mkdir()
    broken.write_text('#!/bin/sh\n[ "$1" = --version ] && echo "g++ (broken) 12.2.0" && exit 0\n'
                      'echo "g++: fatal error: killed signal terminated program cc1plus" >&2\nexit 1\n')
    broken.chmod(0o755)
    seen = start_without_compiler(tiny_model, tmp_path, str(broken), f"{broken.parent}:{os.environ['PATH']}")
    assert_served_eagerly(seen, f"{broken} failed (exit status 1)")
