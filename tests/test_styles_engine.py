"""Styles' LoRA adapters on the tiny model (CPU): a tiny LoRA built on the spot in the formats the community
ships (diffusers/peft names, kohya's lora_unet_ names with alphas), loaded through the engine's slots."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from zbot.core.jobs import RenderSpec
from zbot.core.styles import Style
from zbot.engine.acceleration import compiled_graphs
from zbot.engine.engine import Engine
from zbot.engine.loras import AdapterRefused

TARGETS = ("attention.to_q", "attention.to_k", "attention.to_v", "attention.to_out.0",
           "feed_forward.w1", "feed_forward.w2", "feed_forward.w3")


def linear_shapes(model: Path) -> dict[str, tuple[int, int]]:
    """(in, out) of each layer a LoRA for Z-Image targets, read from the tiny model's transformer."""
    from diffusers import ZImageTransformer2DModel

    with torch.device("meta"):
        transformer = ZImageTransformer2DModel.from_config(
            ZImageTransformer2DModel.load_config(str(model / "transformer")))
    return {name: (module.in_features, module.out_features) for name, module in transformer.named_modules()
            if isinstance(module, torch.nn.Linear) and name.endswith(TARGETS)}


def make_lora(model: Path, path: Path, *, rank: int = 4, seed: int = 1, kohya: bool = False,
              widen: int = 0) -> Path:
    """A random LoRA of `rank` on every attention and feed-forward projection, as trainers save it.
    `widen` adds to each layer's input size: an adapter made for another model."""
    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for name, (size_in, size_out) in linear_shapes(model).items():
        down = torch.randn(rank, size_in + widen, generator=generator) * 0.3
        up = torch.randn(size_out, rank, generator=generator) * 0.3
        if kohya:  # lora_unet_layers_0_attention_to_q.lora_down.weight, with alpha = rank (scale 1)
            key = "lora_unet_" + name.replace(".", "_")
            tensors |= {f"{key}.lora_down.weight": down, f"{key}.lora_up.weight": up,
                        f"{key}.alpha": torch.tensor(float(rank))}
        else:
            tensors |= {f"transformer.{name}.lora_A.weight": down, f"transformer.{name}.lora_B.weight": up}
    save_file(tensors, str(path))
    return path


def png(engine: Engine, style: Style | None, seed: int = 3, prompt: str = "a red fox in the snow") -> bytes:
    spec = RenderSpec(0, prompt, seed, 64, 64, 2, style=style.name if style is not None else None)
    image = engine.render(spec, lambda *_: None)  # the engine applies the spec's style
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def loras(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("loras")
    return {"ink": make_lora(tiny_model, folder / "ink.safetensors", seed=1),
            "clay": make_lora(tiny_model, folder / "clay.safetensors", rank=2, seed=2),
            "ink_kohya": make_lora(tiny_model, folder / "ink_kohya.safetensors", seed=1, kohya=True)}


def styles_for(loras: dict[str, Path]) -> dict[str, Style]:
    return {"ink": Style("ink", lora=str(loras["ink"]), scale=0.8),
            "clay": Style("clay", lora=str(loras["clay"])),
            "ink_kohya": Style("ink_kohya", lora=str(loras["ink_kohya"]), scale=0.8),
            "plain": Style("plain", template="{prompt}, watercolor")}


def test_a_lora_changes_the_pixels_and_switching_away_and_back_is_byte_identical(tiny_model, loras):
    engine = Engine(str(tiny_model), device="cpu", compile="off", styles=styles_for(loras))
    engine.load()
    styles = engine.styles
    base = png(engine, None)
    ink, clay = png(engine, styles["ink"]), png(engine, styles["clay"])
    assert len({base, ink, clay}) == 3
    assert png(engine, styles["ink"]) == ink and png(engine, None) == base and png(engine, styles["ink"]) == ink
    # a template-only style loads no adapter: the same pixels as its prompt written out without a style
    assert png(engine, styles["plain"]) == png(engine, None, prompt="a red fox in the snow, watercolor") != base
    # kohya's names and alphas are converted as diffusers converts them: the same adapter, the same pixels
    assert png(engine, styles["ink_kohya"]) == ink
    # consecutive images of one style copy nothing into the slots
    switches = engine.loras.switches
    assert engine.use_style(styles["ink_kohya"]) is False and engine.use_style(styles["ink_kohya"]) is False
    assert engine.loras.switches == switches


def test_the_engine_matches_diffusers_own_load_lora_weights(tiny_model, loras):
    from diffusers import ZImagePipeline

    spec = RenderSpec(0, "a lighthouse at dusk", 11, 64, 64, 2)
    ours = Engine(str(tiny_model), device="cpu", compile="off", styles=styles_for(loras))
    ours.load()
    ours.use_style(ours.styles["ink"])
    mine = ours.latents(spec)
    pipe = ZImagePipeline.from_pretrained(str(tiny_model), dtype=torch.float32)
    pipe.load_lora_weights(str(loras["ink"]), adapter_name="ink")
    pipe.set_adapters(["ink"], [0.8])
    theirs = Engine.from_pipeline(pipe, device="cpu", compile="off")
    theirs.load()
    reference = theirs.latents(spec)
    assert not torch.equal(reference, ours.latents(RenderSpec(0, "a lighthouse at dusk", 12, 64, 64, 2)))
    torch.testing.assert_close(mine, reference, rtol=1e-4, atol=1e-4)


def test_a_compiled_engine_switches_styles_without_compiling_a_graph(tiny_model, loras):
    torch._dynamo.reset()
    try:
        engine = Engine(str(tiny_model), device="cpu", compile="on", sizes=[(64, 64)],
                        styles=styles_for(loras))
        engine.load()  # compiles the transformer's image blocks, where the slots are
        # The rest of the warm-up (VAE decoder, caption refiner: no LoRA there) is skipped, and with it
        # the eager stance while it is pending: from here any graph built would be a recompile.
        engine.pending_warmups = []
        assert "to_qkv" in {name.rsplit(".", 1)[-1] for name in engine.loras.slots}  # on the fused layers
        graphs = compiled_graphs()
        styles = engine.styles
        base, ink = png(engine, None), png(engine, styles["ink"])
        clay = png(engine, styles["clay"])
        assert png(engine, styles["ink"]) == ink and png(engine, None) == base
        assert len({base, ink, clay}) == 3
        assert compiled_graphs() == graphs and engine.recompiles == 0
    finally:
        torch._dynamo.reset()


def _refusal(tiny_model: Path, style: Style, **kwargs) -> str:
    engine = Engine(str(tiny_model), device="cpu", compile="off", styles={style.name: style}, **kwargs)
    with pytest.raises(AdapterRefused) as refused:
        engine.load()
    assert engine.pipe is None  # refused at start: the engine never serves
    line = str(refused.value)
    assert "\n" not in line and line.startswith(f"style {style.name!r}: ")
    return line


def test_bad_adapters_are_each_refused_at_start_with_one_line(tiny_model, loras, tmp_path):
    pickle = tmp_path / "pickled.safetensors"
    torch.save({"x": torch.zeros(2)}, pickle)  # a pickle renamed: the format LoRAs must not come in
    assert "is not a safetensors file" in _refusal(tiny_model, Style("pickle", lora=str(pickle)))
    missing = tmp_path / "gone.safetensors"
    assert "does not exist" in _refusal(tiny_model, Style("gone", lora=str(missing)))
    other = make_lora(tiny_model, tmp_path / "other.safetensors", widen=8)
    assert "is for another model" in _refusal(tiny_model, Style("other", lora=str(other)))
    names = tmp_path / "names.safetensors"
    save_file({"transformer.single_blocks.0.attn.to_q.lora_A.weight": torch.zeros(4, 8),
               "transformer.single_blocks.0.attn.to_q.lora_B.weight": torch.zeros(8, 4)}, str(names))
    assert "is not for this model" in _refusal(tiny_model, Style("flux", lora=str(names)))
    big = make_lora(tiny_model, tmp_path / "big.safetensors", rank=8)
    assert "rank 8, above the 4 prepared" in _refusal(tiny_model, Style("big", lora=str(big)), lora_max_rank=4)
