import io
from datetime import date

from PIL import Image

from zbot.chart import per_day_chart


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
