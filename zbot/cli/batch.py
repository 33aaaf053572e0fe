"""`zbot batch PROMPTS.txt --out DIR`: one image per line of a file, through the same service as every
other front end, and DIR/index.jsonl saying how to draw each one again.

A line is a prompt, optionally followed by `| SEED`. Blank lines and lines starting with # are skipped.
A prompt that itself contains | ends with `|` (no seed) or `| SEED`. Every line is checked before the
model loads: one bad line stops the batch before it costs any GPU time.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from zbot.config import Settings
from zbot.core.jobs import BadInput, DrawRequest, Refused, RenderFailed, Result
from zbot.core.service import Service, validate

INDEX = "index.jsonl"
_index_lock = threading.Lock()


class BatchError(Exception):
    """Why the batch can't start; one problem a line."""


@dataclass(frozen=True)
class Line:
    number: int  # in the prompts file, from 1
    prompt: str
    seed: int | None


@dataclass
class Drawn:
    line: Line
    result: Result | None = None
    file: Path | None = None
    error: str | None = None


def parse_prompts(text: str) -> tuple[list[Line], list[str]]:
    """The prompt lines and, separately, a sentence for each line that can't be read."""
    lines, problems = [], []
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        prompt, bar, tail = stripped.rpartition("|")
        seed = None
        if not bar:
            prompt = stripped
        elif tail.strip().isascii() and tail.strip().isdigit():
            seed = int(tail)
        elif tail.strip():
            problems.append(f"line {number}: {tail.strip()[:30]!r} after the last | is not a seed (a whole "
                            "number); a prompt that contains | ends with | or | SEED")
            continue
        lines.append(Line(number, prompt.strip(), seed))
    return lines, problems


def read_batch(settings: Settings, path: Path, *, size: str | None, steps: int | None) -> list[Line]:
    """The file's prompt lines, each already validated; BatchError lists every bad one."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BatchError(f"can't read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    lines, problems = parse_prompts(text)
    for line in lines:
        try:
            validate(settings, request_for(line, size, steps))
        except BadInput as refusal:
            problems.append(f"line {line.number}: {refusal.message}")
    if problems:
        problems.sort(key=lambda problem: int(problem.split(":")[0].removeprefix("line ")))
        noun = "line" if len(problems) == 1 else "lines"
        raise BatchError("\n".join([*problems, f"{len(problems)} bad {noun} in {path}; nothing was drawn"]))
    if not lines:
        raise BatchError(f"{path} has no prompts (one a line; blank lines and # comments are skipped)")
    return lines


def request_for(line: Line, size: str | None, steps: int | None) -> DrawRequest:
    return DrawRequest(user_id=0, prompt=line.prompt, seed=line.seed, size=size, steps=steps, source="cli",
                       is_admin=True, count=1)


def file_name(line: Line, seed: int) -> str:
    """NNNN-the-prompt-SEED.png: sorted like the prompts file, and the same image gets the same name."""
    slug = re.sub(r"\W+", "-", line.prompt.casefold()).strip("-_")
    if len(slug) > 32:  # cut at a word's end when there is one
        slug = slug[:33].rsplit("-", 1)[0] if "-" in slug[:33] else slug[:32]
    slug = slug.strip("-_") or "image"
    return f"{line.number:04d}-{slug}-{seed}.png"


async def draw_all(service: Service, settings: Settings, lines: list[Line], out: Path, *, size: str | None,
                   steps: int | None, on_progress: Callable[[float], None] = lambda _: None) -> list[Drawn]:
    """Draw every line in order, writing each PNG and its index record as soon as it is done.
    `on_progress(images)` gets the images finished so far, fractions included."""
    out.mkdir(parents=True, exist_ok=True)
    # One job running and the next waiting keeps the GPU busy without filling the queue with a whole file.
    window = asyncio.Semaphore(service.executor.workers + 1)
    fractions: dict[int, float] = {}

    def moved(number: int, fraction: float) -> None:
        fractions[number] = fraction
        on_progress(sum(fractions.values()))

    async def one(line: Line) -> Drawn:
        async with window:
            try:
                ticket = await service.submit(request_for(line, size, steps))
                ticket.progress_listeners.append(lambda p: moved(line.number, p.step / p.steps * 0.99))
                result = await ticket.result()
            except Refused as refusal:
                return Drawn(line, error=refusal.sentence())
            except RenderFailed as failure:
                moved(line.number, 1.0)
                return Drawn(line, error=failure.reason)
        path = out / file_name(line, result.seed)
        record = {"line": line.number, "prompt": result.prompt, "seed": result.seed,
                  "size": size or settings.default_size, "width": result.width, "height": result.height,
                  "steps": result.steps, "model": settings.model, "file": path.name,
                  "render_s": round(result.render_s, 3), "job_id": result.job_id,
                  "safety": None if result.verdict is None else {
                      "flagged": result.verdict.flagged, "score": result.verdict.score,
                      "checker": result.verdict.checker},
                  "created": datetime.now(UTC).isoformat(timespec="seconds")}
        await asyncio.to_thread(_save, path, result.png, out / INDEX, record)
        await service.delivered(result.job_id)
        moved(line.number, 1.0)
        return Drawn(line, result, path)

    return list(await asyncio.gather(*(one(line) for line in lines)))


def _save(path: Path, png: bytes, index: Path, record: dict) -> None:
    path.write_bytes(png)
    with _index_lock, index.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record, ensure_ascii=False) + "\n")


async def run_batch(core, lines: list[Line], out: Path, *, size: str | None, steps: int | None,
                    console: Console) -> list[Drawn]:
    """draw_all with a progress bar on `console` (the model's loading first)."""
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[done]}"),
               TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        loading = bar.add_task("loading the model", total=None, done="")
        await core.executor.wait_ready()
        bar.remove_task(loading)
        images = bar.add_task("drawing", total=len(lines), done=f"0/{len(lines)}")

        def on_progress(done: float) -> None:
            bar.update(images, completed=done, done=f"{int(done)}/{len(lines)}")

        return await draw_all(core.service, core.settings, lines, out, size=size, steps=steps,
                              on_progress=on_progress)


def summary(drawn: list[Drawn], out: Path, elapsed: float) -> Table:
    """Seeds and times, one row an image, failures in red."""
    good = [d.result for d in drawn if d.result is not None]
    mean = sum(r.render_s for r in good) / len(good) if good else 0.0
    size = f", {good[0].width}x{good[0].height}" if good else ""
    table = Table(title=f"{len(good)} of {len(drawn)} images in {out}{size}", title_justify="left",
                  caption=f"{elapsed:.1f} s in all, render {mean:.2f} s per image on average; "
                  f"prompt, seed and file of each in {out / INDEX}", caption_justify="left")
    # Seeds and times are never cut short; a long prompt is. Files: NNNN (the line)-prompt-SEED.png.
    table.add_column("line", justify="right", no_wrap=True)
    table.add_column("seed", justify="right", no_wrap=True, min_width=10)
    table.add_column("render", justify="right", no_wrap=True)
    table.add_column("prompt", no_wrap=True, overflow="ellipsis", max_width=40)
    for d in drawn:
        if d.result is None:
            table.add_row(str(d.line.number), "", Text("failed", style="red"),
                          Text(f"{d.error}: {d.line.prompt}", style="red"))
        else:  # Text, not markup: a prompt may hold [brackets]
            r = d.result
            table.add_row(str(d.line.number), str(r.seed), f"{r.render_s:.2f} s", Text(d.line.prompt))
    return table
