"""Painting part of a picture (issue 28: Zoom out, Pan): diffusers' ZImageInpaintPipeline on the modules the
engine has loaded, and the warm-up of the sizes it draws at.

The pipeline shares every module with the text-to-image one (nothing loaded or copied: no second copy in
GPU memory) and has a scheduler of its own, since a scheduler keeps per-call state. It keeps the unmasked
part in latent space; zbot.core.reframe pastes the kept pixels back afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, partial

import torch
from PIL import Image

from zbot.core.jobs import PAN_DIRECTIONS, RenderSpec, panned_size
from zbot.core.reframe import finish, pan, zoom_out


@cache
def inpaint_pipeline_class():
    """ZImageInpaintPipeline without its second VAE encode: diffusers 0.42.1 encodes the masked image for
    `masked_image_latents`, which its denoising loop never reads (only a callback could ask for it). The
    loop draws no random numbers after that encode, so the pixels are the same; the time is saved. And
    the picture's latents in the usual layout (see prepare_latents).
    (Defined on first use: diffusers is imported where the model loads, on the worker's thread.)"""
    from diffusers import ZImageInpaintPipeline

    class InpaintPipeline(ZImageInpaintPipeline):
        def prepare_latents(self, *args, **kwargs):
            # On the CPU the picture's latents leave the VAE encoder channels-last (the image tensor is a
            # view of an HWC array and the CPU's convolutions keep that layout); the loop's blend passes
            # it on to the latents the VAE decoder gets, and the compiled decoder, guarded on strides,
            # was compiled a second time for inpainting. Same values, the usual layout: one decoder
            # graph. (CUDA's encoder already gave the usual layout: 4 graphs either way on an H100.)
            latents, noise, image_latents = super().prepare_latents(*args, **kwargs)
            return latents, noise, image_latents.contiguous()

        def prepare_mask_latents(self, mask, masked_image, batch_size, height, width, dtype, device, generator):
            latent_height = 2 * (int(height) // (self.vae_scale_factor * 2))
            latent_width = 2 * (int(width) // (self.vae_scale_factor * 2))
            mask = torch.nn.functional.interpolate(mask, size=(latent_height, latent_width), mode="nearest")
            mask = mask.to(device=device, dtype=dtype)
            if mask.shape[0] < batch_size:
                mask = mask.repeat(batch_size // mask.shape[0], 1, 1, 1)
            return mask, None

    return InpaintPipeline


def sibling(pipe, cls):
    """A pipeline of class `cls` on `pipe`'s modules, with a scheduler of its own. Not `from_pipe`: that
    casts every module to its dtype argument, float32 by default, which would undo bf16 and float8."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    parts = dict(pipe.components)
    parts["scheduler"] = FlowMatchEulerDiscreteScheduler.from_config(pipe.scheduler.config)
    built = cls(**parts)
    built.set_progress_bar_config(disable=True)
    return built


def inpaint_sizes(sizes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The sizes Pan draws at from each configured size (Zoom out draws at the size itself), each once."""
    found = []
    for width, height in sizes:
        for direction in PAN_DIRECTIONS:
            size = panned_size(width, height, direction)
            if size is not None and size not in sizes and size not in found:
                found.append(size)
    return found


class Inpainting:
    """The Engine's inpainting half (zbot.engine.engine.Engine mixes it in)."""

    def render_inpaint(self, prompt: str, seed: int, width: int, height: int, steps: int, image: Image.Image,
                       mask: Image.Image, strength: float = 1.0,
                       on_step: Callable[[int, int], None] | None = None) -> Image.Image:
        """Paint where `mask` is white (L, 255) over `image` at width x height (multiples of 16), keeping
        the rest in latent space; returns a PIL image. At strength 1 the painted part starts from noise.
        `on_step(done, total)` is called after each step."""
        if image.size != (width, height) or mask.size != (width, height):
            raise ValueError(f"image {image.size} and mask {mask.size} must be {width}x{height}")
        return self._generate(prompt, width, height, steps, seed, on_step, source=image.convert("RGB"),
                              strength=strength, mask=mask.convert("L"))

    def render_reframe(self, spec: RenderSpec, on_step: Callable[[int, int], None]) -> Image.Image:
        """A Zoom out (`spec.factor`) or Pan (`spec.direction`) of the spec's source at its own size: the
        canvas and mask of zbot.core.reframe painted with the spec's prompt and seed, the kept pixels
        pasted back across a feathered seam."""
        image = self._source_image(spec.source, None, None)
        frame = zoom_out(image, spec.factor) if spec.factor is not None else pan(image, spec.direction)
        if frame is None or frame.size != (spec.width, spec.height):
            raise ValueError(f"the source {image.size} does not reframe to {spec.width}x{spec.height}")
        painted = self.render_inpaint(spec.prompt, spec.seed, *frame.size, spec.steps, frame.canvas, frame.mask,
                                      on_step=on_step)
        return finish(painted, frame)

    def _inpaint_pipeline(self):
        if getattr(self, "_inpaint", None) is None:
            self._inpaint = sibling(self.pipe, inpaint_pipeline_class())
        return self._inpaint

    def _inpaint_warmups(self, caption: int, steps: int) -> list[tuple[str, Callable[[], None]]]:
        """Warm-up steps: inpainting at the first size (Zoom out: the same graphs as a draw, checked), then
        at each Pan size not drawn yet. Until its step is done, a size runs eagerly (Engine._generate)."""
        first = self.sizes[0]
        plan = [(f"inpaint at {first[0]}x{first[1]}", partial(self._warm_inpaint, *first, caption, steps))]
        for width, height in inpaint_sizes(self.sizes):
            if (width, height) not in self.upscale_sizes:
                plan.append((f"pan to {width}x{height}", partial(self._warm_inpaint, width, height, caption, steps)))
        return plan

    def _warm_inpaint(self, width: int, height: int, caption: int, steps: int) -> None:
        mask = Image.new("L", (width, height), 255)
        mask.paste(0, (0, 0, width // 2 // 16 * 16, height))
        self._generate(self.prompts.prompt_for_caption(caption), width, height, steps, 0,
                       source=Image.new("RGB", (width, height), (128, 128, 128)), strength=1.0, mask=mask,
                       warming=True)
        self.warmed_sizes.add((width, height))
