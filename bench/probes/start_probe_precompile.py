"""Exploration (2026-12-03, one H200 call): a cold and two warm starts with the pipeline's classes
imported before the clock splits imports from weights, torch.compile's own time breakdown, dynamo's
caching precompile (TORCH_CACHING_PRECOMPILE=1) cold and warm, and aot_compile of one transformer
block (torch 2.11). Run from the repository root on the GPU machine, with PYTHONPYCACHEPREFIX set:
`python3 bench/probes/start_probe_precompile.py`. It ran against the engine before the staged compile
(what it showed is in bench/results/gpu-nvidia-h200-start-probes-2026-12-03.txt."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

T0 = time.time()
ROOT = Path(__file__).resolve().parents[2]; sys.path.insert(0, str(ROOT / "bench")); sys.path.insert(0, str(ROOT))
OUT = Path(os.environ.get("OUT", "/tmp/out"))
W = Path("/tmp/zb"); W.mkdir(exist_ok=True)
MODEL = W / "model"
R = {}
def say(k, v):
    R[k] = v; print(f"== {k}: {v}", flush=True)
def child(args, label, timeout=300, env=None):
    t = time.time()
    log = OUT / f"{label}.log"
    e = dict(os.environ, **(env or {}), STARTED=repr(time.time()))
    try:
        p = subprocess.run([sys.executable, __file__] + args, timeout=timeout, env=e, capture_output=True, text=True)
        log.write_text(p.stdout + p.stderr)
        for line in p.stdout.splitlines():
            if line.startswith("== "): print(f"[{label}] {line}", flush=True)
    except subprocess.TimeoutExpired:
        print(f"[{label}] timed out", flush=True)
    say(f"{label}_wall_s", round(time.time() - t, 1))

mode = sys.argv[1] if len(sys.argv) > 1 else "main"
if mode == "main":
    import torch
    from gpu_common import build_full_pipeline
    from gpu_start import save_pipeline
    pipe = build_full_pipeline(torch.device("cuda"), torch.bfloat16)
    save_pipeline(pipe, MODEL); del pipe; torch.cuda.empty_cache()
    steps = [(["start", "cache-a"], "cold"), (["start", "cache-a"], "warm1"), (["start", "cache-a"], "warm2"),
             (["start", "cache-p"], "precompile_cold", {"TORCH_CACHING_PRECOMPILE": "1"}),
             (["start", "cache-p"], "precompile_warm", {"TORCH_CACHING_PRECOMPILE": "1"}),
             (["aot", "save"], "aot_save"), (["aot", "load"], "aot_load")]
    for step in steps:
        if time.time() - T0 > 520: break
        child(step[0], step[1], env=step[2] if len(step) > 2 else None)
    print(json.dumps(R))
elif mode == "start":
    started = float(os.environ.get("STARTED", T0))
    import torch
    from gpu_common import BOT_SIZES, PROMPT

    from zbot.core.jobs import RenderSpec
    from zbot.engine.engine import Engine
    imported = time.time()
    say("imports_s", round(imported - started, 2))
    e = Engine(str(MODEL), device="cuda", compile="auto", compile_cache=W / sys.argv[2], sizes=BOT_SIZES)
    e.load()
    ready = time.time()
    e.render(RenderSpec(1, PROMPT, 1, 1024, 1024, 8), lambda *_: None); torch.cuda.synchronize()
    say("ready_s", round(ready - started, 2)); say("first_image_s", round(time.time() - started, 2)); say("timings", e.timings)
    from torch._dynamo.utils import compile_times, counters
    t = time.time(); e.warm_up(); say("warm_up_rest_s", round(time.time() - t, 1))
    say("counters", {k: dict(v) for k, v in counters.items() if k in ("inductor", "stats", "aot_autograd", "dynamo_cache")})
    print(compile_times(repr="str", aggregate=True), flush=True)
elif mode == "aot":
    import torch
    import torch._dynamo.config as dc
    dc.enable_aot_compile = True
    from diffusers.models.transformers.transformer_z_image import ZImageTransformerBlock

    from zbot.engine.acceleration import RealRopeAttnProcessor, use_compile_cache
    use_compile_cache(W / "aot-cache")
    torch.manual_seed(0)
    with torch.device("cuda"):
        blk = ZImageTransformerBlock(0, 3840, 30, 30, 1e-5, True, modulation=True).to(torch.bfloat16).eval()
    blk.attention.set_processor(RealRopeAttnProcessor())
    n = 4096 + 64
    g = torch.Generator("cuda").manual_seed(1)
    x = torch.randn(1, n, 3840, device="cuda", dtype=torch.bfloat16, generator=g)
    mask = torch.ones(1, n, dtype=torch.bool, device="cuda")
    freqs = torch.polar(torch.ones(1, n, 64, device="cuda"), torch.randn(1, n, 64, device="cuda", generator=g))
    ada = torch.randn(1, 256, device="cuda", dtype=torch.bfloat16, generator=g)
    path = W / "block.aot"
    fwd = type(blk).forward
    def err(a, b): return round(float((a - b).float().norm() / b.float().norm()), 5)
    with torch.inference_mode():
        ref = fwd(blk, x, mask, freqs, ada)
        try:
            if sys.argv[2] == "save":
                t = time.time()
                c = torch.compile(fwd, fullgraph=True, dynamic=True).aot_compile(((blk, x, mask, freqs, ada), {}))
                say("aot_compile_s", round(time.time() - t, 1))
                say("aot_err", err(c(blk, x, mask, freqs, ada), ref))
                t = time.time(); c.save_compiled_function(str(path)); say("aot_save_s", round(time.time() - t, 2)); say("aot_bytes", path.stat().st_size)
            else:
                t = time.time()
                with open(path, "rb") as fh: c = torch.compiler.load_compiled_function(fh)
                say("aot_load_s", round(time.time() - t, 2))
                t = time.time(); out = c(blk, x, mask, freqs, ada); torch.cuda.synchronize(); say("aot_first_call_s", round(time.time() - t, 2))
                say("aot_err", err(out, ref))
                n2 = 4096 + 256
                x2 = torch.randn(1, n2, 3840, device="cuda", dtype=torch.bfloat16, generator=g); m2 = torch.ones(1, n2, dtype=torch.bool, device="cuda")
                f2 = torch.polar(torch.ones(1, n2, 64, device="cuda"), torch.randn(1, n2, 64, device="cuda", generator=g))
                say("aot_other_len_err", err(c(blk, x2, m2, f2, ada), fwd(blk, x2, m2, f2, ada)))
                with torch.device("cuda"):
                    blk2 = ZImageTransformerBlock(1, 3840, 30, 30, 1e-5, True, modulation=True).to(torch.bfloat16).eval()
                blk2.attention.set_processor(RealRopeAttnProcessor())
                say("aot_other_block_err", err(c(blk2, x, mask, freqs, ada), fwd(blk2, x, mask, freqs, ada)))
                t = time.time()
                for _ in range(10): c(blk, x, mask, freqs, ada)
                torch.cuda.synchronize(); say("aot_block_ms", round((time.time() - t) * 100, 2))
                cc = torch.compile(blk, fullgraph=True, dynamic=True); t = time.time(); cc(x, mask, freqs, ada); torch.cuda.synchronize(); say("jit_warm_cache_first_call_s", round(time.time() - t, 2))
                t = time.time()
                for _ in range(10): cc(x, mask, freqs, ada)
                torch.cuda.synchronize(); say("jit_block_ms", round((time.time() - t) * 100, 2))
        except Exception as ex:
            import traceback; traceback.print_exc(); say("aot_error", repr(ex)[:800])
