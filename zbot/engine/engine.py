"""The Z-Image pipeline: where the weights come from, how they load, how one image is drawn fast.

Only the executor's worker thread calls `Engine.load` and `Engine.render`: the pipeline keeps per-call
state (scheduler timesteps, tokenizer) and must never be called from two threads at once.

The fast path on a GPU (bench/gpu_bench.py measures it): the prompt is encoded at a bucketed length
instead of 512 tokens (zbot/engine/prompts.py), the transformer's blocks and the VAE decoder are compiled with
torch.compile and warmed up (the image blocks in `load()`, the rest while idle), optionally float8 on the
transformer (the speed-ups themselves are in zbot/engine/acceleration.py), and the pixels are converted to 8
bits on the device.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import io
import logging
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from PIL import Image

from zbot.config import Settings
from zbot.core.jobs import BrokenImage, RenderSpec, Source, denoising_steps, upscaled_size
from zbot.core.styles import Style
from zbot.engine.acceleration import (
    EAGER_COST,
    compile_failure,
    compile_transformer,
    compiled_graphs,
    compiler_missing,
    fuse_projections,
    offload_text_encoder,
    quantize_fp8,
    uncompile,
    use_compile_cache,
    use_real_rope,
)
from zbot.engine.ahead import AheadBlocks, artifact_key
from zbot.engine.inpaint import Inpainting, sibling
from zbot.engine.loras import Loras, read_style_adapters
from zbot.engine.model_files import ModelNotFound, resolve_device, resolve_dtype, resolve_model
from zbot.engine.prompts import BUCKETS, PromptEncoder
from zbot.engine.warmup import WarmUp

log = logging.getLogger(__name__)

class EngineUnavailable(ModelNotFound):
    """The engine can't run as configured (fp8 without torchao or a capable GPU, say); the message says
    what to change. A ModelNotFound so that front ends print it as one line, like a missing model."""


_CHOICES = {"compile": ("auto", "on", "off"), "quantize": ("none", "fp8"), "offload": ("none", "model")}
_NO_SPEC = object()  # not inside render(): the adapter use_style() chose stays (warm-up, latents, tests)
DEFAULT_WARMUP_SIZES: tuple[tuple[int, int], ...] = ((1024, 1024),)


class Engine(WarmUp, Inpainting):
    """The renderer the executor runs: a diffusers ZImagePipeline on one device.

    compile: "on" compiles the transformer's repeated blocks (regional, a dynamic sequence length so
    every prompt length shares one graph) and the VAE decoder (dynamic height and width: one graph for
    every size), and records the text encoder as CUDA graphs; "auto" does so on CUDA only. `load()`
    compiles the transformer's image blocks by drawing the first of `sizes` (width, height: the default
    size) once, and returns: the engine serves from then on (the text encoder's CUDA graphs are recorded
    before that). The rest of the warm-up (the VAE decoder and the caption refiner compiled, the text
    encoder at each length, the longest caption, every other size, image to image at each size's
    upscale) waits in `pending_warmups`, and `warm_up_next()` does one step of it; the
    executor calls it while no job waits. A size drawn before
    its warm-up step runs eagerly wherever its shapes would need a new graph, so no request waits for
    the compiler (`recompiles` counts any graph built while serving).
    quantize: "fp8" puts torchao's float8 (dynamic activations, per-row scales) on the blocks' linear
    layers; needs `torchao` and a GPU of compute capability 8.9 or newer.
    offload: "model" keeps the text encoder in pinned CPU memory and streams it in while it runs
    (`offload_text_encoder`): ~14 GiB of GPU memory instead of ~21 at 1024x1024.
    compile_cache: a folder for torch.compile's caches (see `use_compile_cache`).
    pipeline: an already built ZImagePipeline to use instead of loading `model` (benchmarks, tests).
    """

    # The benchmark switches these off to compare: weights from disk straight to the GPU, and one
    # VAE-decoder graph for every size (else one per size).
    load_straight = True
    vae_dynamic = True

    def __init__(self, model: str, *, device: str = "auto", dtype: str = "auto", compile: str = "auto",
                 quantize: str = "none", offload: str = "none", compile_cache: Path | None = None,
                 sizes: Iterable[tuple[int, int]] | None = None, pipeline=None,
                 buckets: tuple[int, ...] = BUCKETS, styles: dict[str, Style] | None = None,
                 lora_max_rank: int = 0):
        for name, value in (("compile", compile), ("quantize", quantize), ("offload", offload)):
            if value not in _CHOICES[name]:
                raise ValueError(f"{name} must be one of {', '.join(_CHOICES[name])}, not {value!r}")
        self.model = model
        self.compile, self.quantize, self.offload = compile, quantize, offload
        self.compile_cache = compile_cache
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.compiled = compile == "on" or (compile == "auto" and self.device.type == "cuda")
        self.sizes = [tuple(size) for size in (sizes or DEFAULT_WARMUP_SIZES)]
        # The sizes Upscale draws at (each configured size enlarged): warmed up too, so that no upscale
        # waits for the compiler while others queue behind it.
        self.upscale_sizes = list(dict.fromkeys(
            big for big in (upscaled_size(*size) for size in self.sizes)
            if big not in self.sizes and big[0] * big[1] > max(w * h for w, h in self.sizes)))
        self.buckets = tuple(buckets)
        self.pipe = None
        self.prompts: PromptEncoder | None = None
        self._pipeline = pipeline
        self.load_s: float | None = None  # seconds load() took, warm-up included
        self.warmup_s: float | None = None
        self.recompiles = 0  # graphs compiled after warm-up: shapes the warm-up missed
        self._graphs_ready: int | None = None
        self._img2img = None
        self.warmed_sizes: set[tuple[int, int]] = set()  # sizes drawn by the warm-up: their graphs exist
        self.pending_warmups: list[tuple[str, Callable[[], None]]] = []  # (what, step), in order
        self.timings: dict[str, float] = {}  # seconds each part of the start took (the log says them too)
        self.ready_all_s: float | None = None  # load start -> the last warm-up step done
        self.ahead: AheadBlocks | None = None  # the image blocks' code compiled ahead of time
        self._load_started: float | None = None
        self.styles, self.lora_max_rank = dict(styles or {}), lora_max_rank  # zbot/engine/loras.py
        self.loras: Loras | None = None
        self._drawing: Style | None | object = _NO_SPEC  # the style of the spec render() draws now

    @classmethod
    def from_pipeline(cls, pipeline, **kwargs) -> Engine:
        """An engine around a pipeline built in memory; `load()` still does the device placement,
        quantization, compilation and warm-up."""
        return cls(kwargs.pop("model", "<in-memory pipeline>"), pipeline=pipeline, **kwargs)

    # -- loading ------------------------------------------------------------------------------

    def load(self) -> None:
        started = self._load_started = time.perf_counter()
        self._check_setup()
        # Adapters first: a bad one is refused in one line before seconds of loading.
        adapters, lora_rank = read_style_adapters(self.styles, self.lora_max_rank)
        lora_key = f"+lora{lora_rank}:{','.join(sorted({n for a in adapters.values() for n in a.pairs}))}"
        if self.compiled and (missing := compiler_missing(self.device)) is not None:
            self._without_compile(missing)
        if self.compiled and self.compile_cache is not None:
            use_compile_cache(self.compile_cache)
            if not getattr(self._pipeline, "_zbot_compiled", False):
                self.ahead = AheadBlocks(self.compile_cache, artifact_key(self.device, self.dtype,
                                                                       self.quantize + lora_key * bool(adapters)))
                self.ahead.prefetch(self.device)  # read while the weights load
        pipe = self._pipeline
        if pipe is None:
            pipe = self._load_weights()
            self._lap("weights_s", started)
        pipe.set_progress_bar_config(disable=True)
        began = time.perf_counter()
        if self.offload == "model" and self.device.type == "cuda":
            offload_text_encoder(pipe, self.device)
        else:
            pipe.to(self.device)
        fast = self.compiled or self.quantize != "none"
        if fast and not getattr(pipe, "_zbot_fused", False):
            use_real_rope(pipe.transformer)
            fuse_projections(pipe.transformer)
            pipe._zbot_fused = True
        if self.quantize == "fp8" and not getattr(pipe, "_zbot_fp8", False):
            quantize_fp8(pipe.transformer)
            pipe._zbot_fp8 = True
        if adapters and getattr(pipe, "_zbot_loras", None) is None:  # before compiling: the graphs read the slots
            pipe._zbot_loras = Loras(pipe.transformer, adapters, lora_rank, self.device, self.dtype)
        self.loras = getattr(pipe, "_zbot_loras", None)
        self.use_style(None)
        if self.compiled and not getattr(pipe, "_zbot_compiled", False):
            compile_transformer(pipe, sizes=len(self.sizes) + len(self.upscale_sizes))
            pipe._zbot_compiled = True
            if self.ahead is not None:
                self.ahead.attach(pipe.transformer)
                # Joined here, before the text encoder's CUDA graphs are recorded: the reader loads
                # kernels onto the GPU, which would break a recording under way.
                loading = time.perf_counter()
                if self.ahead.load(self.device):
                    self._lap("ahead_load_s", loading)  # the wait for its thread; part of setup_s
        self.prompts = PromptEncoder(pipe.tokenizer, pipe.text_encoder, self.device, buckets=self.buckets)
        if self.compiled and self.device.type == "cuda" and self.offload == "none":
            # Here, before any job: recording a CUDA graph fails if another thread (the safety check on
            # the encoder thread) uses the GPU meanwhile, so not as a warm-up step between jobs.
            capturing = time.perf_counter()
            try:
                self.prompts.capture_graphs()
                self._lap("text_encoder_graphs_s", capturing)  # part of setup_s
            except Exception:  # an unexpected model or library version: eager is correct, only slower
                log.warning("could not record the text encoder as CUDA graphs; it runs eagerly",
                            exc_info=True)
        self.pipe = pipe
        self._lap("setup_s", began)
        if fast:
            began = time.perf_counter()
            try:
                self._warm_first()
            except Exception as exc:  # noqa: BLE001 - whatever broke compiling, the eager model still draws
                if not self.compiled:
                    raise
                log.debug("compiling failed", exc_info=True)
                self._without_compile(compile_failure(exc), pipe)
                self._warm_first()  # eagerly: a failure now is the model's, raised as it is
            self._lap("first_warmup_s", began)
            self.warmup_s = self.timings["first_warmup_s"]
            self.pending_warmups = self._warmup_plan() if self.compiled or self.quantize != "none" else []
        self.load_s = time.perf_counter() - started
        if not self.pending_warmups:
            self.ready_all_s = self.load_s
        parts = ", ".join(f"{name.removesuffix('_s')} {value:.1f} s" for name, value in self.timings.items())
        follow = (f"; {len(self.pending_warmups)} warm-up steps follow while idle"
                  if self.pending_warmups else "")
        log.info("ready to draw in %.1f s (%s)%s", self.load_s, parts, follow)

    def _without_compile(self, why: str, pipe=None) -> None:
        """Serve eagerly from here on: a bot that draws slower, never one that doesn't start."""
        log.warning("torch.compile is off: %s; serving without it, %s", why, EAGER_COST)
        self.compiled, self.ahead = False, None
        if pipe is not None:
            uncompile(pipe)
            pipe._zbot_compiled, pipe._zbot_compiled_parts = False, set()

    def _lap(self, name: str, began: float) -> None:
        self.timings[name] = round(time.perf_counter() - began, 3)

    def _load_weights(self):
        """The pipeline from disk. On one CUDA GPU each weight goes from its safetensors file straight
        to the GPU (device_map): no full copy in CPU memory first, then a second pass to the GPU."""
        from diffusers import ZImagePipeline

        path = resolve_model(self.model)
        log.info("loading %s on %s (%s)", path, self.device, str(self.dtype).removeprefix("torch."))
        straight = (self.load_straight and self.device.type == "cuda" and self.offload == "none"
                    and (self.device.index is None or self.device.index == torch.cuda.current_device()))
        if not straight:
            return ZImagePipeline.from_pretrained(str(path), dtype=self.dtype)
        pipe = ZImagePipeline.from_pretrained(str(path), dtype=self.dtype, device_map="cuda")
        pipe.hf_device_map = None  # everything on one GPU: nothing to dispatch, and pipe.to() stays allowed
        return pipe

    def _check_setup(self) -> None:
        if self.quantize == "fp8":
            if self.device.type != "cuda":
                raise EngineUnavailable("ZBOT_QUANTIZE=fp8 needs an NVIDIA GPU (compute capability 8.9+: "
                                        "RTX 40xx, L4, L40, H100...); use ZBOT_QUANTIZE=none here")
            capability = torch.cuda.get_device_capability(self.device)
            if capability < (8, 9):
                raise EngineUnavailable(f"ZBOT_QUANTIZE=fp8 needs compute capability 8.9 or newer; this GPU "
                                        f"has {capability[0]}.{capability[1]}: use ZBOT_QUANTIZE=none")
            if importlib.util.find_spec("torchao") is None:
                raise EngineUnavailable("ZBOT_QUANTIZE=fp8 needs torchao: pip install 'zbot[fp8]'")

    # -- drawing ------------------------------------------------------------------------------

    def use_style(self, style: Style | None) -> bool:
        """The adapter (and scale) of the next images: `style`'s, or none. Copies an adapter into the
        prepared slots only when it changes (True then); no graph is compiled either way."""
        if self.loras is None:
            if style is not None and style.lora is not None:
                raise ValueError(f"style {style.name!r} was not configured when the engine loaded")
            return False
        return self.loras.use(style)

    def render(self, spec: RenderSpec, on_step: Callable[[int, int], None]):
        """Draw one image in `spec.style` (its adapter and its template around the prompt; none without
        one); see `_render`. A source drawn again inside is drawn in its own style."""
        outer, self._drawing = self._drawing, self._style_of(spec)
        try:
            return self._render(spec, on_step)
        finally:
            self._drawing = outer

    def _style_of(self, spec: RenderSpec) -> Style | None:
        if spec.style is None:
            return None
        if spec.style not in self.styles:  # queued before a restart that took it out of ZBOT_STYLES
            raise BrokenImage(f"the style {spec.style!r} is no longer offered")
        return self.styles[spec.style]

    def _render(self, spec: RenderSpec, on_step: Callable[[int, int], None]):
        """Draw one image; returns a PIL image. `on_step(done, total)` is called after each step. With a
        source, image to image: the source (drawn again first when it is no longer kept) resized to
        the spec's size, then `spec.denoising_steps` steps at its strength."""
        if spec.source is None:
            return self._generate(spec.prompt, spec.width, spec.height, spec.steps, spec.seed, on_step)
        if spec.factor is not None or spec.direction is not None:  # Zoom out, Pan (zbot/engine/inpaint.py)
            return self.render_reframe(spec, on_step)
        return self._generate(spec.prompt, spec.width, spec.height, spec.steps, spec.seed, on_step,
                              source=self._source_image(spec.source, spec.width, spec.height), strength=spec.strength)

    def _source_image(self, source: Source, width: int | None, height: int | None) -> Image.Image:
        """The source picture at width x height (None: at its own size)."""
        if source.png is not None:
            with Image.open(io.BytesIO(source.png)) as kept:
                image = kept.convert("RGB")
        else:
            log.info("drawing the source image again (seed %s): it is no longer kept", source.redraw.seed)
            image = self.render(source.redraw, lambda done, total: None)
        if width is not None and image.size != (width, height):  # an upscale: Lanczos first, the model redraws the detail
            image = image.resize((width, height), Image.Resampling.LANCZOS)
        return image

    def _image_pipeline(self):
        """The image-to-image pipeline on the loaded modules (nothing loaded or copied; a scheduler of its
        own, since schedulers keep per-call state)."""
        if self._img2img is None:
            from diffusers import ZImageImg2ImgPipeline

            self._img2img = sibling(self.pipe, ZImageImg2ImgPipeline)
        return self._img2img

    def latents(self, spec: RenderSpec) -> torch.Tensor:
        """The final latents (float32, before the VAE) for a spec: to compare numeric modes."""
        return self._generate(spec.prompt, spec.width, spec.height, spec.steps, spec.seed, output="latent")

    def _generate(self, prompt: str, width: int, height: int, steps: int, seed: int,
                  on_step: Callable[[int, int], None] | None = None, output: str = "pil",
                  source: Image.Image | None = None, strength: float | None = None, warming: bool = False,
                  mask: Image.Image | None = None):
        # While the warm-up is not done, or at a size it didn't reach: whatever would need a new graph runs
        # eagerly (seconds saved for this request; the warm-up builds the graph while the bot is idle).
        # set_stance is process-wide: one engine per process (the bot's worker, each Ray actor).
        if not warming and self._drawing is not _NO_SPEC:  # switched here, after any source was drawn again
            self.use_style(self._drawing)
            prompt = prompt if self._drawing is None else self._drawing.prompt(prompt)
        eager_if_new = self.compiled and not warming and (
            bool(self.pending_warmups) or (width, height) not in self.warmed_sizes)
        with torch.compiler.set_stance("eager_on_recompile") if eager_if_new else contextlib.nullcontext():
            drawn = self._draw(prompt, width, height, steps, seed, on_step, output, source, strength, mask)
        if not warming:
            self._count_recompiles()
        return drawn

    @torch.inference_mode()
    def _draw(self, prompt: str, width: int, height: int, steps: int, seed: int,
              on_step: Callable[[int, int], None] | None, output: str,
              source: Image.Image | None, strength: float | None, mask: Image.Image | None = None):
        assert self.pipe is not None and self.prompts is not None, "load() first"
        total = denoising_steps(steps, strength if source is not None else None)

        def step_end(pipe, index: int, timestep, tensors: dict) -> dict:
            if on_step is not None:
                on_step(index + 1, total)
            return tensors

        embeds = self.prompts.encode(prompt)
        generator = torch.Generator(device=self.device).manual_seed(seed)
        output_type = "latent" if output == "latent" else "pt"
        pipe, extra = self.pipe, {}
        if source is not None:
            pipe, extra = self._image_pipeline(), {"image": source, "strength": strength}
        if mask is not None:  # paint only where the mask is white (render_inpaint)
            pipe, extra["mask_image"] = self._inpaint_pipeline(), mask
        images = pipe(
            prompt=None,
            prompt_embeds=[embeds],
            height=height,
            width=width,
            num_inference_steps=steps,
            guidance_scale=0.0,  # Turbo is distilled for no guidance; the default 5.0 doubles the work
            generator=generator,
            callback_on_step_end=step_end,
            output_type=output_type,
            **extra,
        ).images
        if output == "latent":
            return images
        # The pipeline's own "pil" path, (x * 255).round() to uint8, done on the device: 3 MB cross to
        # the host instead of 12 MB of floats, and no numpy pass over them (same pixels).
        finite = torch.isfinite(images).all()
        pixels = images[0].permute(1, 2, 0).float().mul_(255).round_().to(torch.uint8).cpu().numpy()
        if not finite.item():  # read after the copy above waited for the GPU: no extra stall
            raise BrokenImage("the image came out broken (not-a-number pixels)")
        return Image.fromarray(pixels)

    def _count_recompiles(self) -> None:
        if self._graphs_ready is None:
            return
        graphs = compiled_graphs()
        if graphs > self._graphs_ready:
            self.recompiles += graphs - self._graphs_ready
            log.warning("torch.compile built %d graph(s) while serving: a shape the warm-up missed",
                        graphs - self._graphs_ready)
            self._graphs_ready = graphs

    def recover(self) -> None:
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()


def use_cpu_threads() -> None:
    """On a CPU, leave one core to the event loop. With every core given to torch, its OpenMP workers
    spin at barriers while the loop thread holds a core, and a render slows down tens of times."""
    cores = os.cpu_count() or 2
    torch.set_num_threads(max(1, cores - 1))


def engine_for(settings: Settings) -> Engine:
    """The engine these settings describe, in this process (the bot's, or a Ray actor's)."""
    if resolve_device(settings.device).type == "cpu":
        use_cpu_threads()
    return Engine(settings.model, device=settings.device, dtype=settings.dtype, compile=settings.compile,
                  sizes=list(settings.size_table.values()),
                  quantize=settings.quantize, offload=settings.offload, compile_cache=settings.compile_cache,
                  styles=settings.styles, lora_max_rank=settings.lora_max_rank)
