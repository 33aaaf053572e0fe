"""Usage reports as readable tables for the terminal (`zbot stats`)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from zbot.core.jobs import Status, utc
from zbot.core.usage import UsageReport


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def print_usage(report: UsageReport, console: Console) -> None:
    who = f"user {report.user_id}" if report.user_id is not None else "everyone"
    totals = Table(title=f"zbot usage: {who}", show_header=False)
    totals.add_row("images drawn", str(report.images))
    totals.add_row("last 24 hours / 7 days", f"{report.images_24h} / {report.images_7d}")
    for status in (Status.FAILED, Status.CANCELLED, Status.REJECTED, Status.QUEUED, Status.RUNNING, Status.DRAWN):
        totals.add_row(status.value, str(report.by_status.get(status.value, 0)))
    totals.add_row("withheld by the safety check / reported", f"{report.blocked} / {report.reports}")
    totals.add_row("by style", ", ".join(f"{name} {images}" for name, images in report.styles.items()) or "-")
    totals.add_row("made by", ", ".join(f"{name} {jobs}" for name, jobs in report.operations.items()) or "-")
    totals.add_row("wait: median / p95", f"{seconds(report.wait.median)} / {seconds(report.wait.p95)}")
    totals.add_row("render: median / p95", f"{seconds(report.render.median)} / {seconds(report.render.p95)}")
    console.print(totals)

    if report.user_id is None and report.top_users:
        users = Table(title="per user")
        for column in ("user", "images", "failed", "rejected", "last request (UTC)"):
            users.add_column(column)
        for user in report.top_users:
            last = utc(user.last_at).strftime("%Y-%m-%d %H:%M") if user.last_at else "-"
            users.add_row(str(user.user_id), str(user.done), str(user.failed), str(user.rejected), last)
        console.print(users)

    if report.per_day:
        days = Table(title="per day (UTC)")
        days.add_column("day")
        days.add_column("images", justify="right")
        for day, count in report.per_day:
            days.add_row(day, str(count))
        console.print(days)
