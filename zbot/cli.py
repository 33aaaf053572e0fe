"""The `zbot` command: run | draw | stats | tiny-model."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from .config import Settings, SettingsError, load_settings

console = Console(stderr=True)


class CliError(Exception):
    """Shown as one line, exit status 1."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zbot", description="A Discord bot that draws with Z-Image-Turbo.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    commands.add_parser("run", help="start the bot")

    draw = commands.add_parser("draw", help="render one image locally")
    draw.add_argument("prompt")
    draw.add_argument("--seed", type=int, help="0 to 4294967295; random when left out")
    draw.add_argument("--size", help="a named size (square, portrait, landscape, tall, wide)")
    draw.add_argument("--steps", type=int, help="1 to 50; ZBOT_STEPS when left out")
    draw.add_argument("--out", type=Path, help="the PNG to write (default zbot-SEED.png)")

    stats = commands.add_parser("stats", help="usage from the database")
    stats.add_argument("--user", type=int, help="one user's usage")
    stats.add_argument("--days", type=int, default=30, help="how many days of history (default 30)")

    tiny = commands.add_parser("tiny-model", help="write a tiny random Z-Image pipeline for tests")
    tiny.add_argument("dir", type=Path)
    return parser


def setup_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # diffusers and transformers print loading bars and advice on every start; our own bar says enough.
    import diffusers
    import transformers

    logging.getLogger("discord.client").addFilter(lambda record: "voice will NOT" not in record.getMessage())
    for library in (diffusers, transformers):
        library.utils.logging.set_verbosity_error()
        library.utils.logging.disable_progress_bar()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "tiny-model":
            from .tiny import build_tiny_model

            path = build_tiny_model(args.dir)
            size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
            print(f"wrote a tiny Z-Image pipeline to {path} ({size / 1e6:.1f} MB); use it with ZBOT_MODEL={path}")
            return 0
        settings = load_settings()
        setup_logging(settings.log_level)
        if args.command == "draw":
            return asyncio.run(_draw(settings, args))
        if args.command == "stats":
            return asyncio.run(_stats(settings, args))
        if args.command == "run":
            from .bot.run import run_bot

            return asyncio.run(run_bot(settings))
    except KeyboardInterrupt:
        return 130
    except (SettingsError, CliError) as exc:
        print(f"zbot: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        from .bot.run import StartError
        from .engine import ModelNotFound
        from .jobs import Refused, RenderFailed

        if isinstance(exc, StartError):
            print(f"zbot: {exc}", file=sys.stderr)
        elif isinstance(exc, Refused):
            print(f"zbot: {exc.sentence()}", file=sys.stderr)
        elif isinstance(exc, RenderFailed):
            print(f"zbot: the image could not be drawn: {exc.reason}", file=sys.stderr)
        elif isinstance(exc, ModelNotFound):
            print(f"zbot: {exc}", file=sys.stderr)
        else:
            raise
        return 1
    return 2


async def _draw(settings: Settings, args: argparse.Namespace) -> int:
    from .app import open_core
    from .jobs import DrawRequest
    from .service import validate

    started = time.perf_counter()
    request = DrawRequest(user_id=0, prompt=args.prompt, size=args.size, seed=args.seed, steps=args.steps,
                          source="cli", is_admin=True)
    validate(settings, request)  # before the model loads, so a typo costs nothing
    async with open_core(settings) as core:
        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                      TimeElapsedColumn(), console=console, transient=True) as bar:
            loading = bar.add_task("loading the model", total=None)
            await core.executor.wait_ready()
            bar.remove_task(loading)
            ticket = await core.service.submit(request)
            steps = bar.add_task("drawing", total=ticket.spec.steps)
            ticket.progress_listeners.append(lambda p: bar.update(steps, completed=p.step))
            result = await ticket.result()
        out = args.out or Path(f"zbot-{result.seed}.png")
        await asyncio.to_thread(out.write_bytes, result.png)
    print(f"seed {result.seed}  {out}  {result.width}x{result.height}  "
          f"render {result.render_s:.2f} s, total {time.perf_counter() - started:.2f} s")
    return 0


async def _stats(settings: Settings, args: argparse.Namespace) -> int:
    from .report import print_usage
    from .store import Store
    from .usage import usage_report

    if not settings.database.exists():
        raise CliError(f"no database at {settings.database}: nothing has been drawn yet")
    store = await Store.open(settings.database)
    try:
        report = await usage_report(store, now=time.time(), user_id=args.user, days=args.days)
    finally:
        await store.close()
    print_usage(report, Console())
    return 0


if __name__ == "__main__":
    sys.exit(main())
