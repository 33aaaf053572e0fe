"""bench/clean_env.py: the folder of installed packages a zbot install would have, used by the GPU
benchmark's start phase on machines whose image carries much more (scipy, pandas, peft...)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from clean_env import clean_site_packages, requirement_closure, zbot_requirements  # noqa: E402


def test_the_closure_holds_what_zbot_needs_through_its_dependencies_and_not_the_test_tools():
    keep = requirement_closure(zbot_requirements())
    assert {"torch", "diffusers", "transformers", "pydantic-settings", "pillow"} <= keep
    assert {"sympy", "huggingface-hub", "pydantic-core"} <= keep  # needed by torch, diffusers, pydantic
    assert "pytest" not in keep and "openapi-spec-validator" not in keep  # the test extra's, installed here


def test_a_process_on_the_clean_folder_imports_zbot_s_stack_and_nothing_else(tmp_path: Path):
    site = clean_site_packages(tmp_path / "site", requirement_closure(zbot_requirements()))
    probe = ("import importlib.util, json, importlib.metadata as m; import diffusers, PIL; "
             "print(json.dumps({'pytest': importlib.util.find_spec('pytest') is not None, "
             "'torch_version': m.version('torch'), 'diffusers_from': diffusers.__file__}))")
    done = subprocess.run([sys.executable, "-S", "-c", probe], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(site)})
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["pytest"] is False  # installed here, hidden there
    assert seen["torch_version"]
    assert seen["diffusers_from"].startswith(str(site))
