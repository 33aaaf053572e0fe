"""`make`'s set-up on a machine without a GPU: the CPU build of torch from PyTorch's CPU index, or the
default index when that one doesn't answer, said in one line, without hanging on a silent network.
`python` is a stub that records its calls; the CPU index attempt is real pip against a real socket."""

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
elif args[:3] == ["-m", "pip", "install"] and "--index-url" in args and os.environ.get("STUB_INDEX") == "real":
    # The CPU index attempt, done for real (pip download: nothing is installed anywhere).
    rest = [a for a in args[3:] if a not in ("-q", "--no-compile")]
    sys.exit(subprocess.call([{sys.executable!r}, "-m", "pip", "download", "--no-deps", "-q",
                              "-d", os.environ["STUB_DL"], *rest]))
"""


def make_venv(tmp_path: Path, index: str, stub_index: str, requirement: str) -> tuple[subprocess.CompletedProcess, list[str], float]:
    stub = tmp_path / "python"
    stub.write_text(STUB)
    stub.chmod(0o755)
    log = tmp_path / "calls.log"
    env = {**os.environ, "STUB_LOG": str(log), "STUB_DL": str(tmp_path / "dl"), "STUB_INDEX": stub_index}
    venv = tmp_path / "venv"
    started = time.monotonic()
    done = subprocess.run(["make", "-s", "-f", ROOT / "Makefile", f"{venv}/.created", f"VENV={venv}",
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
