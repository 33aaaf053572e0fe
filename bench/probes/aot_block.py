"""Exploration: can one of the transformer's image blocks be compiled ahead of time with
torch.compile(...).aot_compile, saved, and loaded by a later process without dynamo tracing it again?
(A warm start spends most of its compile time tracing:
bench/results/gpu-nvidia-h200-start-probes-2026-12-03.txt.)

    python bench/probes/aot_block.py save [--device cuda --dim 3840 --heads 30]
    python bench/probes/aot_block.py load [same options]
    python bench/probes/aot_block.py jit    (twice: the engine's way, cold then from the cache)

What it needed on torch 2.13 (CPU, a tiny block): floats specialised from the start (else tracing
restarts, which aot_compile can't), and the attention's processor called directly (diffusers'
Attention.forward inspects the processor's signature, which leaves a guard on a code object that can't
be saved). The compiled function takes the block as its first argument, so one artifact serves every
block of that shape, and a dynamic sequence length serves every caption length. torch 2.11 (the GPU
machine's) needs torch._dynamo.config.enable_aot_compile = True, set here. The engine does this since
(zbot/engine/ahead.py). With --fp8 aot_compile fails inside torchao (Float8Tensor has no empty_like to the meta
device; torchao 0.17, torch 2.11, H200): bench/results/gpu-nvidia-h200-start-ahead-2026-12-03.txt.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch._dynamo.config as dynamo_config  # noqa: E402
from diffusers.models.attention_processor import Attention  # noqa: E402
from diffusers.models.transformers.transformer_z_image import ZImageTransformerBlock  # noqa: E402

from zbot.engine.acceleration import (  # noqa: E402
    RealRopeAttnProcessor,
    fuse_projections,
    quantize_fp8,
    use_compile_cache,
)


class DirectAttention(Attention):
    """Attention that calls its processor with Z-Image's arguments, without inspecting its signature."""

    def forward(self, hidden_states, attention_mask=None, freqs_cis=None):
        return self.processor(self, hidden_states, None, attention_mask, freqs_cis)


def block(dim: int, heads: int, device: str, dtype: torch.dtype, seed: int, fp8: bool) -> torch.nn.Module:
    """One image block as the engine runs it: real-arithmetic rotary embedding, fused projections, and
    optionally float8 on its linears."""
    torch.manual_seed(seed)
    with torch.device(device):
        made = ZImageTransformerBlock(seed, dim, heads, heads, 1e-5, True, modulation=True).to(dtype).eval()
    made.attention.set_processor(RealRopeAttnProcessor())
    fuse_projections(made)
    if fp8:
        quantize_fp8(made)
    made.attention.__class__ = DirectAttention
    return made


def inputs(tokens: int, dim: int, heads: int, device: str, dtype: torch.dtype, seed: int):
    generator = torch.Generator(device).manual_seed(seed)
    half = dim // heads // 2
    return (torch.randn(1, tokens, dim, generator=generator, device=device).to(dtype),
            torch.ones(1, tokens, dtype=torch.bool, device=device),
            torch.polar(torch.ones(1, tokens, half, device=device),
                        torch.randn(1, tokens, half, generator=generator, device=device)),
            torch.randn(1, min(dim, 256), generator=generator, device=device).to(dtype),
            None, None, None)  # as the transformer calls its layers: no per-token noise mask


def error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm())


def timed_ms(call, device: str, repeats: int = 20) -> float:
    """Milliseconds per call, after one untimed call."""
    call()
    if device == "cuda":
        torch.cuda.synchronize()
    began = time.perf_counter()
    for _ in range(repeats):
        call()
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - began) * 1000 / repeats


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("save", "load", "jit"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=96)
    parser.add_argument("--work", type=Path, default=Path("/tmp/zbot-aot-block"))
    parser.add_argument("--fp8", action="store_true", help="torchao float8 on the block's linears (CUDA)")
    args = parser.parse_args()
    dtype = torch.bfloat16 if args.device == "cuda" else torch.float32
    dynamo_config.specialize_float = True
    dynamo_config.enable_aot_compile = True  # torch 2.11 only exposes aot_compile with it
    use_compile_cache(args.work / "cache")
    artifact = args.work / ("block-fp8.bin" if args.fp8 else "block.bin")
    first, second = (block(args.dim, args.heads, args.device, dtype, seed, args.fp8) for seed in (0, 1))
    forward = type(first).forward
    with torch.inference_mode():
        x = inputs(args.tokens, args.dim, args.heads, args.device, dtype, 1)
        if args.mode == "jit":  # the engine's way, for comparison: run it twice, the second is a warm start
            began = time.perf_counter()
            jit = torch.compile(first, fullgraph=True, dynamic=True)
            jit(*x)
            print(f"jit_first_call_s: {time.perf_counter() - began:.2f}")
            print(f"jit_call_ms: {timed_ms(lambda: jit(*x), args.device):.3f}")
        elif args.mode == "save":
            began = time.perf_counter()
            compiled = torch.compile(forward, fullgraph=True, dynamic=True).aot_compile(((first, *x), {}))
            print(f"aot_compile_s: {time.perf_counter() - began:.1f}")
            compiled.save_compiled_function(str(artifact))
            print(f"artifact_bytes: {artifact.stat().st_size}")
        else:
            began = time.perf_counter()
            with artifact.open("rb") as file:
                compiled = torch.compiler.load_compiled_function(file)
            print(f"load_s: {time.perf_counter() - began:.2f}")
            compiled(first, *x)
            if args.device == "cuda":
                torch.cuda.synchronize()
            print(f"load_and_first_call_s: {time.perf_counter() - began:.2f}")
            print(f"loaded_call_ms: {timed_ms(lambda: compiled(first, *x), args.device):.3f}")
            print(f"eager_call_ms: {timed_ms(lambda: forward(first, *x), args.device):.3f}")
            longer = inputs(args.tokens + 64, args.dim, args.heads, args.device, dtype, 2)
            print(f"error: {error(compiled(first, *x), forward(first, *x)):.2e}")
            print(f"error_other_length: {error(compiled(first, *longer), forward(first, *longer)):.2e}")
            print(f"error_other_block: {error(compiled(second, *x), forward(second, *x)):.2e}")


if __name__ == "__main__":
    main()
