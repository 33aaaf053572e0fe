"""Rate windows too large for SQLite's integers or Python's timedelta are refused where they are written
(the environment, /settings set), instead of raising OverflowError on every request; the largest
accepted ones work end to end."""

from __future__ import annotations

import pytest
from support.renderers import FakeRenderer

from zbot.app import open_core
from zbot.bot.i18n import tr
from zbot.config import MAX_WINDOW_LIMIT, SettingsError, load_settings
from zbot.core.jobs import BadInput, DrawRequest, RateLimited

HUGE = ["99999999999999999999/day", f"{MAX_WINDOW_LIMIT + 1}/day", "1/99999999999999999999 days", "1/3651 days"]


@pytest.mark.parametrize("variable", ["RATE_LIMITS", "MAX_SERVER_RATE_LIMITS"])
def test_a_huge_window_is_refused_at_start(settings, monkeypatch, variable):
    for text in HUGE:
        monkeypatch.setenv(f"ZBOT_{variable}", text)
        with pytest.raises(SettingsError, match=f"ZBOT_{variable}: .* is too large: a window allows at most "
                                                f"{MAX_WINDOW_LIMIT} images and lasts at most 3650 days"):
            load_settings(_env_file=None)
    monkeypatch.setenv(f"ZBOT_{variable}", "5/minute")
    monkeypatch.setenv("ZBOT_ROLE_RATE_LIMITS", '{"7": "99999999999999999999/day"}')
    with pytest.raises(SettingsError, match="ZBOT_ROLE_RATE_LIMITS: .* is too large"):
        load_settings(_env_file=None)


async def test_a_manager_where_no_ceiling_applies_is_refused_and_the_largest_window_works(settings):
    base = settings.model_copy(update={"rate_limits": ()})  # no limits, so no ceiling for managers
    async with open_core(base, [FakeRenderer()]) as core:
        servers = core.service.servers
        for text in HUGE:
            with pytest.raises(BadInput, match="is too large") as refused:
                await servers.set(9, "rate_limits", text, 42, owner=False)
        assert "超出" in tr("zh-CN", refused.value.text)  # rendered from its key, the window's sentence too
        await servers.set(9, "rate_limits", f"{MAX_WINDOW_LIMIT}/3650 days", 42, owner=False)
        await (await core.service.submit(DrawRequest(user_id=1, prompt="a", guild_id=9))).result()
        await servers.set(9, "rate_limits", "1/3650 days", 42, owner=False)
        with pytest.raises(RateLimited, match="1 image per 3650 days"):  # the refusal's own arithmetic works
            await core.service.submit(DrawRequest(user_id=1, prompt="b", guild_id=9))
        await core.service.drain()
