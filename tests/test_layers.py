"""The layers, held by walking every import in zbot/ (at the top of a module or inside a function):

- the core (zbot/core/) imports no discord, torch, diffusers, aiohttp (nor any other model or web library)
  and nothing of the front ends, the engine or the composition root;
- the engine (zbot/engine/) is the only importer of torch and diffusers, and sees only the core's plain
  types (zbot.core.jobs, zbot.core.styles, zbot.core.reframe) and the configuration;
- the front ends (zbot/bot/, zbot/http/) reach the core through Service and plain types: they import neither
  the store, the lifecycle nor the executor, and never reach for `service.store` (or `.lifecycle`,
  `.executor`, `.inspector`) on a service or core object.
There is no list of exceptions."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "zbot"

MODEL_LIBRARIES = {"torch", "diffusers", "transformers", "torchao", "safetensors", "accelerate", "modelscope",
                   "huggingface_hub", "nudenet", "onnxruntime", "ray", "tokenizers", "triton"}
WEB_LIBRARIES = {"discord", "aiohttp"}
# The catalogue of sentences (plain data): the core raises its refusals by key and values from there.
CORE_MAY_SEE = {"zbot", "zbot.config", "zbot.catalogue"}
# What the engine may see of zbot; zbot.core.reframe is Pillow geometry (Zoom out and Pan canvases, no I/O).
PLAIN_TYPES = {"zbot", "zbot.config", "zbot.core.jobs", "zbot.core.styles", "zbot.core.reframe"}
BEHIND_THE_SERVICE = {"zbot.core.store", "zbot.core.lifecycle", "zbot.core.executor", "zbot.core.drawn",
                      "zbot.core.instance", "zbot.core.maintenance"}
HIDDEN_ATTRIBUTES = {"store", "lifecycle", "executor", "inspector"}


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(name: str, path: Path) -> set[str]:
    """Every module a file imports, absolute (relative imports resolved against its package)."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            # `from zbot.core import store` imports the module zbot.core.store
            found |= {f"{module}.{alias.name}" for alias in node.names if f"{module}.{alias.name}" in modules()}
    return found


def top(module: str) -> str:
    return module.split(".")[0]


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "zbot" else "root"


def reached_around(path: Path) -> list[str]:
    """`service.store`, `self.service.lifecycle`, `core.executor`, ...: a front end behind the service."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and node.attr in HIDDEN_ATTRIBUTES:
            owner = node.value
            owner_name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
            if owner_name in {"service", "core", "_service"}:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} .{owner_name}.{node.attr}")
    return found


def crossings() -> list[str]:
    found = []
    for name, path in modules().items():
        where = layer(name)
        for module in imports(name, path):
            crossing = None
            if where == "core":
                if top(module) in MODEL_LIBRARIES | WEB_LIBRARIES:
                    crossing = "the core imports a model or web library"
                elif top(module) == "zbot" and module not in CORE_MAY_SEE and layer(module) != "core":
                    crossing = "the core imports outside the core"
            elif where == "engine":
                if top(module) in WEB_LIBRARIES:
                    crossing = "the engine imports a web library"
                elif top(module) == "zbot" and layer(module) != "engine" and module not in PLAIN_TYPES:
                    crossing = "the engine imports more of zbot than plain types and config"
            elif where in {"bot", "http"}:
                if top(module) in MODEL_LIBRARIES:
                    crossing = "a front end imports a model library"
                elif module in BEHIND_THE_SERVICE:
                    crossing = "a front end goes around the service"
                elif top(module) == "zbot" and layer(module) == "engine":
                    crossing = "a front end imports the engine"
                elif where == "http" and top(module) == "discord" or where == "bot" and layer(module) == "http":
                    crossing = "one front end imports another"
            elif where == "root" and name not in {"zbot.app"} and top(module) in MODEL_LIBRARIES:
                crossing = "only the engine imports a model library"
            if crossing:
                found.append(f"{path.relative_to(ROOT)}: {crossing} ({module})")
        if where in {"bot", "http"}:
            found += [f"{spot}: a front end goes around the service" for spot in reached_around(path)]
    return found


def test_every_module_keeps_to_its_layer():
    assert crossings() == []


def test_the_walk_sees_a_crossing_and_a_reach_around(tmp_path, monkeypatch):
    """The checks themselves: a core module importing torch, a cog writing to service.store."""
    fake = tmp_path / "zbot"
    (fake / "core").mkdir(parents=True)
    (fake / "bot").mkdir()
    (fake / "core" / "limits.py").write_text("def f():\n    import torch\n")
    (fake / "core" / "store.py").write_text("")
    (fake / "bot" / "cog.py").write_text("from ..core import store\n\ndef g(self):\n    return self.service.store\n")
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    assert sorted(crossings()) == sorted([
        "zbot/core/limits.py: the core imports a model or web library (torch)",
        "zbot/bot/cog.py: a front end goes around the service (zbot.core.store)",
        "zbot/bot/cog.py:4 .service.store: a front end goes around the service",
    ])
