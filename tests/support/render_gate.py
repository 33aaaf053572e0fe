"""Holding `zbot run`'s renders in a subprocess: a sitecustomize on PYTHONPATH wraps Engine.render so that
each render stops after its first step until a gate file exists. The restart tests act while a job is
mid-render for sure, without the seconds-long 1024x1024 renders they used to rely on."""

from __future__ import annotations

import os
from pathlib import Path

HOLD_RENDERS = """
import importlib.abc, importlib.util, os, sys, time

GATE = os.environ["TEST_RENDER_GATE"]


def hold(engine_class):
    render = engine_class.render

    def held_render(self, spec, on_step):
        def step(done, total):
            on_step(done, total)
            if done == 1:  # the first step is reported ("Drawing..."): the job is running, mid-render
                while not os.path.exists(GATE):
                    time.sleep(0.02)
        return render(self, spec, step)

    engine_class.render = held_render


class HoldRenders(importlib.abc.MetaPathFinder):
    # Patches zbot.engine.engine once it is imported (by the worker thread, after the gateway is up), so
    # that the start order stays the bot's own.
    def find_spec(self, name, path=None, target=None):
        if name != "zbot.engine.engine":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        run_module = spec.loader.exec_module

        def exec_module(module):
            run_module(module)
            hold(module.Engine)

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, HoldRenders())
"""


def holding_renders(tmp_path: Path, env: dict[str, str]) -> tuple[dict[str, str], Path]:
    """`env` for `zbot run` with its renders held after their first step, and the gate file that opens them
    (create it to let every render, now and later, run through)."""
    folder = tmp_path / "hold-renders"
    folder.mkdir(exist_ok=True)
    (folder / "sitecustomize.py").write_text(HOLD_RENDERS)
    gate = tmp_path / "renders-may-finish"
    pythonpath = os.pathsep.join(filter(None, [str(folder), env.get("PYTHONPATH")]))
    return {**env, "PYTHONPATH": pythonpath, "TEST_RENDER_GATE": str(gate)}, gate
