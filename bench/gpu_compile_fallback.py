"""On a CUDA machine: torch.compile made unavailable as a host without a compiler would have it, and the
engine still starts and draws, eagerly, after one warning line. Prints one JSON line per case.

    python bench/gpu_compile_fallback.py [--device cuda]

Cases, each a fresh process with a fresh compile cache, the tiny model, compile=on:
- control: the compiler as installed (compiled, no warning);
- no-compiler: CC names no program and PATH holds no gcc or clang (the engine's check finds it before
  compiling);
- broken-compiler: CC (and CXX) is a program that answers --version and fails on every file (found only when
  Triton builds its first kernel, inside the first image).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import json, logging, sys, time
lines = []
handler = logging.Handler()
handler.emit = lambda record: lines.append((record.levelname, record.name, record.getMessage()))
logging.getLogger().addHandler(handler)
logging.getLogger().setLevel(logging.INFO)
import torch
from zbot.engine.engine import Engine
from zbot.core.jobs import RenderSpec
began = time.perf_counter()
engine = Engine(sys.argv[1], device=sys.argv[2], compile="on", sizes=[(256, 256)])
engine.load()
loaded = time.perf_counter() - began
image = engine.render(RenderSpec(1, "a red fox", 3, 256, 256, 4), lambda *_: None)
print(json.dumps({"device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
                  "compiled": engine.compiled, "load_s": round(loaded, 1), "colours": len(set(image.getdata())),
                  "warnings": [line[2] for line in lines if line[0] in ("WARNING", "ERROR", "CRITICAL")]}))
"""


def run(case: str, model: Path, device: str, tmp: Path) -> dict:
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(tmp / f"cache-{case}"), "TRITON_CACHE_DIR": str(tmp / f"triton-{case}")}
    if case == "no-compiler":
        env.update(CC="/nonexistent/cc", CXX="/nonexistent/c++", PATH=str(Path(sys.executable).parent))
    elif case == "broken-compiler":
        broken = tmp / "bin" / "cc"
        broken.parent.mkdir(exist_ok=True)
        broken.write_text('#!/bin/sh\n[ "$1" = --version ] && echo "cc (broken) 12.2.0" && exit 0\n'
                          'echo "cc: fatal error: killed signal terminated program cc1" >&2\nexit 1\n')
        broken.chmod(0o755)
        env.update(CC=str(broken), CXX=str(broken), PATH=f"{broken.parent}:{env['PATH']}")
    done = subprocess.run([sys.executable, "-c", CHILD, str(model), device], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=1200)
    if done.returncode != 0:
        return {"case": case, "ok": False, "exit": done.returncode, "stderr_tail": done.stderr[-1500:]}
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    eager_expected = case != "control"
    ok = seen["colours"] > 1 and seen["compiled"] is not eager_expected and (
        len(seen["warnings"]) == 1 and seen["warnings"][0].startswith("torch.compile is off: ")
        if eager_expected else not any("torch.compile is off" in w for w in seen["warnings"]))
    return {"case": case, "ok": ok, **seen}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        subprocess.run([sys.executable, "-m", "zbot.cli.main", "tiny-model", str(tmp / "tiny")], check=True, cwd=ROOT,
                       capture_output=True)
        for case in ("control", "no-compiler", "broken-compiler"):
            print(json.dumps(run(case, tmp / "tiny", args.device, tmp)), flush=True)


if __name__ == "__main__":
    main()
