"""The `zbot` command: run | draw | batch | download | styles | stats | ban | unban | bans | forget | tiny-model."""

from __future__ import annotations

import argparse
import asyncio
import inspect
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from zbot import __version__
from zbot.cli import privacy
from zbot.config import Settings, SettingsError, load_settings
from zbot.logs import quiet_model_libraries, secret_values, setup_logging

console = Console(stderr=True)


class CliError(Exception):
    """Shown as one line, exit status 1."""


def row_id(text: str) -> int:
    """An argparse type: a user, server or job id, as SQLite stores it (sqlite3 raises OverflowError past it)."""
    from zbot.core.jobs import MAX_ID, MIN_ID

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not MIN_ID <= value <= MAX_ID:
        raise argparse.ArgumentTypeError(f"{text} is not an id (at most {MAX_ID})")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zbot", description="A Discord bot that draws with Z-Image-Turbo.")
    parser.add_argument("--version", action="version", version=f"zbot {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    commands.add_parser("run", help="start the bot")

    draw = commands.add_parser("draw", help="render one image locally")
    draw.add_argument("prompt")
    draw.add_argument("--seed", type=int, help="0 to 4294967295; random when left out")
    draw.add_argument("--size", help="a named size (square, portrait, landscape, tall, wide)")
    draw.add_argument("--style", help="a style of ZBOT_STYLES (`zbot styles` lists them); default ZBOT_DEFAULT_STYLE")
    draw.add_argument("--steps", type=int, help="1 to 50; ZBOT_STEPS when left out")
    draw.add_argument("--from", dest="source", type=Path, metavar="IMAGE",
                      help="start from this image (img2img): at its own size, or --size")
    draw.add_argument("--strength", type=float, help="with --from: how much of it to redraw, 0-1 "
                      "(default ZBOT_VARY_STRENGTH)")
    draw.add_argument("--zoom-out", type=float, choices=[2, 1.5], metavar="2|1.5",
                      help="with --from: the image shrunk into its own size and the border painted")
    draw.add_argument("--pan", choices=["left", "right", "up", "down"],
                      help="with --from: the canvas grown by half that way and the new strip painted")
    draw.add_argument("--count", type=int, help="images of the seeds SEED, SEED+1, ... (1 to ZBOT_MAX_COUNT)")
    draw.add_argument("--out", type=Path, help="the PNG to write (default zbot-SEED.png; with --count, "
                      "OUT-SEED.png each)")

    batch = commands.add_parser("batch", help="render one image per line of a file",
                                description="Draw one image per line of PROMPTS (optionally `prompt | seed`; "
                                "blank lines and # comments are skipped) into DIR, with DIR/index.jsonl "
                                "recording prompt, seed and file of each.")
    batch.add_argument("prompts", type=Path, metavar="PROMPTS.txt")
    batch.add_argument("--out", type=Path, required=True, metavar="DIR",
                       help="folder for the PNGs and index.jsonl")
    batch.add_argument("--size", help="a named size for every image (default: the first in ZBOT_SIZES)")
    batch.add_argument("--steps", type=int, help="1 to 50; ZBOT_STEPS when left out")

    download = commands.add_parser("download", help="fetch the model's weights ahead of time",
                                   description="Download ZBOT_MODEL from ModelScope into $MODELSCOPE_CACHE "
                                   "(or check a local folder) and make sure the snapshot is complete.")
    download.add_argument("--model", help="a ModelScope id or local folder (default ZBOT_MODEL)")

    commands.add_parser("styles", help="the configured styles, each adapter checked against the model")
    stats = commands.add_parser("stats", help="usage from the database")
    stats.add_argument("--user", type=row_id, help="one user's usage")
    stats.add_argument("--guild", type=row_id, help="one server's usage")
    stats.add_argument("--days", type=int, default=30, help="how many days of history (default 30)")

    backup = commands.add_parser("backup", help="a consistent copy of the database, safe while the bot runs")
    backup.add_argument("file", type=Path, help="the copy to write (replaced if it exists)")

    prune = commands.add_parser("prune", help="remove old history from the database",
                                description="Remove finished rows (and their reports) older than the span; "
                                "rows a younger image was made from stay, and so does whatever still counts "
                                "against a rate limit.")
    prune.add_argument("--older-than", required=True, metavar="SPAN", help="e.g. 90d, 12w (a number alone: days)")
    prune.add_argument("--dry-run", action="store_true", help="only say how many rows would go")

    server = commands.add_parser("settings", help="every server's own settings; set or reset one",
                                 description="With no arguments, print the settings each server changed with "
                                 "/settings. `set GUILD NAME VALUE` and `reset GUILD NAME` change one as a bot "
                                 "owner would (for an admin locked out of Discord); a running bot reads them "
                                 "within a minute.")
    server.add_argument("action", nargs="?", choices=["set", "reset"])
    server.add_argument("guild", nargs="?", type=row_id)
    server.add_argument("name", nargs="?")
    server.add_argument("value", nargs="?")

    ban = commands.add_parser("ban", help="stop a Discord user from using zbot (every server, or --guild)",
                              description="As a bot owner: ban USER_ID (a Discord user id) in every server, or "
                              "in one with --guild; a running zbot refuses their next request. Banning again "
                              "replaces the reason and length.")
    ban.add_argument("user", type=row_id, metavar="USER_ID")
    ban.add_argument("--guild", type=row_id, help="only in this server (default: every server)")
    ban.add_argument("--reason", default="", help="told to them when they ask for an image")
    ban.add_argument("--days", type=int, help="how long (default: until `zbot unban`)")
    unban = commands.add_parser("unban", help="lift a ban given with `zbot ban` or /bans")
    unban.add_argument("user", type=row_id, metavar="USER_ID")
    unban.add_argument("--guild", type=row_id, help="the ban in this server (default: the one for every server)")
    bans = commands.add_parser("bans", help="the bans standing, and the last bans and unbans")
    bans.add_argument("--guild", type=row_id, help="one server's (and those for every server)")

    privacy.add_parser(commands, row_id)
    tiny = commands.add_parser("tiny-model", help="write a tiny random Z-Image pipeline for tests")
    tiny.add_argument("dir", type=Path)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "tiny-model":
            from zbot.engine.tiny import build_tiny_model

            quiet_model_libraries()  # transformers' bar for writing one shard: our line says it
            path = build_tiny_model(args.dir)
            size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
            print(f"wrote a tiny Z-Image pipeline to {path} ({size / 1e6:.1f} MB); use it with ZBOT_MODEL={path}")
            return 0
        settings = load_settings()
        setup_logging(settings.log_level, settings.log_format, secret_values(settings))
        if args.command == "run":
            from zbot.run import run_bot

            return asyncio.run(run_bot(settings))
        handler = COMMANDS[args.command]
        done = handler(settings, args)
        return asyncio.run(done) if inspect.iscoroutine(done) else done
    except KeyboardInterrupt:
        return 130
    except (SettingsError, CliError) as exc:
        for line in str(exc).splitlines():
            print(f"zbot: {line}", file=sys.stderr)
        return 1
    except Exception as exc:
        from zbot.app import StartError
        from zbot.core.jobs import Refused, RenderFailed
        from zbot.core.store import SchemaError
        from zbot.engine.model_files import ModelNotFound
        from zbot.engine.safety import SafetyUnavailable

        if isinstance(exc, (StartError, SchemaError, SafetyUnavailable)):
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
    from zbot.app import open_core
    from zbot.core.drawn import drawn_dir
    from zbot.core.jobs import DrawRequest
    from zbot.core.refining import plan_from_file
    from zbot.core.service import validate

    started = time.perf_counter()
    if args.strength is not None and args.source is None:
        raise CliError("--strength goes with --from IMAGE")
    if (args.zoom_out is not None or args.pan is not None) and args.source is None:
        raise CliError("--zoom-out and --pan go with --from IMAGE")
    if args.zoom_out is not None and args.pan is not None:
        raise CliError("choose one of --zoom-out and --pan")
    operation = "zoom" if args.zoom_out is not None else "pan" if args.pan is not None else None
    try:
        image = args.source.read_bytes() if args.source is not None else None
    except OSError as error:
        raise CliError(f"can't read {args.source}: {error.strerror or error}") from None
    request = DrawRequest(user_id=0, prompt=args.prompt, size=args.size, seed=args.seed, steps=args.steps,
                          count=args.count, source="cli", is_admin=True, from_image=image, strength=args.strength,
                          style=args.style, operation=operation, factor=args.zoom_out, direction=args.pan)
    # Before the model loads, so a typo costs nothing.
    validate(settings, plan_from_file(settings, request).request if image is not None else request)
    async with open_core(settings, warm_up_idle=False) as core:
        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                      TimeElapsedColumn(), console=console, transient=True) as bar:
            loading = bar.add_task("loading the model", total=None)
            await core.executor.wait_ready()
            bar.remove_task(loading)
            ticket = await core.service.submit(request)
            total = ticket.spec.denoising_steps * ticket.spec.count
            steps = bar.add_task("drawing", total=total)
            ticket.progress_listeners.append(
                lambda p: bar.update(steps, completed=(p.image - 1) * p.steps + p.step))
            result = await ticket.result()
        files = []
        for picture in result.pictures:
            if args.out is None:
                out = Path(f"zbot-{picture.seed}.png")
            else:  # several: one file each, named after the one asked for and the seed
                out = args.out if result.count == 1 else args.out.with_name(f"{args.out.stem}-{picture.seed}.png")
            await asyncio.to_thread(out.write_bytes, picture.png)
            files.append((picture, out))
        await core.service.delivered(result.job_id)
    for picture, out in files:
        print(f"seed {picture.seed}  {out}  {result.width}x{result.height}")
        if picture.flagged:
            print(f"note: the safety check flagged this image as adult content (score {picture.verdict.score:.2f})")
    print(f"render {result.render_s:.2f} s, total {time.perf_counter() - started:.2f} s")
    if "database" not in settings.model_fields_set:  # a first try, probably: say what it left behind
        print(f"history in {settings.database.resolve()} and images kept for variations in "
              f"{drawn_dir(settings.database).resolve()}/ (set ZBOT_DATABASE to put them elsewhere)")
    return 0


async def _batch(settings: Settings, args: argparse.Namespace) -> int:
    from zbot.app import open_core
    from zbot.cli.batch import BatchError, read_batch, run_batch, summary

    started = time.perf_counter()
    try:
        lines = read_batch(settings, args.prompts, size=args.size, steps=args.steps)  # before the model loads
    except BatchError as exc:
        raise CliError(str(exc)) from None
    async with open_core(settings, warm_up_idle=False) as core:
        drawn = await run_batch(core, lines, args.out, size=args.size, steps=args.steps, console=console)
    Console().print(summary(drawn, args.out, time.perf_counter() - started))
    return 0 if all(d.result is not None for d in drawn) else 1


def _download(settings: Settings, args: argparse.Namespace) -> int:
    from zbot.engine.model_files import resolve_model

    model = args.model or settings.model
    # The same steps `zbot run` takes at start: a complete cached snapshot is used as it is (no network),
    # anything else is downloaded (ModelScope shows its own progress bars), then checked for every file.
    path = resolve_model(model)
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    shown = f"{size / 1e9:.1f} GB" if size >= 1e9 else f"{size / 1e6:.1f} MB"
    print(f"{model}: complete in {path} ({shown}); zbot run will load it without the network")
    if settings.safety == "block" and settings.safety_checker == "vit" and not args.model:
        from zbot.engine.safety import SafetyUnavailable, resolve_checker_model

        try:
            checker = resolve_checker_model(settings.safety_model)
        except SafetyUnavailable as exc:
            raise CliError(str(exc)) from None
        print(f"{settings.safety_model} (the safety checker): in {checker}; loaded without the network too")
    from zbot.core.styles import StyleError
    from zbot.engine.loras import resolve_lora

    for lora in dict.fromkeys(s.lora for s in settings.styles.values() if s.lora and not args.model):
        try:  # a hub id fetched once; zbot run reads it from the cache, offline
            print(f"{lora} (a style's LoRA): in {resolve_lora(lora, download=True)}")
        except StyleError as exc:
            raise CliError(str(exc)) from None
    return 0


def _styles(settings: Settings, args: argparse.Namespace) -> int:
    from zbot.engine.loras import check_styles
    from zbot.engine.model_files import resolve_model

    if not settings.styles:
        print("no styles configured (ZBOT_STYLES or ZBOT_STYLES_FILE)")
        return 0
    lines = check_styles(settings.styles, resolve_model(settings.model), settings.lora_max_rank)
    print("\n".join(lines))
    return 1 if any(line.startswith("BAD") for line in lines) else 0


async def _stats(settings: Settings, args: argparse.Namespace) -> int:
    from zbot.cli.report import print_usage
    from zbot.core.store import Store
    from zbot.core.usage import usage_report

    if not settings.database.exists():
        raise CliError(f"no database at {settings.database}: nothing has been drawn yet")
    store = await Store.open(settings.database)
    try:
        report = await usage_report(store, now=time.time(), user_id=args.user, guild_id=args.guild,
                                    days=args.days)
    finally:
        await store.close()
    print_usage(report, Console())
    return 0


def _backup(settings: Settings, args: argparse.Namespace) -> int:
    from zbot.core.maintenance import backup

    started = time.perf_counter()
    done = backup(settings.database, args.file)
    print(f"backed up {settings.database} to {done.path}: {done.generations} generations, "
          f"{done.bytes / 1e6:.1f} MB, {time.perf_counter() - started:.1f} s (integrity checked)")
    print(f"the images kept for variations are in {settings.database.name}-drawn/; copy that folder too if "
          "you want them")
    return 0


async def _prune(settings: Settings, args: argparse.Namespace) -> int:
    from zbot.core.maintenance import longest_window, parse_span, prune
    from zbot.core.server_settings import ServerSettings
    from zbot.core.store import Store

    span = parse_span(args.older_than)
    if not settings.database.exists():
        raise CliError(f"no database at {settings.database}: nothing to prune")
    store = await Store.open(settings.database)
    try:
        servers = ServerSettings(settings, store)
        await servers.load()
        longest = longest_window(settings, [servers.effective(g) for g in servers.all_values()])
        pruned = await prune(store, older_than_s=span, now=time.time(), longest_window_s=longest,
                             dry_run=args.dry_run)
    finally:
        await store.close()
    verb = "would remove" if args.dry_run else "removed"
    print(f"{verb} {pruned.generations} generations, {pruned.reports} reports and {pruned.refusals} hours of refusal "
          f"counts older than {args.older_than}; "
          f"kept {pruned.kept_for_lineage} old ones that younger images were made from")
    return 0


async def _server_settings(settings: Settings, args: argparse.Namespace) -> int:
    from zbot.core.server_settings import SERVER_SETTINGS, ServerSettings
    from zbot.core.store import Store

    if args.action is not None and (args.guild is None or args.name is None
                                    or (args.action == "set" and args.value is None)):
        raise CliError("usage: zbot settings set GUILD NAME VALUE | zbot settings reset GUILD NAME")
    store = await Store.open(settings.database)
    try:
        servers = ServerSettings(settings, store)
        await servers.load()
        if args.action == "set":
            change = await servers.set(args.guild, args.name, args.value, 0, owner=True)
            print(f"server {args.guild}: {args.name} = {change.new!r} (was {change.old or 'the default'})")
        elif args.action == "reset":
            change = await servers.reset(args.guild, args.name, 0)
            print(f"server {args.guild}: {args.name} back to the default (was {change.old!r})")
        else:
            every = servers.all_values()
            if not every:
                print("no server has changed a setting; every server has the environment's")
            for guild, values in sorted(every.items()):
                print(f"server {guild}:")
                for name in SERVER_SETTINGS:
                    if name in values:
                        print(f"  {name} = {values[name]}")
    finally:
        await store.close()
    if args.action is not None:
        print("a running zbot applies it within a minute")
    return 0


async def _bans(settings: Settings, args: argparse.Namespace) -> int:
    from zbot.core.bans import COMMAND_LINE, Actor, Bans
    from zbot.core.store import Store

    store = await Store.open(settings.database)
    try:
        bans, owner = Bans(store, owners=settings.admin_ids), Actor(COMMAND_LINE, owner=True)
        where = f"server {args.guild}" if args.guild is not None else "every server"
        if args.command == "ban":
            ban = await bans.ban(owner, args.user, args.guild, args.reason, args.days)
            print(f"user {ban.user_id} is banned in {where} {_until(ban.expires_at)}")
        elif args.command == "unban":
            await bans.unban(owner, args.user, args.guild)
            print(f"user {args.user} may use zbot in {where} again")
        else:
            standing = await bans.current(args.guild)
            if not standing:
                print("no one is banned" + (f" in server {args.guild}" if args.guild is not None else ""))
            for ban in standing:
                place = f"server {ban.guild_id}" if ban.guild_id is not None else "every server"
                print(f"user {ban.user_id}  {place}  {_until(ban.expires_at)}  by {ban.banned_by or 'the command line'}"
                      f"  {ban.reason or '(no reason)'}")
            for event in await bans.history(args.guild):
                at = time.strftime("%Y-%m-%d %H:%M", time.gmtime(event.at))
                place = f"server {event.guild_id}" if event.guild_id is not None else "every server"
                print(f"{at} UTC  {event.actor_id or 'the command line'}: {event.action} user {event.user_id} in {place}")
    finally:
        await store.close()
    return 0


def _until(expires_at: float | None) -> str:
    return "until lifted" if expires_at is None else time.strftime("until %Y-%m-%d %H:%M UTC", time.gmtime(expires_at))


# `zbot COMMAND` -> its handler (settings, args) -> exit status; `run` and `tiny-model` are in main().
COMMANDS = {"draw": _draw, "batch": _batch, "download": _download, "styles": _styles, "stats": _stats, "settings": _server_settings,
            "backup": _backup, "prune": _prune, "ban": _bans, "unban": _bans, "bans": _bans,
            "forget": privacy.forget}


if __name__ == "__main__":
    sys.exit(main())
