"""What the bot says: every user-visible string of the Discord side, built from plain values."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

import discord

from zbot.bot.i18n import t, tr
from zbot.catalogue import Text, template, text
from zbot.core.jobs import Progress, Result, Status
from zbot.core.limits import Quota, rate
from zbot.core.service import STAYS_QUEUED
from zbot.core.usage import UsageReport

APOLOGY = template("error.apology")  # the English template, {error_id} unfilled; apology() says it


def apology(error_id: str) -> Text:
    return text("error.apology", error_id=error_id)


def refusal(refused, locale=None) -> str:
    """A refusal in the reader's language, rendered from its key: its sentence, then when to try again
    (Discord shows the time as "in 40 seconds" in each reader's own language)."""
    said = tr(locale, getattr(refused, "text", refused.message))
    if refused.retry_at is None:
        return said
    return f"{said} {tr(locale, text('retry.when', when=when(refused.retry_at)))}"


def when(at: datetime) -> str:
    """A time as Discord shows it to each reader: "in 40 seconds"."""
    return discord.utils.format_dt(at, "R")


CONTENT_LIMIT = 2000  # Discord's limit for a message's text


def fit(text: str, limit: int = CONTENT_LIMIT) -> str:
    """Text cut to Discord's message limit at a line's end, saying so."""
    if length(text) <= limit:
        return text
    lines, kept = text.split("\n"), []
    for line in lines:
        if length("\n".join([*kept, line])) + 2 > limit:
            break
        kept.append(line)
    return "\n".join([*kept, "…"])


def length(text: str) -> int:
    """Length as counted against Discord's limits; UTF-16 units, which is never less than characters."""
    return len(text.encode("utf-16-le")) // 2

# A URL, with balanced parentheses inside it (wiki links) but not a ")" that closes text around it.
_URL = re.compile(r"(?:https?|steam)://[^\s<>()]+(?:\([^\s<>()]*\)[^\s<>()]*)*", re.IGNORECASE)
_MARKDOWN = re.compile(r"([\\*_~`|>#\[\]()-])")


def _plain(text: str) -> str:
    """Text shown as typed: every markdown character escaped; a URL kept but wrapped in <...>, which
    Discord shows as a link without a preview."""
    out, last = [], 0
    for match in _URL.finditer(text):
        out.append(_MARKDOWN.sub(r"\\\1", text[last:match.start()]))
        out.append(f"<{match.group()}>")
        last = match.end()
    out.append(_MARKDOWN.sub(r"\\\1", text[last:]))
    return "".join(out)


def quote_prompt(prompt: str, limit: int = 1500) -> str:
    """The prompt as plain text on one line, at most `limit` characters once escaped.

    One line: a newline followed by #, -# or > would make a heading, small print or a quote. Escaped:
    markdown (bold, masked links [text](url), spoilers) shows as typed. Wrapped in a Unicode isolate,
    so that right-to-left overrides in the prompt can't turn the text after it around."""
    flat = " ".join(prompt.split())
    shown = _plain(flat)
    if length(shown) + 2 > limit:
        low, high = 0, len(flat)  # the longest start of the prompt whose escaped form fits
        while low < high:
            mid = (low + high + 1) // 2
            if length(_plain(flat[:mid])) + 3 <= limit:
                low = mid
            else:
                high = mid - 1
        shown = _plain(flat[:low]) + "…"
    return f"\u2068{shown}\u2069"


OPERATION_NAMES = {"draw": "drawn", "reroll": "rerolled", "pick": "picked from a grid", "vary": "variations",
                   "upscale": "upscales", "edit": "prompt edits", "size": "other sizes", "file": "from own pictures",
                   "zoom": "zoomed out", "pan": "panned"}
_ORIGINS = {"reroll", "vary", "upscale", "edit", "size", "zoom", "pan"}


def origin(operation: str, link: str | None) -> Text | str:
    """Where an image comes from, linking its parent's message when there is one: "variation of <link>"."""
    if operation not in _ORIGINS:
        return ""
    return text(f"origin.{operation}", link=link) if link else text(f"origin.{operation}.bare")


def message_link(guild_id: int | None, channel_id: int | None, message_id: int | None) -> str | None:
    if guild_id is None or channel_id is None or message_id is None:
        return None
    return f"https://discord.com/channels/{guild_id}/{channel_id}/{message_id}"


def caption(result: Result, size: str, requester_id: int, limit: int = CONTENT_LIMIT, origin: str = "",
            locale=None) -> str:
    """The text under an image, or a grid (each image's number and seed); never longer than `limit`,
    however long the prompt. `origin`: what it was made from (`origin()`); `locale`: its reader's."""
    if result.count == 1:
        seeds = t(locale, "seed {}", result.seed)
    else:
        seeds = "   ".join(f"**{index}** · {t(locale, 'seed {}', picture.seed)}"
                           for index, picture in enumerate(result.pictures, 1))
        seeds += "\n"
    details = (f"\n{seeds}{' · ' if result.count == 1 else ''}{size} {result.width}×{result.height} · "
               f"{t(locale, '{} s', f'{result.render_s:.1f}')} · {t(locale, 'for {}', f'<@{requester_id}>')}"
               + (f" · {tr(locale, origin)}" if origin else "")
               + (f" · {t(locale, 'style {}', result.style)}" if result.style else ""))
    return f"**{quote_prompt(result.prompt, limit - length(details) - 4)}**{details}"


def picked(prompt: str, seed: int, index: int, size: str, width: int, height: int, requester_id: int,
           locale=None) -> str:
    """The text under one image of a grid, posted on its own."""
    details = (f"\n{t(locale, 'seed {}', seed)} · {t(locale, 'image {} of the grid', index + 1)} · {size} "
               f"{width}×{height} · {t(locale, 'for {}', f'<@{requester_id}>')}")
    return f"**{quote_prompt(prompt, CONTENT_LIMIT - length(details) - 4)}**{details}"


def short_caption(result: Result, size: str, requester_id: int, locale=None) -> str:
    """The caption without the prompt, for when Discord refuses the whole one."""
    seeds = ", ".join(str(picture.seed) for picture in result.pictures)
    return (f"{t(locale, 'seeds {}' if result.count > 1 else 'seed {}', seeds)} · {size} {result.width}×"
            f"{result.height} · {t(locale, 'for {}', f'<@{requester_id}>')}")


def queued(position: int | None, eta: float | None, warming_up: bool) -> Text:
    if warming_up:
        return text("progress.warming", position=position or 1)
    if not position:
        return text("progress.starting")
    if position == 1:
        return text("progress.next", eta=_seconds(eta))
    return text("progress.queued", position=position, eta=_seconds(eta))


def drawing(progress: Progress) -> Text:
    filled = round(10 * progress.step / max(1, progress.steps))
    bar = f"{'█' * filled}{'░' * (10 - filled)}"
    if progress.images > 1:
        return text("progress.image", bar=bar, image=progress.image, images=progress.images, step=progress.step,
                    steps=progress.steps)
    return text("progress.step", bar=bar, step=progress.step, steps=progress.steps)


def failed(reason: str) -> Text:
    return text("draw.failed", reason=reason)  # the reason stays as the core wrote it (English)


WITHHELD = text("draw.withheld")
WITHHELD_PUBLIC = text("draw.withheld_public")
NOT_POSTED = text("draw.not_posted")
WITHHELD_PICK = text("pick.withheld")


REPORTED = text("report.thanks")
REPORTED_ALREADY = text("report.already")


def report_embed(report_id: int, generation, reporter_id: int, note: str) -> discord.Embed:
    """What the admins see in the report channel."""
    embed = discord.Embed(title=f"Report #{report_id}: image {generation.id}", colour=discord.Colour.red())
    embed.add_field(name="Prompt", value=quote_prompt(generation.prompt, 1000), inline=False)
    embed.add_field(name="Requester", value=f"<@{generation.user_id}>")
    embed.add_field(name="Seed", value=str(generation.seed))
    embed.add_field(name="Reported by", value=f"<@{reporter_id}>")
    if generation.safety_score is not None:
        embed.add_field(name="Safety score", value=f"{generation.safety_score:.2f} ({generation.safety_checker})")
    if generation.message_id and generation.channel_id:
        where = generation.guild_id or "@me"
        link = f"https://discord.com/channels/{where}/{generation.channel_id}/{generation.message_id}"
        embed.add_field(name="Image", value=link, inline=False)
    embed.add_field(name="Note", value=quote_prompt(note, 1000) if note.strip() else "(none)", inline=False)
    return embed


def lost(prompt: str) -> Text:
    return text("draw.lost", prompt=quote_prompt(prompt, 200))


STOPPED = STAYS_QUEUED
CANCELLED = text("draw.cancelled")
CANCELLED_BY_ADMIN = text("draw.cancelled_by_admin")
STARTED = text("draw.started")
UNPOSTABLE = text("draw.unpostable")


def _seconds(value: float | None) -> Text:
    if value is None:
        return text("eta.moment")
    if value < 60:
        return text("eta.seconds", seconds=max(1, math.ceil(value)))
    return text("eta.minutes", minutes=math.ceil(value / 60))


def quota(q: Quota, tier: str, upscale_weight: int = 1, locale=None) -> str:
    lines = [t(locale, "**Your limits** ({})", tier)]
    for usage in q.windows:
        if usage.resets_at is not None and usage.used:
            lines.append(t(locale, "• {} of {} left ({}), next one frees up {}", usage.remaining, usage.window.limit,
                           rate(usage.window), when(datetime.fromtimestamp(usage.resets_at, UTC))))
        else:
            lines.append(t(locale, "• {} of {} left ({})", usage.remaining, usage.window.limit, rate(usage.window)))
    if not q.windows:
        lines.append(t(locale, "• no rate limits"))
    lines.append(t(locale, "• {} of {} requests pending", q.pending, q.max_pending))
    if upscale_weight != 1 and q.windows:
        lines.append(t(locale, "An upscale counts as {} images (it is that much work), as does anything drawn at an "
                       "upscale's size; a variation, an edit or another size as one.", upscale_weight))
    return "\n".join(lines)


def stats_embed(report: UsageReport, queue_depth: int, title: str, locale=None) -> discord.Embed:
    def seconds(value: float | None) -> str:
        return "-" if value is None else t(locale, "{} s", f"{value:.2f}")

    embed = discord.Embed(title=title, colour=discord.Colour.blurple())
    embed.add_field(name=t(locale, "Images"), value=t(locale, "{} in all\n{} in 24 h\n{} in 7 days", report.images,
                                                      report.images_24h, report.images_7d))
    embed.add_field(name=t(locale, "Wait (median / p95)"),
                    value=f"{seconds(report.wait.median)} / {seconds(report.wait.p95)}")
    embed.add_field(name=t(locale, "Render (median / p95)"),
                    value=f"{seconds(report.render.median)} / {seconds(report.render.p95)}")
    embed.add_field(name=t(locale, "Failures"), value=t(locale, "{} failed\n{} refused",
                                                        report.by_status.get(Status.FAILED.value, 0),
                                                        report.by_status.get(Status.REJECTED.value, 0)))
    embed.add_field(name=t(locale, "Safety"), value=t(locale, "{} withheld\n{} reported", report.blocked,
                                                      report.reports))
    embed.add_field(name=t(locale, "Queue now"), value=t(locale, "{} unfinished", queue_depth))
    if report.operations:
        embed.add_field(name=t(locale, "Made by"), value="\n".join(
            f"{t(locale, OPERATION_NAMES.get(name, name))}: {jobs}" for name, jobs in report.operations.items()))
    if report.styles:  # style names are the owner's, shown as configured; at most 1024 characters a field
        embed.add_field(name=t(locale, "By style"), value=fit("\n".join(
            f"{name}: {images}" for name, images in report.styles.items()), 1024))
    if report.user_id is None and report.top_users:
        top = "\n".join(f"<@{u.user_id}>: {u.done}" + (f" ({u.failed} failed)" if u.failed else "")
                        for u in report.top_users[:10])
        embed.add_field(name=t(locale, "Top users"), value=top, inline=False)
    return embed
