"""`make`'s set-up on a machine without a GPU: the CPU build of torch from PyTorch's CPU index, or the
default index when that one doesn't answer, said in one line, without hanging on a silent network; who
compiles bytecode (the bot's set-up on all cores, the tests' Python as it imports). `python` is a stub
that records its calls; the CPU index attempt is real pip against a real socket."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 2

STUB = f"""#!{sys.executable}
import os, shutil, subprocess, sys
args = sys.argv[1:]
with open(os.environ["STUB_LOG"], "a") as log:
    log.write(" ".join(args) + "\\n")
if args[:2] == ["-m", "venv"]:  # the venv's python is this stub too
    os.makedirs(os.path.join(args[2], "bin"))
    shutil.copy(__file__, os.path.join(args[2], "bin", "python"))
elif args[:1] == ["-c"]:  # the Makefile asks where packages go
    print(os.environ["STUB_PURELIB"])
elif args[:3] == ["-m", "pip", "install"] and "--index-url" in args and os.environ.get("STUB_INDEX") == "real":
    # The CPU index attempt, done for real (pip download: nothing is installed anywhere).
    rest = [a for a in args[3:] if a not in ("-q", "--no-compile")]
    sys.exit(subprocess.call([{sys.executable!r}, "-m", "pip", "download", "--no-deps", "-q",
                              "-d", os.environ["STUB_DL"], *rest]))
"""


def make_venv(tmp_path: Path, index: str, stub_index: str, requirement: str,
              stamp: str = ".created") -> tuple[subprocess.CompletedProcess, list[str], float]:
    stub = tmp_path / "python"
    stub.write_text(STUB)
    stub.chmod(0o755)
    (tmp_path / "pyproject.toml").touch()
    log = tmp_path / "calls.log"
    env = {**os.environ, "STUB_LOG": str(log), "STUB_DL": str(tmp_path / "dl"), "STUB_INDEX": stub_index,
           "STUB_PURELIB": str(tmp_path / "site-packages")}
    venv = tmp_path / "venv"
    started = time.monotonic()
    done = subprocess.run(["make", "-s", "-f", ROOT / "Makefile", f"{venv}/{stamp}", f"VENV={venv}",
                           f"PYTHON={stub}", "HAS_GPU=", f"TORCH_CPU={requirement}", f"TORCH_CPU_INDEX={index}",
                           f"TORCH_CPU_TIMEOUT={TIMEOUT_S}"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    return done, log.read_text().splitlines(), elapsed


def silent_server() -> tuple[socket.socket, list[socket.socket]]:
    """A server that accepts connections and never answers: a firewall that lets packets die."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    return server, held


def test_a_silent_cpu_index_falls_back_to_the_default_index_quickly_and_says_so(tmp_path):
    server, held = silent_server()
    index = f"http://127.0.0.1:{server.getsockname()[1]}/whl/cpu"
    try:
        done, calls, elapsed = make_venv(tmp_path, index, "real", "zbot-no-such-dist==1.0")
    finally:
        server.close()
        for connection in held:
            connection.close()
    assert held, "pip never asked the CPU index"
    installs = [c for c in calls if "zbot-no-such-dist==1.0" in c]
    assert len(installs) == 2 and f"--index-url {index}" in installs[0] and "--retries 0" in installs[0]
    assert "--index-url" not in installs[1]  # the default index
    said = [line for line in done.stdout.splitlines() if line.startswith("torch:")]
    assert len(said) == 1 and "default index" in said[0] and index in said[0], done.stdout
    # pip's defaults (5 retries of 15 s, here 180 s from PIP_DEFAULT_TIMEOUT) would wait minutes.
    assert elapsed < 2 * TIMEOUT_S + 8, elapsed


def test_a_reachable_cpu_index_is_used_alone_and_said(tmp_path):
    index = "https://download.pytorch.org/whl/cpu"
    done, calls, _ = make_venv(tmp_path, index, "stub", "torch==2.13.0")
    installs = [c for c in calls if "torch==2.13.0" in c]
    assert installs == [f"-m pip install -q --no-compile --timeout {TIMEOUT_S} --retries 0 --index-url {index} torch==2.13.0"]
    said = [line for line in done.stdout.splitlines() if line.startswith("torch:")]
    assert said == [f"torch: torch==2.13.0, the CPU build, from {index}"], done.stdout


def test_the_bots_set_up_compiles_bytecode_on_all_cores_and_the_tests_leaves_it_to_python(tmp_path):
    # pip's own compiling runs on one core (~60 s of a fresh set-up on 2): every install skips it; the
    # bot's set-up then compiles all packages and zbot at once (its starts never compile, even as a user
    # that can't write there); the tests' set-up compiles nothing ahead (the suite writes what it imports).
    site = tmp_path / "bot" / "site-packages"
    calls = {}
    for who, stamp in (("bot", ".installed"), ("tests", ".installed-test")):
        (tmp_path / who).mkdir()
        _, calls[who], _ = make_venv(tmp_path / who, "https://download.pytorch.org/whl/cpu", "stub",
                                     "torch==2.13.0", stamp)
    for who in calls:
        installs = [c for c in calls[who] if c.startswith("-m pip install") and "--upgrade pip" not in c]
        assert len(installs) == 2 and all("--no-compile" in c for c in installs), calls[who]
    assert [c for c in calls["bot"] if "compileall" in c] == [f"-m compileall -qq -j 0 {site} zbot"]
    assert not [c for c in calls["tests"] if "compileall" in c]
