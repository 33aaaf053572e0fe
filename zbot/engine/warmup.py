"""The engine's warm-up: the first size before the first image, then, one step at a time while no job waits,
the compiled parts, every configured size, the upscale sizes, inpainting and the Pan sizes, and the image
blocks saved ahead of time for the next start. A mixin of zbot.engine.engine.Engine."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial

import torch
from PIL import Image

from zbot.engine.acceleration import compile_caption_refiner, compile_vae_decoder, compiled_graphs
from zbot.engine.ahead import SAVE_STEP
from zbot.engine.prompts import caption_lengths

log = logging.getLogger("zbot.engine.engine")  # the engine's own lines, wherever the method lives

WARMUP_STEPS = 2  # shapes don't depend on the step count; two steps also run the scheduler's second branch


class WarmUp:
    def _warm_first(self) -> None:
        """What the first image needs: the first size drawn once, which builds the graph of the
        transformer's image blocks (dynamic in the sequence length)."""
        self._warm_draw(*self.sizes[0], caption_lengths()[0])
        self._settle_graphs()

    def _warmup_plan(self) -> list[tuple[str, Callable[[], None]]]:
        """The warm-up steps after the first size, cheapest and most useful first."""
        captions = caption_lengths()
        width, height = self.sizes[0]
        steps: list[tuple[str, Callable[[], None]]] = []
        if self.compiled:
            # Each its own step: on a cold compile cache each takes tens of seconds, and a job that
            # arrives meanwhile waits for the step under way only.
            done = getattr(self.pipe, "_zbot_compiled_parts", set())  # by an earlier load() of this pipeline
            later = (("the VAE decoder", partial(compile_vae_decoder, dynamic=self.vae_dynamic)),
                     ("the caption refiner", compile_caption_refiner))
            for what, compile_part in later:
                if what not in done:
                    steps.append((f"{what} compiled", partial(self._compile_then_draw, what, compile_part)))
        steps.append(("the text encoder at each length", self._warm_text_encoder))
        steps.append((f"{width}x{height} at the longest caption",
                      lambda: self._warm_draw(width, height, captions[-1])))
        for w, h in self.sizes[1:]:
            steps.append((f"{w}x{h}", lambda w=w, h=h: self._warm_draw(w, h, captions[2])))
        for w, h in self.upscale_sizes:
            steps.append((f"upscale to {w}x{h}",
                          lambda w=w, h=h: self._warm_draw(w, h, captions[2], image=True)))
        steps += self._inpaint_warmups(captions[2], WARMUP_STEPS)  # Zoom out and Pan (zbot/engine/inpaint.py)
        if self.ahead is not None and self.ahead.wanted:  # last: the next start is the one it serves
            steps.append((SAVE_STEP, self._save_ahead))
        return steps

    def _save_ahead(self) -> None:
        assert self.ahead is not None
        self.ahead.keep_next_call()
        try:
            self._warm_draw(*self.sizes[0], caption_lengths()[0])
            self.ahead.save()
        finally:  # a draw that failed: hold no tensors
            self.ahead.forget_call()

    def _compile_then_draw(self, what: str, compile_part: Callable[[object], None]) -> None:
        compile_part(self.pipe)
        self.pipe._zbot_compiled_parts = getattr(self.pipe, "_zbot_compiled_parts", set()) | {what}
        self._warm_draw(*self.sizes[0], caption_lengths()[0])

    def _warm_text_encoder(self) -> None:
        """The text encoder once at each padded length (its first run at a length pays for cuBLAS's
        choices; recorded as CUDA graphs, this only checks them)."""
        assert self.prompts is not None
        for bucket in self.buckets:
            self.prompts.encode(self.prompts.prompt_for_caption(min(bucket, caption_lengths()[-1])))

    def _warm_draw(self, width: int, height: int, caption: int, image: bool = False) -> None:
        assert self.prompts is not None
        prompt = self.prompts.prompt_for_caption(caption)
        source = Image.new("RGB", (width, height), (128, 128, 128)) if image else None
        self._generate(prompt, width, height, WARMUP_STEPS, 0, source=source, strength=1.0 if image else None,
                       warming=True)
        self.warmed_sizes.add((width, height))

    def warm_up_next(self) -> bool:
        """Do the next warm-up step (seconds: a compile, or a load from the compile cache); True while
        more remain. Called on the pipeline's thread while no job waits."""
        if not self.pending_warmups:
            return False
        what, step = self.pending_warmups.pop(0)
        began = time.perf_counter()
        try:
            step()
            self._settle_graphs()
            log.info("warm-up: %s in %.1f s", what, time.perf_counter() - began)
        except Exception:  # out of memory at a big upscale, say: that size runs eagerly, the rest goes on
            log.exception("warm-up: %s failed; requests at it run without compiling what they lack", what)
            self.recover()
            self._graphs_ready = compiled_graphs()
        if not self.pending_warmups and self._load_started is not None:
            self.ready_all_s = time.perf_counter() - self._load_started
            log.info("every size is warmed up, %.1f s after the start (%d compiled graphs)",
                     self.ready_all_s, compiled_graphs())
        return bool(self.pending_warmups)

    def warm_up(self) -> None:
        """Every warm-up step now (benchmarks, tests, a worker that must be fully ready before serving)."""
        while self.warm_up_next():
            pass

    def _settle_graphs(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self._graphs_ready = compiled_graphs()
