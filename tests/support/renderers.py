"""A renderer that draws flat colours at once, with gates to hold it: the executor and bot tests' GPU."""

from __future__ import annotations

import threading
import time

from PIL import Image


class FakeRenderer:
    """Stands in for the GPU: records what ran, on which thread, and can be told to fail or wait."""

    def __init__(self, delay: float = 0.0, fail_prompts: tuple[str, ...] = ()):
        self.delay = delay
        self.fail_prompts = fail_prompts
        self.loaded = False
        self.ran: list[int] = []
        self.specs: list = []  # the RenderSpecs drawn, in order
        self.threads: set[int] = set()
        self.active = 0
        self.max_active = 0
        self.recovered = 0
        self.gate = threading.Event()
        self.gate.set()
        self._lock = threading.Lock()

    def load(self) -> None:
        self.loaded = True

    def render(self, spec, on_step):
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            self.threads.add(threading.get_ident())
            self.gate.wait(10)
            for step in range(spec.steps):
                time.sleep(self.delay / max(1, spec.steps))
                on_step(step + 1, spec.steps)
            if spec.prompt in self.fail_prompts:
                raise RuntimeError("boom")
            self.ran.append(spec.job_id)
            self.specs.append(spec)
            image = Image.new("RGB", (spec.width, spec.height), (spec.seed % 256, 0, 0))
            image.putpixel((0, 0), (255, 255, 255))  # not one flat colour: that is a broken render
            return image
        finally:
            with self._lock:
                self.active -= 1

    def recover(self) -> None:
        self.recovered += 1
