"""The GPU speed-ups the engine applies: torch.compile where it pays, float8 on the transformer,
the text encoder offloaded to CPU memory, torch.compile's on-disk cache. Each is a function on the
pipeline (or its parts); `Engine.load` decides which to apply. bench/gpu_bench.py measures them."""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import subprocess
from pathlib import Path

import torch

from zbot.engine import ahead

log = logging.getLogger(__name__)


def use_compile_cache(folder: Path) -> None:
    """Point torch.compile's on-disk caches (Inductor's FX graphs and kernels, Triton's binaries,
    AOTAutograd's graphs, dynamo's record of which dimensions turned out dynamic) at `folder`,
    so a later start on the same machine and software reuses them. Call before the first compile."""
    folder = Path(folder).expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(folder)  # Triton's cache lives under it (triton/<device>)
    import torch._functorch.config as functorch_config
    import torch._inductor.config as inductor_config

    inductor_config.fx_graph_cache = True
    functorch_config.enable_autograd_cache = True


# What serving without torch.compile costs, measured (bench/results/gpu-nvidia-h100.txt: engine eager
# 1.42 s, compiled 0.87 s a 1024x1024 image), for the one line that says compiling failed.
EAGER_COST = "images take about 1.6x as long (H100, 1024x1024: 1.42 s instead of 0.87 s)"


def compiler_missing(device: torch.device) -> str | None:
    """Why torch.compile could not build code here, found without compiling (None: nothing missing that
    a quick look finds): Inductor's C++ compiler on a CPU; Triton, and the C compiler it builds its
    launchers with (CC, else gcc or clang on PATH, as Triton looks), on a GPU."""
    if device.type == "cuda":
        if importlib.util.find_spec("triton") is None:
            return "Triton is not installed"
        cc = os.environ.get("CC")
        if cc:
            return None if shutil.which(cc) else f"CC={cc} is not a program here (Triton builds with it)"
        return None if shutil.which("gcc") or shutil.which("clang") else "no C compiler (gcc or clang) for Triton"
    from torch._inductor import exc
    from torch._inductor.cpp_builder import get_cpp_compiler

    try:
        get_cpp_compiler()
    except exc.InvalidCxxCompiler:
        return "no C++ compiler for Inductor (CXX, else g++ on PATH)"
    return None


def compile_failure(error: BaseException) -> str:
    """An exception from compiling, as a few words: its innermost cause's type and first line."""
    while (inner := error.__cause__ or getattr(error, "inner_exception", None)) is not None and inner is not error:
        error = inner
    if isinstance(error, subprocess.CalledProcessError):  # the compiler ran and failed: its name, not its 1 kB command
        program = error.cmd[0] if isinstance(error.cmd, (list, tuple)) else str(error.cmd).split()[0]
        return f"{program} failed (exit status {error.returncode})"
    first = next((line.strip() for line in str(error).splitlines() if line.strip()), "")
    return f"{type(error).__name__}: {first[:160]}" if first else type(error).__name__


def uncompile(pipe) -> int:
    """Take back what compile_transformer, compile_caption_refiner and compile_vae_decoder put on the
    pipeline's modules (each runs its plain forward again) and forget dynamo's state; returns how many."""
    undone = 0
    for component in pipe.components.values():
        if isinstance(component, torch.nn.Module):
            for module in component.modules():
                if getattr(module, "_compiled_call_impl", None) is not None:
                    module._compiled_call_impl = None
                    undone += 1
    torch._dynamo.reset()
    return undone


def compiled_graphs() -> int:
    """Graphs torch.compile has built in this process so far (a recompile adds one)."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


def fp8_filter(module: torch.nn.Module, name: str) -> bool:
    """Which linear layers get float8: the attention and feed-forward projections of the transformer
    blocks (85% of the arithmetic). Not the timestep/caption embedders, the per-block modulation (one
    row per image: nothing to gain, precision to lose) or the final layer."""
    if not isinstance(module, torch.nn.Linear):
        return False
    if ".attention." not in f".{name}." and ".feed_forward." not in f".{name}.":
        return False
    return module.in_features % 16 == 0 and module.out_features % 16 == 0  # float8 matmul shapes


class RealRopeAttnProcessor:
    """diffusers' ZSingleStreamAttnProcessor with the rotary embedding in real arithmetic.

    The original rotates q and k as complex64 numbers (view_as_complex, a complex multiply,
    view_as_real), which Inductor can't generate code for: it falls back to separate kernels that
    write float32 copies of q and k, twice per block, 34 blocks per forward. As pairs of reals,
    (a + ib)(c + id) = (ac - bd) + i(ad + bc), the rotation fuses into the kernels around it. Same
    formula, float32 as before, so the result matches the original to rounding."""

    _attention_backend = None
    _parallel_config = None

    def __init__(self):
        from diffusers.models.attention_dispatch import dispatch_attention_fn

        self._dispatch = dispatch_attention_fn

    @staticmethod
    def rotate(x_in: torch.Tensor, freqs_cis: torch.Tensor) -> torch.Tensor:
        x = x_in.float().unflatten(-1, (-1, 2))  # [batch, seq, heads, dim/2, (re, im)]
        freqs = torch.view_as_real(freqs_cis).unsqueeze(2)  # [batch, seq, 1, dim/2, (cos, sin)]
        real, imag = x[..., 0], x[..., 1]
        cos, sin = freqs[..., 0], freqs[..., 1]
        out = torch.stack((real * cos - imag * sin, real * sin + imag * cos), dim=-1)
        return out.flatten(3).type_as(x_in)

    def __call__(self, attn, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None,
                 freqs_cis: torch.Tensor | None = None) -> torch.Tensor:
        if hasattr(attn, "to_qkv"):  # fused by fuse_projections: one matmul, one read of the input
            query, key, value = (part.unflatten(-1, (attn.heads, -1))
                                 for part in attn.to_qkv(hidden_states).chunk(3, dim=-1))
        else:
            query = attn.to_q(hidden_states).unflatten(-1, (attn.heads, -1))
            key = attn.to_k(hidden_states).unflatten(-1, (attn.heads, -1))
            value = attn.to_v(hidden_states).unflatten(-1, (attn.heads, -1))
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)
        if freqs_cis is not None:
            query = self.rotate(query, freqs_cis)
            key = self.rotate(key, freqs_cis)
        dtype = query.dtype
        if attention_mask is not None and attention_mask.ndim == 2:
            attention_mask = attention_mask[:, None, None, :]
        hidden_states = self._dispatch(query, key, value, attn_mask=attention_mask, dropout_p=0.0,
                                       is_causal=False, backend=self._attention_backend,
                                       parallel_config=self._parallel_config)
        output = attn.to_out[0](hidden_states.flatten(2, 3).to(dtype))
        if len(attn.to_out) > 1:  # dropout
            output = attn.to_out[1](output)
        return output


def use_real_rope(transformer: torch.nn.Module) -> int:
    """Swap RealRopeAttnProcessor in for every ZSingleStreamAttnProcessor (and the attention module's
    class for DirectAttention, which calls it straight); returns how many."""
    from diffusers.models.attention_processor import Attention

    from zbot.engine.direct_attention import DirectAttention

    swapped = 0
    for module in transformer.modules():
        processor = getattr(module, "processor", None)
        if type(processor).__name__ == "ZSingleStreamAttnProcessor" and hasattr(module, "set_processor"):
            replacement = RealRopeAttnProcessor()
            replacement._attention_backend = processor._attention_backend
            replacement._parallel_config = processor._parallel_config
            module.set_processor(replacement)
            if type(module) is Attention:
                module.__class__ = DirectAttention
            swapped += 1
    return swapped


class FusedFeedForward(torch.nn.Module):
    """Z-Image's SwiGLU feed-forward, w2(silu(w1 x) * w3 x), with w1 and w3 as one matmul (`w13`)."""

    def __init__(self, w13: torch.nn.Linear, w2: torch.nn.Linear):
        super().__init__()
        self.w13, self.w2 = w13, w2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.w13(x).chunk(2, dim=-1)
        return self.w2(torch.nn.functional.silu(gate) * up)


def _alike(layers: list) -> bool:
    """Linear layers of one shape (in, out, bias or not): their stack splits back into equal parts."""
    return all(isinstance(layer, torch.nn.Linear) for layer in layers) and \
        len({(layer.in_features, layer.out_features, layer.bias is None) for layer in layers}) == 1


def _stacked(*layers: torch.nn.Linear) -> torch.nn.Linear:
    """One linear layer computing what `layers` compute side by side (their outputs concatenated)."""
    first = layers[0]
    fused = torch.nn.Linear(first.in_features, sum(layer.out_features for layer in layers),
                            bias=first.bias is not None, device="meta", dtype=first.weight.dtype)
    grad = first.weight.requires_grad
    with torch.no_grad():  # one new copy of the weights, no random initialisation on the GPU first
        fused.weight = torch.nn.Parameter(torch.cat([layer.weight for layer in layers]), requires_grad=grad)
        if first.bias is not None:
            fused.bias = torch.nn.Parameter(torch.cat([layer.bias for layer in layers]), requires_grad=grad)
    return fused


def fuse_projections(transformer: torch.nn.Module) -> int:
    """Stack the projections that read the same input into one matmul each: q, k and v (to_qkv), and the
    feed-forward's w1 and w3 (w13). Fewer, wider matmuls keep the tensor cores busier, and with float8
    the input is quantised once instead of three times (twice). Each output row is computed as before
    (the same weights, the same dot products), so the result matches to rounding. Returns how many
    blocks were fused; a block already fused, or shaped otherwise, is left as it is."""
    fused = 0
    for module in transformer.modules():
        attention, feed_forward = getattr(module, "attention", None), getattr(module, "feed_forward", None)
        if attention is None or feed_forward is None:
            continue
        projections = [getattr(attention, name, None) for name in ("to_q", "to_k", "to_v")]
        # Only where our processor reads to_qkv: diffusers' own would look for to_q and fail.
        if isinstance(getattr(attention, "processor", None), RealRopeAttnProcessor) and _alike(projections):
            attention.to_qkv = _stacked(*projections)
            del attention.to_q, attention.to_k, attention.to_v
            changed = True
        else:
            changed = False
        w1, w2, w3 = (getattr(feed_forward, name, None) for name in ("w1", "w2", "w3"))
        if (type(feed_forward).__name__ == "FeedForward" and _alike([w1, w3])
                and isinstance(w2, torch.nn.Linear) and w2.in_features == w1.out_features):
            module.feed_forward = FusedFeedForward(_stacked(w1, w3), w2)
            changed = True
        fused += changed
    return fused


def _repeated_blocks(transformer: torch.nn.Module) -> list[torch.nn.Module]:
    names = set(getattr(transformer, "_repeated_blocks", ()))
    return [module for module in transformer.modules() if type(module).__name__ in names]


def compile_transformer(pipe, *, sizes: int) -> None:
    """torch.compile where the first image needs it, regionally (each repeated block once, not the
    whole model): the transformer's image blocks (the noise refiner and the 30 main layers, ~95% of the
    time), with the rotary embedding in real arithmetic (RealRopeAttnProcessor). dynamic=True makes
    the sequence length (4096 image tokens at 1024^2 plus 32..512 caption tokens) symbolic, so every
    prompt length and size reuses one graph instead of recompiling. The caption refiner's blocks and
    the VAE decoder wait for `compile_caption_refiner` and `compile_vae_decoder` (warm-up steps while the
    bot is idle): until then they run eagerly, ~0.04 s more per image, and the first image doesn't wait
    for two more graphs.
    (The text encoder is recorded as CUDA graphs instead: `PromptEncoder.capture_graphs`; its
    layers can't be compiled regionally, transformers' output-capturing hooks break the graph.)"""
    import torch._dynamo.config as dynamo_config
    import torch.fx.experimental._config as shape_config

    dynamo_config.recompile_limit = max(dynamo_config.recompile_limit, sizes + 4)
    # Without this a square first size (1024x1024) gives height and width one symbol, and the first
    # size that isn't square compiles the VAE decoder again ("duck sizing": equal sizes, one symbol).
    shape_config.use_duck_shape = False
    # A float the graph reads (a norm's eps) starts symbolic, and tracing restarts to specialise it:
    # every start, cold or warm, traced each graph twice. Specialised from the start: the same graphs.
    dynamo_config.specialize_float = True
    use_real_rope(pipe.transformer)
    for block in _repeated_blocks(pipe.transformer):
        if getattr(block, "modulation", True):
            ahead.install(block)  # block.compile(fullgraph=True, dynamic=True), or code saved ahead of time


def compile_caption_refiner(pipe) -> None:
    """The caption refiner's blocks, left by `compile_transformer` (no modulation, at most 512 tokens: a
    few milliseconds an image). Compiled on their next use."""
    for block in _repeated_blocks(pipe.transformer):
        if not getattr(block, "modulation", True):
            block.compile(fullgraph=True, dynamic=True)


def compile_vae_decoder(pipe, *, dynamic: bool = True) -> None:
    """The VAE decoder, with dynamic height and width: one graph for every size, so a new size never
    waits for the compiler; static shapes build one graph per size instead. Compiled on its next use."""
    pipe.vae.decoder.compile(fullgraph=True, dynamic=dynamic)


def offload_text_encoder(pipe, device: torch.device) -> None:
    """ZBOT_OFFLOAD=model: the text encoder (7.5 GiB, used once per image) stays in pinned CPU memory
    and streams to the GPU one layer ahead of the one running (diffusers' group offloading, on a
    separate CUDA stream); the transformer and the VAE stay on the GPU. Peak GPU memory drops from
    ~21 GiB to ~14 GiB at 1024x1024, which fits 16-24 GB cards, for ~0.3 s more per image. (diffusers'
    enable_model_cpu_offload moved all 19 GiB both ways every image: ~9 s more.)"""
    from diffusers.hooks import apply_group_offloading

    pipe.text_encoder.to("cpu")
    pipe.transformer.to(device)
    pipe.vae.to(device)
    apply_group_offloading(pipe.text_encoder, onload_device=device, offload_device=torch.device("cpu"),
                           offload_type="block_level", num_blocks_per_group=1, use_stream=True)
    torch.cuda.empty_cache()


def quantize_fp8(transformer: torch.nn.Module) -> int:
    """torchao float8 (dynamic per-row activation scales, per-row weight scales) on the transformer's
    block linears; returns how many layers it converted."""
    from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, PerRow, quantize_

    # set_inductor_config=False: torchao would otherwise switch on Inductor's coordinate-descent
    # tuning for the whole process, which multiplies compile time (minutes) for a few percent.
    config = Float8DynamicActivationFloat8WeightConfig(granularity=PerRow(), set_inductor_config=False)
    chosen = [name for name, module in transformer.named_modules() if fp8_filter(module, name)]
    quantize_(transformer, config, filter_fn=fp8_filter)
    log.info("float8: %d linear layers of the transformer", len(chosen))
    return len(chosen)
