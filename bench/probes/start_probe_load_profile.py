"""Exploration (2026-12-03, one H200 call): where a warm start's time goes, how fast the weights can
come off the page cache, what the imports cost, and whether torch 2.11 has torch.compile(...).aot_compile
(its block test, which failed for want of it, is now bench/probes/aot_block.py).
Run from the repository root on the GPU machine: `python3 bench/probes/start_probe_load_profile.py`.
It ran against the engine of 4fc0454, before the staged compile; its output and what it showed are in
bench/results/gpu-nvidia-h200-start-probes-2026-12-03.txt. Not part of the benchmark proper: its
figures guided the change, the benchmark's start phase (bench/gpu_start.py) measures the result."""
import glob
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
MODEL = W / "model"; CACHE = W / "compile-cache"
R = {}
def say(k, v):
    R[k] = v; print(f"{k}: {v}", flush=True)
def sh(cmd, timeout=300):
    t = time.time(); p = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=timeout)
    return time.time() - t, p.stdout + p.stderr

mode = sys.argv[1] if len(sys.argv) > 1 else "main"

if mode == "main":
    import torch
    say("torch", torch.__version__)
    f = torch.compile(lambda x: x + 1, fullgraph=True)
    say("has_aot_compile", hasattr(f, "aot_compile")); say("has_load_compiled_function", hasattr(torch.compiler, "load_compiled_function"))
    from gpu_common import build_full_pipeline
    from gpu_start import save_pipeline
    t = time.time(); pipe = build_full_pipeline(torch.device("cuda"), torch.bfloat16); say("build_s", round(time.time() - t, 1))
    save_pipeline(pipe, MODEL); del pipe; torch.cuda.empty_cache()
    s, o = sh("python3 -X importtime -c 'import torch, diffusers; from diffusers import ZImagePipeline; import zbot.engine.engine, zbot.core.executor' 2> /tmp/imp.txt; sort -t'|' -k2 -n -r /tmp/imp.txt | head -40")
    say("importtime_wall_s", round(s, 1)); print(o, flush=True)
    s, o = sh("python3 -c 'import time; t=time.time(); import torch; a=time.time(); import diffusers; from diffusers import ZImagePipeline, ZImageImg2ImgPipeline; b=time.time(); import transformers; from transformers import Qwen3Model; c=time.time(); print(round(a-t,2), round(b-a,2), round(c-b,2))'")
    say("import_torch_diffusers_transformers_s", o.strip()); 
    s, o = sh(f"python3 {__file__} start cold", 400); print(o[-4000:], flush=True); say("cold_wall_s", round(s, 1))
    s, o = sh(f"python3 {__file__} start warm", 300); print(o[-12000:], flush=True); say("warm_wall_s", round(s, 1))
    files = sorted(glob.glob(str(MODEL / "*" / "*.safetensors")))
    say("files", {f.split("/model/")[1]: round(os.path.getsize(f) / 1e9, 2) for f in files})
    tot = sum(os.path.getsize(f) for f in files)
    s, _ = sh("cat " + " ".join(files) + " > /dev/null"); say("cat_gbps", round(tot / s / 1e9, 2))
    s, _ = sh("cat " + " ".join(files) + " > /dev/null"); say("cat2_gbps", round(tot / s / 1e9, 2))
    # pinned reads: 1 and 8 threads, and to GPU
    from concurrent.futures import ThreadPoolExecutor
    CH = 64 << 20
    def read_to_gpu(path, threads):
        size = os.path.getsize(path)
        gpu = torch.empty(size, dtype=torch.uint8, device="cuda")
        nbuf = threads * 2
        pins = [torch.empty(CH, dtype=torch.uint8).pin_memory() for _ in range(nbuf)]
        fd = os.open(path, os.O_RDONLY)
        streams = [torch.cuda.Stream() for _ in range(nbuf)]
        def piece(i):
            off = i * CH; n = min(CH, size - off); b = pins[i % nbuf]; st = streams[i % nbuf]
            st.synchronize()
            got = os.preadv(fd, [memoryview(b.numpy())[:n]], off)
            assert got == n
            with torch.cuda.stream(st):
                gpu[off:off + n].copy_(b[:n], non_blocking=True)
        n = (size + CH - 1) // CH
        # keep at most nbuf pieces in flight: process in waves of nbuf
        with ThreadPoolExecutor(threads) as ex:
            for w in range(0, n, nbuf):
                list(ex.map(piece, range(w, min(n, w + nbuf))))
        torch.cuda.synchronize(); os.close(fd)
        return gpu
    for th in (1, 4, 8):
        t = time.time()
        for f in files: g = read_to_gpu(f, th); del g
        s = time.time() - t; say(f"pinned_to_gpu_{th}threads_gbps", round(tot / s / 1e9, 2))
    torch.cuda.empty_cache()
    from safetensors.torch import load_file
    t = time.time()
    for f in files: sd = load_file(f, device="cuda"); del sd
    torch.cuda.synchronize(); say("safetensors_load_file_cuda_gbps", round(tot / (time.time() - t) / 1e9, 2))
    t = time.time()
    for f in files: sd = load_file(f); del sd
    say("safetensors_load_file_cpu_gbps", round(tot / (time.time() - t) / 1e9, 2))
    torch.cuda.empty_cache()
    for env in ("", "HF_ENABLE_PARALLEL_LOADING=yes "):
        s, o = sh(f"{env}python3 {__file__} components"); print(o[-3000:], flush=True)
    print(json.dumps(R))

elif mode == "components":
    import torch
    from diffusers import AutoencoderKL, ZImageTransformer2DModel
    from transformers import Qwen3Model
    torch.cuda.init(); torch.empty(1, device="cuda")
    env = os.environ.get("HF_ENABLE_PARALLEL_LOADING", "")
    for name, cls in (("transformer", ZImageTransformer2DModel), ("text_encoder", Qwen3Model), ("vae", AutoencoderKL)):
        t = time.time(); m = cls.from_pretrained(str(MODEL / name), dtype=torch.bfloat16, device_map="cuda"); torch.cuda.synchronize()
        print(f"component {name} parallel={env!r}: {time.time() - t:.2f} s", flush=True); del m; torch.cuda.empty_cache()

elif mode == "start":
    started = T0
    import cProfile
    import io
    import pstats

    import torch
    from gpu_common import BOT_SIZES, PROMPT

    from zbot.core.jobs import RenderSpec
    from zbot.engine.engine import Engine
    imported = time.time()
    label = sys.argv[2]
    if label == "cold":
        import shutil; shutil.rmtree(CACHE, ignore_errors=True)
    e = Engine(str(MODEL), device="cuda", compile="auto", compile_cache=CACHE, sizes=BOT_SIZES)
    prof = cProfile.Profile() if label == "warm" else None
    if prof: prof.enable()
    e.load()
    if prof: prof.disable()
    ready = time.time()
    e.render(RenderSpec(1, PROMPT, 1, 1024, 1024, 8), lambda *_: None); torch.cuda.synchronize()
    print(label, "imports", round(imported - started, 2), "ready", round(ready - started, 2), "first", round(time.time() - started, 2), e.timings, flush=True)
    if label == "cold":
        e.warm_up()
    from torch._dynamo.utils import compile_times, counters
    print(compile_times(repr="str", aggregate=True), flush=True)
    print(dict(counters["inductor"]), flush=True)
    if prof:
        prof.dump_stats(str(OUT / "warm.prof"))
        for key in ("cumulative", "tottime"):
            s = io.StringIO(); pstats.Stats(prof, stream=s).sort_stats(key).print_stats(45); print(s.getvalue()[-9000:] if key == "tottime" else s.getvalue()[:12000], flush=True)
