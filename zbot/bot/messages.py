"""What the bot says: every user-visible string of the Discord side, built from plain values."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import discord

from ..jobs import Progress, Result
from ..limits import Quota
from ..usage import UsageReport

APOLOGY = "Sorry, something went wrong on my side (error `{error_id}`); the admins can find it in the logs."


def when(at: datetime) -> str:
    """A time as Discord shows it to each reader: "in 40 seconds"."""
    return discord.utils.format_dt(at, "R")


def quote_prompt(prompt: str, limit: int = 1500) -> str:
    """The prompt as plain text: markdown escaped, clipped to keep the message under Discord's 2000."""
    shown = prompt if len(prompt) <= limit else prompt[: limit - 1] + "…"
    return discord.utils.escape_markdown(shown)


def caption(result: Result, size: str, requester_id: int) -> str:
    return (f"**{quote_prompt(result.prompt)}**\n"
            f"seed {result.seed} · {size} {result.width}×{result.height} · {result.render_s:.1f} s "
            f"· for <@{requester_id}>")


def queued(position: int | None, eta: float | None, warming_up: bool) -> str:
    if warming_up:
        return f"Warming up: the model is loading. You're #{position or 1} in the queue."
    if not position:
        return "Starting…"
    ahead = "next" if position == 1 else f"#{position} in the queue"
    return f"Queued: you're {ahead}, about {_seconds(eta)}."


def drawing(progress: Progress) -> str:
    filled = round(10 * progress.step / max(1, progress.steps))
    return f"Drawing… `{'█' * filled}{'░' * (10 - filled)}` step {progress.step}/{progress.steps}"


def failed(reason: str) -> str:
    return f"Sorry, this image could not be drawn: {reason}. It did not count against your limits."


STOPPED = "The bot is restarting; your image stays in the queue and will be posted here when it's back."


def _seconds(value: float | None) -> str:
    if value is None:
        return "a moment"
    if value < 60:
        return f"{max(1, math.ceil(value))} s"
    return f"{math.ceil(value / 60)} min"


def quota(q: Quota, tier: str) -> str:
    lines = [f"**Your limits** ({tier})"]
    for usage in q.windows:
        line = f"• {usage.remaining} of {usage.window.limit} left ({usage.window})"
        if usage.resets_at is not None and usage.used:
            line += f", next one frees up {when(datetime.fromtimestamp(usage.resets_at, timezone.utc))}"
        lines.append(line)
    if not q.windows:
        lines.append("• no rate limits")
    lines.append(f"• {q.pending} of {q.max_pending} images pending")
    return "\n".join(lines)


def stats_embed(report: UsageReport, queue_depth: int, title: str) -> discord.Embed:
    def seconds(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f} s"

    embed = discord.Embed(title=title, colour=discord.Colour.blurple())
    embed.add_field(name="Images", value=f"{report.images} in all\n{report.images_24h} in 24 h\n"
                                          f"{report.images_7d} in 7 days")
    embed.add_field(name="Wait (median / p95)", value=f"{seconds(report.wait.median)} / {seconds(report.wait.p95)}")
    embed.add_field(name="Render (median / p95)",
                    value=f"{seconds(report.render.median)} / {seconds(report.render.p95)}")
    embed.add_field(name="Failures", value=f"{report.by_status.get('failed', 0)} failed\n"
                                            f"{report.by_status.get('rejected', 0)} refused")
    embed.add_field(name="Queue now", value=f"{queue_depth} unfinished")
    if report.user_id is None and report.top_users:
        top = "\n".join(f"<@{u.user_id}>: {u.done}" + (f" ({u.failed} failed)" if u.failed else "")
                        for u in report.top_users[:10])
        embed.add_field(name="Top users", value=top, inline=False)
    return embed
