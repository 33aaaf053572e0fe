import io
import time
from datetime import date

from PIL import Image

from zbot.core.chart import per_day_chart


def test_chart_draws_a_bar_for_each_day_with_images():
    png = per_day_chart([("2026-11-20", 3), ("2026-11-25", 6)], days=10, today=date(2026, 11, 25))
    image = Image.open(io.BytesIO(png)).convert("RGB")
    assert image.size == (800, 320)
    bar = (88, 101, 242)
    columns_with_bars = {x for x in range(image.width) if image.getpixel((x, 275)) == bar}
    assert len(columns_with_bars) > 0
    # The taller day's bar reaches higher than the shorter one's.
    tops = [min((y for y in range(image.height) if image.getpixel((x, y)) == bar), default=None)
            for x in sorted(columns_with_bars)]
    assert min(tops) < max(tops)


async def test_the_per_day_chart_ends_today_even_after_days_without_images(store):
    from datetime import UTC, datetime

    from zbot.core.usage import usage_report

    now = time.time()
    for age_days in (5, 5, 3):  # nothing drawn in the last three days
        await store.record(user_id=1, prompt="p", status="posted", created_at=now - age_days * 86400)
    report = await usage_report(store, now=now)
    assert report.today == datetime.fromtimestamp(now, UTC).date().isoformat()
    png = per_day_chart(report.per_day, date.fromisoformat(report.today), days=4)
    image = Image.open(io.BytesIO(png)).convert("RGB")
    bars = {x for x in range(image.width) if image.getpixel((x, 275)) == (88, 101, 242)}
    # Four days up to today: only the first (three days ago) has images; the last three are empty.
    slot = (image.width - 2 * 40) / 4
    assert bars and max(bars) < 40 + slot
