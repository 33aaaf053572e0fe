"""LoRA adapters switched between images without a recompile.

Every linear layer any configured adapter touches gets a `LoraLinear` around it before the first compile:
fixed-size buffers for A (rank x in) and B (out x rank) at the largest rank configured, and the scale as a
tensor. Switching styles copies the next adapter into those buffers (zero-padded to the rank) and sets the
scale: the compiled graphs read buffers, so nothing is traced again (the same idea as diffusers'
`enable_lora_hotswap`). Our own slots rather than peft's because the engine fuses q/k/v into `to_qkv` and
the feed-forward's w1/w3 into `w13`, and may put float8 on them: a slot sits on the fused (or float8)
layer and adds each part's low-rank update beside it, never merged into the base weights.

Adapter files are read with diffusers' `ZImagePipeline.lora_state_dict`, so every format it converts
(diffusers/peft names, kohya `lora_unet_`, `diffusion_model.` prefixes, alphas) loads the same here.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from zbot.core.styles import Style, StyleError, adapter_rank, lora_source, safetensors_shapes
from zbot.engine.model_files import ModelNotFound

log = logging.getLogger(__name__)

# Fused layers (zbot/engine/acceleration.py: fuse_projections) -> the original layers, in stacking order.
_FUSED = {"to_qkv": ("to_q", "to_k", "to_v"), "w13": ("w1", "w3")}
_ORIGINAL = {part: (fused, index) for fused, parts in _FUSED.items() for index, part in enumerate(parts)}


class AdapterRefused(ModelNotFound):
    """A style's adapter can't be used; the message is one line naming the style. A ModelNotFound so that
    front ends print it as one line at start, like a missing model."""


class LoraLinear(torch.nn.Module):
    """`base(x)` plus `scale * B(A(x))` for each of `parts` stacked outputs (1, or 3 for q/k/v fused)."""

    def __init__(self, base: torch.nn.Module, parts: int, rank: int, dtype: torch.dtype, device: torch.device):
        super().__init__()
        self.base, self.parts, self.rank = base, parts, rank
        self.in_features, self.out_features = base.in_features, base.out_features
        self.register_buffer("lora_a", torch.zeros(parts * rank, self.in_features, dtype=dtype, device=device))
        self.register_buffer("lora_b", torch.zeros(parts, self.out_features // parts, rank, dtype=dtype,
                                                   device=device))
        self.register_buffer("lora_scale", torch.zeros((), dtype=dtype, device=device))

    @property
    def weight(self) -> torch.Tensor:  # code that reads a layer's weight (its dtype, say) still finds it
        return self.base.weight

    @property
    def bias(self) -> torch.Tensor | None:
        return self.base.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = F.linear(x.to(self.lora_a.dtype), self.lora_a)
        if self.parts == 1:
            update = F.linear(low, self.lora_b[0])
        else:
            update = torch.einsum("...pr,por->...po", low.unflatten(-1, (self.parts, self.rank)), self.lora_b)
            update = update.flatten(-2)
        return self.base(x) + (update * self.lora_scale).to(x.dtype)


@dataclass
class Adapter:
    """One adapter file read and checked: its pairs (A, B) by original layer name (diffusers' naming)."""

    path: Path
    rank: int
    pairs: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(repr=False)
    placed: dict[tuple[str, int], tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict, repr=False)
    style: str = ""  # the first style naming it, for the refusals

    def nbytes(self) -> int:
        return sum(a.nbytes + b.nbytes for a, b in self.placed.values())


def resolve_lora(lora: str, *, download: bool = False) -> Path:
    """The local .safetensors file for a style's `lora`: a path as it is; a hub id from its cache (no
    network), or fetched when `download` (`zbot download`)."""
    source = lora_source(lora)
    if source.hub == "local":
        return Path(source.ref)
    patterns = [source.file] if source.file else ["*.safetensors"]
    try:
        if source.hub == "hf":
            from huggingface_hub import snapshot_download

            folder = Path(snapshot_download(source.ref, allow_patterns=patterns, local_files_only=not download))
        else:
            from modelscope.hub.snapshot_download import snapshot_download

            folder = Path(snapshot_download(source.ref, allow_patterns=patterns, local_files_only=not download))
    except Exception as exc:  # each hub raises its own errors (and ValueError) for "not in the cache"
        what = "could not be fetched" if download else "is not downloaded"
        raise StyleError(f"{lora} {what} ({type(exc).__name__}); run `zbot download`") from None
    files = [folder / source.file] if source.file else sorted(folder.rglob("*.safetensors"))
    if len(files) != 1:
        raise StyleError(f"{lora} holds {len(files)} .safetensors files; name one: {lora}/FILE.safetensors")
    return files[0]


def _alpha_factor(metadata: Mapping | None) -> float:
    """peft's scaling saved in the file (lora_alpha / r), 1 when none is saved (as diffusers loads it)."""
    flat = {str(key).rsplit(".", 1)[-1]: value for key, value in (metadata or {}).items()}
    if flat.get("alpha_pattern") or flat.get("rank_pattern"):
        raise StyleError("per-layer ranks or alphas (peft's rank_pattern/alpha_pattern) are not supported")
    rank, alpha = flat.get("r"), flat.get("lora_alpha")
    if not rank or alpha is None:
        return 1.0
    return float(alpha) / (math.sqrt(rank) if flat.get("use_rslora") else float(rank))


def read_adapter(path: Path, max_rank: int | None = None) -> Adapter:
    """An adapter file read into memory (CPU) in diffusers' naming; StyleError for a missing file, one
    that isn't safetensors, holds no LoRA, or a rank above `max_rank`."""
    from diffusers import ZImagePipeline

    shapes = safetensors_shapes(path)  # missing, or not safetensors: said before diffusers tries
    rank = adapter_rank(shapes)
    if rank == 0:
        raise StyleError(f"{path} holds no LoRA weights (lora_A/lora_B or lora_down/lora_up)")
    if max_rank is not None and rank > max_rank:
        raise StyleError(f"{path} has rank {rank}, above the {max_rank} prepared (ZBOT_LORA_MAX_RANK)")
    try:
        tensors, metadata = ZImagePipeline.lora_state_dict(str(path), return_lora_metadata=True)
    except (ValueError, KeyError, RuntimeError, OSError) as exc:  # what conversion and safetensors raise
        raise StyleError(f"{path} could not be read as a Z-Image LoRA ({type(exc).__name__})") from None
    factor = _alpha_factor(metadata)
    pairs = {}
    for key, down in tensors.items():
        if not key.endswith(".lora_A.weight"):
            if not key.endswith(".lora_B.weight"):
                raise StyleError(f"{path} holds {key!r}, which is not a LoRA weight (LoKr and others aren't "
                                 "supported)")
            continue
        name = key.removesuffix(".lora_A.weight").removeprefix("transformer.")
        up = tensors.get(key.replace(".lora_A.", ".lora_B."))
        if up is None or down.ndim != 2 or up.ndim != 2 or up.shape[1] != down.shape[0]:
            raise StyleError(f"{path}: {name} has no matching lora_B of rank {down.shape[0]}")
        pairs[name] = (down, up * factor if factor != 1.0 else up)
    return Adapter(Path(path), rank, pairs)


def _slot_for(transformer: torch.nn.Module, name: str) -> tuple[str, int, int] | None:
    """Where layer `name` (original naming) lives now: (module name, part, parts), or None."""
    modules = dict(transformer.named_modules())
    if isinstance(modules.get(name), (torch.nn.Linear, LoraLinear)) or _is_linear(modules.get(name)):
        return name, 0, 1
    parent, _, leaf = name.rpartition(".")
    if leaf in _ORIGINAL:
        fused, index = _ORIGINAL[leaf]
        fused_name = f"{parent}.{fused}"
        if fused_name in modules:
            return fused_name, index, len(_FUSED[fused])
    return None


def _is_linear(module) -> bool:
    # torchao's float8 keeps nn.Linear (its weight becomes a tensor subclass); anything with the two
    # sizes and a forward of one input qualifies.
    return module is not None and hasattr(module, "in_features") and hasattr(module, "out_features")


def place(adapter: Adapter, transformer: torch.nn.Module, style: str) -> dict[tuple[str, int], tuple[int, int]]:
    """Check the adapter against this transformer (every layer it names exists with these sizes); returns
    (module, part) -> (in, out of the part) for the layers it touches. AdapterRefused otherwise."""
    modules = dict(transformer.named_modules())
    where: dict[tuple[str, int], tuple[int, int]] = {}
    for name, (down, up) in adapter.pairs.items():
        slot = _slot_for(transformer, name)
        if slot is None:
            raise AdapterRefused(f"style {style!r}: {adapter.path.name} is not for this model (it names "
                                 f"{name}, which Z-Image doesn't have)")
        module_name, part, parts = slot
        module = modules[module_name]
        size_in, size_out = module.in_features, module.out_features // parts
        if down.shape[1] != size_in or up.shape[0] != size_out:
            raise AdapterRefused(f"style {style!r}: {adapter.path.name} is for another model ({name} is "
                                 f"{size_in}->{size_out} here, {down.shape[1]}->{up.shape[0]} in the file)")
        where[(module_name, part)] = (parts, size_in)
    return where


class Loras:
    """The slots on one transformer and the adapters loaded for them; `use(style)` switches."""

    def __init__(self, transformer: torch.nn.Module, adapters: Mapping[str, Adapter], rank: int,
                 device: torch.device, dtype: torch.dtype):
        self.rank, self.adapters = rank, dict(adapters)
        self.slots: dict[str, LoraLinear] = {}
        placements = {lora: place(adapter, transformer, adapter.style or lora) for lora, adapter in adapters.items()}
        wanted = {(module, parts) for where in placements.values() for (module, _), (parts, _) in where.items()}
        for module_name, parts in sorted(wanted):
            parent_name, _, leaf = module_name.rpartition(".")
            parent = transformer.get_submodule(parent_name) if parent_name else transformer
            base = getattr(parent, leaf) if not leaf.isdigit() else parent[int(leaf)]
            slot = LoraLinear(base, parts, rank, dtype, device)
            if leaf.isdigit():
                parent[int(leaf)] = slot
            else:
                setattr(parent, leaf, slot)
            self.slots[module_name] = slot
        for adapter in adapters.values():  # on the device once: a switch is a copy between buffers
            for name, (down, up) in adapter.pairs.items():
                module_name, part, _ = _slot_for(transformer, name) or ("", 0, 1)
                adapter.placed[(module_name, part)] = (down.to(device, dtype), up.to(device, dtype))
            adapter.pairs = {}
        self.current: str | None = None  # the adapter in the buffers
        self.switches = 0  # adapters copied into the buffers (not counting scale-only changes)

    def use(self, style: Style | None) -> bool:
        """Make the next images use `style`'s adapter at its scale (none: scale 0, the base model's
        pixels). Returns whether an adapter was copied in; the same adapter again copies nothing."""
        lora = style.lora if style is not None else None
        scale = style.scale if style is not None and lora is not None else 0.0
        copied = False
        if lora is not None and lora != self.current:
            adapter = self.adapters[lora]
            with torch.no_grad():
                for slot in self.slots.values():
                    slot.lora_a.zero_()
                    slot.lora_b.zero_()
                for (module_name, part), (down, up) in adapter.placed.items():
                    slot, rank = self.slots[module_name], down.shape[0]
                    slot.lora_a[part * self.rank:part * self.rank + rank].copy_(down)
                    slot.lora_b[part, :, :rank].copy_(up)
            self.current, copied = lora, True
            self.switches += 1
        with torch.no_grad():
            for slot in self.slots.values():
                slot.lora_scale.fill_(scale)
        return copied


def read_style_adapters(styles: Mapping[str, Style], max_rank: int = 0) -> tuple[dict[str, Adapter], int]:
    """Each distinct adapter the styles name, read and checked; and the rank to prepare (`max_rank`, or
    the largest among them when 0). AdapterRefused names the first style that can't be used."""
    adapters: dict[str, Adapter] = {}
    for style in styles.values():
        if style.lora is None or style.lora in adapters:
            continue
        try:
            adapters[style.lora] = read_adapter(resolve_lora(style.lora), max_rank or None)
            adapters[style.lora].style = style.name
        except StyleError as exc:
            raise AdapterRefused(f"style {style.name!r}: {exc}") from None
    rank = max_rank or max((adapter.rank for adapter in adapters.values()), default=0)
    return adapters, rank


def check_styles(styles: Mapping[str, Style], model_folder: Path, max_rank: int = 0) -> list[str]:
    """One line per style: its adapter checked against the model's transformer built empty (on the meta
    device: no weights read). For `zbot styles`."""
    from diffusers import ZImageTransformer2DModel

    config = ZImageTransformer2DModel.load_config(str(Path(model_folder) / "transformer"))
    with torch.device("meta"):
        transformer = ZImageTransformer2DModel.from_config(config)
    lines = []
    for style in styles.values():
        what = f"{style.name}: {style.description or '(no description)'}"
        if style.template:
            what += f"; template {style.template!r}"
        if style.lora is None:
            lines.append(f"ok  {what}")
            continue
        try:
            adapter = read_adapter(resolve_lora(style.lora), max_rank or None)
            place(adapter, transformer, style.name)
        except (StyleError, AdapterRefused) as exc:
            lines.append(f"BAD {what}; {str(exc).removeprefix(f'style {style.name!r}: ')}")
            continue
        lines.append(f"ok  {what}; LoRA {style.lora} rank {adapter.rank}, {len(adapter.pairs)} layers, "
                     f"scale {style.scale:g}")
    return lines
