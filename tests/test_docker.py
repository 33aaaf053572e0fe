"""The Dockerfile read as Docker would (no Docker daemon here): the image can compile what torch.compile
needs, and it installs the torch the README's figures and the saved image blocks were measured with."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MEASURED_TORCH = "2.11."  # bench/results: torch 2.11.0+cu130; zbot.engine.ahead's saved blocks need 2.11+
COMPILERS = {"gcc", "clang", "build-essential", "g++"}


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n(\s*#.*\n)*", " ", text)
    out = []
    for line in joined.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def expand(value: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), value)


def read_dockerfile() -> tuple[str, list[str], dict[str, str]]:
    """The base image, the RUN commands with the ARGs' defaults filled in, and those defaults."""
    steps = instructions((ROOT / "Dockerfile").read_text())
    [base] = [rest for word, rest in steps if word == "FROM"]
    args = dict(rest.split("=", 1) for word, rest in steps if word == "ARG" and "=" in rest)
    runs = [expand(rest, args) for word, rest in steps if word == "RUN"]
    return base, runs, args


def pip_installs(runs: list[str]) -> list[list[str]]:
    """The arguments of each `pip install` in the RUN commands, in order."""
    found = []
    for run in runs:
        for command in re.split(r"&&|;", run):
            words = shlex.split(command)
            if words[:2] == ["pip", "install"] or words[:4] == ["python", "-m", "pip", "install"]:
                found.append(words[words.index("install") + 1:])
    return found


def test_the_image_has_a_c_compiler_for_tritons_launcher():
    base, runs, _ = read_dockerfile()
    # torch.compile's Triton kernels build a C launcher at first use (pytorch/pytorch#116696): a runtime
    # image without a compiler fails at start with ZBOT_COMPILE=auto on CUDA.
    assert "runtime" not in base.split(":")[-1], base
    installed = {word for run in runs if "apt-get install" in run or "apk add" in run
                 for word in shlex.split(run.replace("&&", " "))}
    assert "-devel" in base or installed & COMPILERS, (base, installed)
    assert ":" in base and not base.endswith(":latest"), base  # a pinned tag: the same image next year


def test_the_image_installs_the_torch_the_figures_were_measured_with():
    _, runs, _ = read_dockerfile()
    installs = pip_installs(runs)
    pins = [word for words in installs for word in words if re.fullmatch(r"torch==\S+", word)]
    assert pins and all(pin.removeprefix("torch==").startswith(MEASURED_TORCH) for pin in pins), pins
    # torch goes in before zbot, from PyTorch's own index (its CUDA build), and zbot's install may not
    # replace it: a constraint file pins it (pip would otherwise keep or swap it as the range allows).
    first_torch = next(i for i, words in enumerate(installs) if any(w.startswith("torch==") for w in words))
    zbot = next(i for i, words in enumerate(installs) if "." in words)
    assert first_torch < zbot
    torch_words = installs[first_torch]
    assert "--index-url" in torch_words
    assert torch_words[torch_words.index("--index-url") + 1].startswith("https://download.pytorch.org/whl/cu")
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^ENV PIP_CONSTRAINT=\S+", text, re.M) and "echo \"torch==$TORCH_VERSION\" >" in text


def test_the_readers_helpers_see_the_old_image_as_it_was():
    # The parser above on the Dockerfile this replaced: a runtime image, torch 2.9.1, no compiler.
    old = instructions("FROM pytorch/pytorch:2.9.1-cuda12.8-cudnn9-runtime\nRUN mkdir zbot \\\n"
                       "    && pip install -e . \\\n    && useradd zbot\n")
    assert old[0] == ("FROM", "pytorch/pytorch:2.9.1-cuda12.8-cudnn9-runtime")
    assert pip_installs([old[1][1]]) == [["-e", "."]]


def test_the_dependency_layer_has_every_package_pyproject_lists(tmp_path):
    """The image installs its dependencies against empty packages before copying the code (a layer that
    survives code changes): that step must create every package pyproject.toml lists, and the schema's
    folder it maps into the wheel, or `pip install -e .` fails in the build. Runs the RUN's own shell
    commands up to its pip install in an empty folder."""
    import subprocess
    import tomllib

    _, runs, _ = read_dockerfile()
    [layer] = [run for run in runs if "pip install -e ." in run]
    subprocess.run(["bash", "-c", layer.split("&& pip install -e .")[0]], cwd=tmp_path, check=True)
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapped = tool.get("package-dir", {})
    for package in tool["packages"]:
        folder = tmp_path / mapped.get(package, package.replace(".", "/"))
        assert folder.is_dir(), f"{package}: {folder.relative_to(tmp_path)} is missing before pip install -e ."
    copied = [rest.split()[0] for word, rest in instructions((ROOT / "Dockerfile").read_text()) if word == "COPY"]
    assert {"zbot", *mapped.values()} <= set(copied), copied
