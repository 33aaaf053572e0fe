"""Styles' LoRA adapters on the GPU (issue 29): what a LoRA costs a render, what switching styles costs, and
the GPU memory each loaded adapter takes. Full-size Z-Image with random weights (bench/gpu_common.py), two
random rank-32 LoRAs on the attention (q, k, v, out) and feed-forward (w1, w2, w3) projections of every block,
through the engine as the bot runs it (compiled, fused projections; --quantize fp8 for the float8 base).

    python bench/gpu_styles.py                       # CUDA: writes bench/results/gpu-styles-<card>.json
    python bench/gpu_styles.py --tiny --size 64x64   # the tiny model on the CPU (a smoke run)

Each phase is a process of its own (torch.compile's state is per process): `base` renders without any style
configured, `lora` with two styles configured: renders with style A, then alternates A and B, timing each
switch (`Engine.use_style`) and counting the graphs compiled after the warm-up (goal: none).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gpu_common import (  # noqa: E402
    PROMPT,
    SEED,
    STEPS,
    build_pipeline,
    card_name,
    median,
    parse_size,
    slug,
    sync,
    time_render,
)

from zbot.core.jobs import RenderSpec  # noqa: E402
from zbot.core.styles import Style  # noqa: E402
from zbot.engine.acceleration import compiled_graphs  # noqa: E402
from zbot.engine.engine import Engine  # noqa: E402

TARGETS = ("attention.to_q", "attention.to_k", "attention.to_v", "attention.to_out.0",
           "feed_forward.w1", "feed_forward.w2", "feed_forward.w3")


def write_lora(transformer: torch.nn.Module, path: Path, rank: int, seed: int) -> Path:
    """A random LoRA in diffusers/peft naming on every attention and feed-forward projection."""
    from safetensors.torch import save_file

    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for name, module in transformer.named_modules():
        if isinstance(module, torch.nn.Linear) and name.endswith(TARGETS):
            tensors[f"transformer.{name}.lora_A.weight"] = torch.randn(
                rank, module.in_features, generator=generator, dtype=torch.float32).mul_(0.01).bfloat16()
            tensors[f"transformer.{name}.lora_B.weight"] = torch.randn(
                module.out_features, rank, generator=generator, dtype=torch.float32).mul_(0.01).bfloat16()
    save_file(tensors, str(path))
    return path


def phase(args) -> dict:
    device = torch.device("cpu" if args.tiny else "cuda")
    pipe = build_pipeline(args)
    work = Path(args.work)
    styles = {}
    if args.phase == "lora":
        styles = {name: Style(name, lora=str(write_lora(pipe.transformer, work / f"{name}.safetensors",
                                                         args.rank, seed)))
                  for name, seed in (("a", 1), ("b", 2))}
    width, height = parse_size(args.size)
    engine = Engine.from_pipeline(pipe, device=device.type, compile="on", quantize=args.quantize,
                                  sizes=[(width, height)], styles=styles)
    engine.load()
    engine.warm_up()
    spec = RenderSpec(0, PROMPT, SEED, width, height, STEPS)
    out: dict = {"phase": args.phase, "card": card_name(device), "size": args.size, "quantize": args.quantize}
    if args.phase == "base":
        times, _ = time_render(engine, spec, args.repeats)
        out["render_s"] = median(times)
        return out
    engine.use_style(styles["a"])
    graphs = compiled_graphs()
    times, _ = time_render(engine, spec, args.repeats)
    out["render_lora_s"] = median(times)
    switches, after = [], []
    for index in range(args.switches):
        sync(device)
        began = time.perf_counter()
        engine.use_style(styles["b" if index % 2 == 0 else "a"])
        sync(device)
        switches.append(time.perf_counter() - began)
        after.append(time_render(engine, spec, 1)[0][0])
    out["switch_s"] = median(switches)
    out["switch_max_s"] = max(switches)
    out["render_after_switch_s"] = median(after)
    out["graphs_compiled_while_switching"] = compiled_graphs() - graphs
    out["recompiles"] = engine.recompiles
    loras = engine.loras
    out["rank_prepared"] = loras.rank
    out["slots"] = len(loras.slots)
    out["slot_buffers_mib"] = round(sum(buffer.nbytes for slot in loras.slots.values()
                                        for buffer in slot.buffers(recurse=False)) / 2**20, 1)
    out["adapter_mib"] = {name: round(adapter.nbytes() / 2**20, 1) for name, adapter in loras.adapters.items()}
    if device.type == "cuda":
        out["peak_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="the tiny model on the CPU")
    parser.add_argument("--size", default="1024x1024")
    parser.add_argument("--rank", type=int, default=32)
    parser.add_argument("--quantize", choices=("none", "fp8"), default="none")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--switches", type=int, default=6)
    parser.add_argument("--phase", choices=("base", "lora"), help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help="where the JSON goes (default bench/results/gpu-styles-CARD.json)")
    args = parser.parse_args()
    if args.phase:  # a child: one phase, its figures as the last line
        print(json.dumps(phase(args)))
        return
    if args.tiny and args.rank == 32:
        args.rank = 4  # the tiny model's layers are 64 wide
    results = {}
    with tempfile.TemporaryDirectory() as work:
        for name in ("base", "lora"):
            command = [sys.executable, __file__, "--phase", name, "--work", work, "--size", args.size,
                       "--rank", str(args.rank), "--quantize", args.quantize, "--repeats", str(args.repeats),
                       "--switches", str(args.switches)] + (["--tiny"] if args.tiny else [])
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                sys.exit(f"phase {name} failed:\n{done.stderr[-4000:]}")
            results[name] = json.loads(done.stdout.strip().splitlines()[-1])
            print(json.dumps(results[name]), flush=True)
    base, lora = results["base"]["render_s"], results["lora"]["render_lora_s"]
    results["lora_slowdown_pct"] = round((lora / base - 1) * 100, 1)
    results["rank"] = args.rank
    print(json.dumps({"lora_slowdown_pct": results["lora_slowdown_pct"]}))
    card = results["base"]["card"]
    out = args.out or Path(__file__).parent / "results" / f"gpu-styles-{slug(card)}-{args.quantize}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
