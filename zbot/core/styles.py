"""Styles: a name the user picks, a prompt template, and optionally a LoRA adapter at a scale.

Bot owners configure them (ZBOT_STYLES as JSON, ZBOT_STYLES_FILE as a JSON or TOML file of the same
map); this module parses and checks them without torch, so that a bad style is one line at start. The
engine (zbot/engine/loras.py) loads the adapters and swaps them between images.
"""

from __future__ import annotations

import json
import re
import struct
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Discord takes at most 100 characters for a command choice's name and value.
MAX_STYLE_NAME = 100
MAX_DESCRIPTION = 100
MIN_SCALE, MAX_SCALE = -4.0, 4.0  # beyond this a LoRA only burns the image; negative ones steer away
HF, MODELSCOPE = "hf:", "modelscope:"
_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+\.safetensors)?$")
_FIELDS = {"description", "template", "lora", "scale"}


class StyleError(ValueError):
    """A style that can't be used, as one line naming it."""


@dataclass(frozen=True)
class Style:
    """One configured style. `lora` is a path to a .safetensors file, or `hf:ORG/NAME[/FILE.safetensors]`
    or `modelscope:ORG/NAME[/FILE.safetensors]` (fetched by `zbot download`, then read offline)."""

    name: str
    description: str = ""
    template: str | None = None
    lora: str | None = None
    scale: float = 1.0

    def prompt(self, prompt: str) -> str:
        """The prompt the model sees: the user's inside the template (as it is without one)."""
        return prompt if self.template is None else self.template.replace("{prompt}", prompt)


@dataclass(frozen=True)
class LoraSource:
    """Where a style's adapter comes from: hub "local", "hf" or "modelscope"; `file` is the file in the hub
    repository (None: its one .safetensors file)."""

    hub: str
    ref: str
    file: str | None = None


def lora_source(lora: str) -> LoraSource:
    for prefix, hub in ((HF, "hf"), (MODELSCOPE, "modelscope")):
        if lora.startswith(prefix):
            ident = lora.removeprefix(prefix)
            if not _HUB_ID.match(ident):
                raise StyleError(f"{lora!r} is not {prefix}ORG/NAME or {prefix}ORG/NAME/FILE.safetensors")
            org, name, *rest = ident.split("/")
            return LoraSource(hub, f"{org}/{name}", "/".join(rest) or None)
    if not lora.endswith(".safetensors"):
        raise StyleError(f"{lora!r} is not a .safetensors file, nor an hf:ORG/NAME or modelscope:ORG/NAME id")
    return LoraSource("local", str(Path(lora).expanduser()))


def parse_style(name: Any, value: Any) -> Style:
    """One entry of the map, checked; a StyleError says what is wrong in one line."""
    name = str(name)
    label = f"style {name[:40]!r}"
    if not name.strip() or len(name) > MAX_STYLE_NAME:
        raise StyleError(f"{label}: a name is 1 to {MAX_STYLE_NAME} characters (Discord's limit for a choice)")
    if not isinstance(value, dict):
        raise StyleError(f'{label}: must be an object like {{"template": "{{prompt}}, watercolor"}}')
    if unknown := sorted(set(value) - _FIELDS):
        raise StyleError(f"{label}: unknown field {unknown[0]!r} (known: {', '.join(sorted(_FIELDS))})")
    description, template, lora = value.get("description", ""), value.get("template"), value.get("lora")
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        raise StyleError(f"{label}: the description is text of at most {MAX_DESCRIPTION} characters")
    if template is not None and (not isinstance(template, str) or template.count("{prompt}") != 1):
        raise StyleError(f"{label}: the template must contain {{prompt}} exactly once")
    if lora is not None:
        if not isinstance(lora, str) or not lora.strip():
            raise StyleError(f"{label}: lora is a .safetensors path or an hf:/modelscope: id")
        try:
            lora_source(lora)
        except StyleError as exc:
            raise StyleError(f"{label}: {exc}") from None
    scale = value.get("scale", 1.0)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not MIN_SCALE <= scale <= MAX_SCALE:
        raise StyleError(f"{label}: scale is a number from {MIN_SCALE:g} to {MAX_SCALE:g}")
    if template is None and lora is None:
        raise StyleError(f"{label}: give it a template, a lora, or both")
    return Style(name, description, template, lora, float(scale))


def parse_styles(value: Any) -> dict[str, Style]:
    """The JSON map (text or already parsed) name -> {description, template, lora, scale}."""
    if isinstance(value, str):
        if not value.strip():
            return {}
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise StyleError(f"not valid JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(value, dict):
        raise StyleError('must be a JSON object like {"watercolor": {"template": "{prompt}, watercolor"}}')
    return {style.name: style for style in (
        item if isinstance(item, Style) else parse_style(name, item) for name, item in value.items())}


def read_styles_file(path: Path) -> dict[str, Style]:
    """A JSON (.json) or TOML (anything else) file holding the same map as ZBOT_STYLES."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise StyleError(f"{path} can't be read ({exc.strerror or type(exc).__name__})") from None
    if Path(path).suffix.lower() == ".json":
        return parse_styles(text or "{}")
    try:
        return parse_styles(tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        raise StyleError(f"{path} is not valid TOML ({exc})") from None


def safetensors_shapes(path: Path) -> dict[str, list[int]]:
    """The tensors' names and shapes from a .safetensors file's header, without loading them (nor torch).
    A StyleError when the file is missing or not safetensors."""
    try:
        with open(path, "rb") as file:
            head = file.read(8)
            length = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
            if not 2 <= length <= 100_000_000:
                raise StyleError(f"{path} is not a safetensors file")
            header = json.loads(file.read(length))
    except FileNotFoundError:
        raise StyleError(f"{path} does not exist; run `zbot download` for a hub id, or fix the path") from None
    except OSError as exc:
        raise StyleError(f"{path} can't be read ({exc.strerror or type(exc).__name__})") from None
    except (ValueError, UnicodeDecodeError):  # json's errors are ValueErrors
        raise StyleError(f"{path} is not a safetensors file") from None
    if not isinstance(header, dict):
        raise StyleError(f"{path} is not a safetensors file")
    return {name: list(entry["shape"]) for name, entry in header.items()
            if name != "__metadata__" and isinstance(entry, dict) and "shape" in entry}


def adapter_rank(shapes: dict[str, list[int]]) -> int:
    """The largest rank among a LoRA file's down (A) matrices; 0 when it holds none."""
    downs = [shape[0] for name, shape in shapes.items()
             if re.search(r"(lora_A|lora_down|lora\.down)\.weight$", name) and shape]
    return max(downs, default=0)
