"""A bar chart of images per day as PNG bytes, drawn with Pillow (no plotting library needed)."""

from __future__ import annotations

import io
from datetime import date, timedelta

from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT, MARGIN = 800, 320, 40
BACKGROUND, BAR, INK = (47, 49, 54), (88, 101, 242), (220, 221, 222)


def per_day_chart(per_day: list[tuple[str, int]], today: date, days: int = 30) -> bytes:
    """PNG of the `days` days up to `today`, with days without images shown empty."""
    counts = dict(per_day)
    last = today
    series = [(d, counts.get(d.isoformat(), 0)) for d in (last - timedelta(days=i) for i in range(days - 1, -1, -1))]
    peak = max((n for _, n in series), default=0) or 1

    image = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    draw.text((MARGIN, 10), f"Images per day (last {days} days, UTC) - peak {peak}", fill=INK, font=font)
    slot = (WIDTH - 2 * MARGIN) / len(series)
    base = HEIGHT - MARGIN
    for index, (day, count) in enumerate(series):
        x0 = MARGIN + index * slot + 2
        top = base - (base - 2 * MARGIN) * count / peak
        if count:
            draw.rectangle([x0, top, x0 + slot - 4, base], fill=BAR)
        if index % 7 == 0 or index == len(series) - 1:
            draw.text((x0, base + 6), day.strftime("%m-%d"), fill=INK, font=font)
    draw.line([MARGIN, base, WIDTH - MARGIN, base], fill=INK)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
