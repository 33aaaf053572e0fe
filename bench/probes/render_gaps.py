"""Exploration (CUDA): where a render leaves the GPU waiting, and what CUDA graphs over the transformer's
whole forward (one denoising step) would give back.

    python bench/probes/render_gaps.py --mode bf16|fp8 [--size 1024x1024] [--cache DIR]

Full-size random weights through zbot's Engine (compiled as it serves). Prints:
- the render's wall time, its GPU kernel time, and the gaps between kernels (total, and the largest with
  where they fall in the render and the kernels either side);
- one transformer forward as the pipeline calls it, launched from Python as today, against the same
  forward captured once as a CUDA graph and replayed (with the outputs' difference).
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from cuda_timing import cuda_ms, emit  # this folder's: on the path when run as a script

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.gpu_common import build_full_pipeline, parse_size
from zbot.core.jobs import RenderSpec
from zbot.engine.engine import Engine

PROMPT = "a red fox standing in fresh snow at dawn, soft light, detailed fur, shallow depth of field"






def render_gaps(engine: Engine, spec: RenderSpec, label: str) -> None:
    from torch.profiler import ProfilerActivity, profile

    walls = []
    for _ in range(5):
        began = time.perf_counter()
        engine.render(spec, lambda *_: None)
        walls.append(time.perf_counter() - began)
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        began = time.perf_counter()
        engine.render(spec, lambda *_: None)
        profiled_wall = time.perf_counter() - began
    kernels = sorted((e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA),
                     key=lambda e: e.time_range.start)
    busy, gaps, end, previous = 0.0, [], None, None
    for event in kernels:
        start, stop = event.time_range.start, event.time_range.end
        if end is not None and start > end:
            gaps.append((start - end, start - kernels[0].time_range.start, previous, event.name))
        if end is None or stop > end:
            busy += stop - max(start, end if end is not None else start)
            end, previous = stop, event.name
    span = end - kernels[0].time_range.start
    gaps.sort(reverse=True)
    over = [g for g in gaps if g[0] >= 20]
    emit(label=label, wall_s=round(statistics.median(walls), 4), profiled_wall_s=round(profiled_wall, 4),
         gpu_span_ms=round(span / 1e3, 1), gpu_busy_ms=round(busy / 1e3, 1),
         gaps_ms=round(sum(g[0] for g in gaps) / 1e3, 1), gaps=len(gaps),
         gaps_over_20us_ms=round(sum(g[0] for g in over) / 1e3, 1), gaps_over_20us=len(over),
         largest=[[round(g[0] / 1e3, 2), round(g[1] / 1e3, 1), g[2][:50], g[3][:50]] for g in gaps[:14]])


def transformer_graph(engine: Engine, spec: RenderSpec, label: str) -> None:
    transformer = engine.pipe.transformer
    seen = []

    def keep(module, args, kwargs):
        if not seen:
            seen.append((args, kwargs))

    hook = transformer.register_forward_pre_hook(keep, with_kwargs=True)
    try:
        engine.render(spec, lambda *_: None)
    finally:
        hook.remove()
    args, kwargs = seen[0]
    kwargs = dict(kwargs)
    emit(label=label, forward_kwargs=sorted(kwargs), x=[list(t.shape) for t in kwargs.get("x", [])],
         cap=[list(t.shape) for t in kwargs.get("cap_feats", [])])
    with torch.inference_mode():
        statics = {k: ([t.clone() for t in v] if isinstance(v, list) else v.clone() if torch.is_tensor(v) else v)
                   for k, v in kwargs.items()}

        def forward():
            return transformer(*args, **statics)

        launched_ms = cuda_ms(forward, repeats=8)
        reference = forward()
        reference = reference[0] if isinstance(reference, tuple) else reference.sample
        reference = [t.clone() for t in reference]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                forward()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        began = time.perf_counter()
        try:
            with torch.cuda.graph(graph):
                out = forward()
        except Exception as error:  # noqa: BLE001 - what stops a capture is the finding
            emit(label=label, capture_failed=f"{type(error).__name__}: {error}"[:600])
            return
        capture_s = time.perf_counter() - began
        out = out[0] if isinstance(out, tuple) else out.sample
        graph.replay()
        torch.cuda.synchronize()
        diff = max(float((a.float() - b.float()).abs().max()) for a, b in zip(out, reference))
        scale = max(float(b.float().abs().max()) for b in reference)
        graphed_ms = cuda_ms(graph.replay, repeats=8)
    emit(label=label, forward_launched_ms=round(launched_ms, 2), forward_graphed_ms=round(graphed_ms, 2),
         saved_per_step_ms=round(launched_ms - graphed_ms, 2), capture_s=round(capture_s, 2),
         graph_vs_launched_max_abs=diff, output_max_abs=scale,
         pool_gib=round(torch.cuda.memory_reserved() / 2**30, 1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=("bf16", "fp8"), default="bf16")
    parser.add_argument("--size", type=parse_size, default=(1024, 1024))
    parser.add_argument("--cache", default="/tmp/zbot-gaps-cache")
    args = parser.parse_args()
    width, height = args.size
    began = time.perf_counter()
    pipe = build_full_pipeline(torch.device("cuda"), torch.bfloat16)
    engine = Engine.from_pipeline(pipe, device="cuda", compile="auto", quantize="fp8" if args.mode == "fp8" else "none",
                                  sizes=[(width, height)], compile_cache=Path(args.cache))
    engine.load()
    for _ in range(4):  # the VAE decoder, the caption refiner, the text encoder's lengths, the longest caption
        engine.warm_up_next()
    emit(label=args.mode, ready_s=round(time.perf_counter() - began, 1))
    spec = RenderSpec(1, PROMPT, 7, width, height, 8)
    render_gaps(engine, spec, args.mode)
    transformer_graph(engine, spec, args.mode)


if __name__ == "__main__":
    main()
