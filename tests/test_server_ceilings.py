"""The owner's ceilings hold for what a server stored before they were tightened: at load, through a
reset or a change of another setting, and /settings view says which stored value is held back. The
stored value stays, so loosening the ceiling brings it back; a bot owner's own value is not clamped."""

from __future__ import annotations

import pytest
from support.botkit import bot_settings, running_bot

from zbot.config import parse_windows
from zbot.core.jobs import BadInput
from zbot.core.server_settings import ServerSettings, shown
from zbot.core.store import Store

MOD, OWNER = 42, 7
STORED = {"safety_nsfw_channels": "post", "channel_ids": "2,777", "rate_limits": "50/minute",
          "role_rate_limits": '{"5": "60/minute"}', "max_count": "4", "default_count": "3"}


def permissive(settings):
    return settings.model_copy(update={"rate_limits": parse_windows("100/minute"), "admin_ids": [OWNER]})


def tightened(settings):
    """What the owner sets before the restart: ZBOT_SAFETY_NSFW_CHANNELS=spoiler, ZBOT_CHANNEL_IDS=1,2,
    ZBOT_RATE_LIMITS=2/minute, ZBOT_MAX_COUNT=2."""
    return settings.model_copy(update={"safety_nsfw_channels": "spoiler", "channel_ids": [1, 2], "max_count": 2,
                                       "rate_limits": parse_windows("2/minute"), "admin_ids": [OWNER]})


async def store_as_manager(settings, store, guild_id: int = 9, values: dict[str, str] = STORED) -> None:
    servers = ServerSettings(permissive(settings), store)
    await servers.load()
    for name, value in values.items():
        await servers.set(guild_id, name, value, MOD, owner=False)  # all allowed while the environment was loose


async def restarted(base, store) -> ServerSettings:
    servers = ServerSettings(base, store)
    await servers.load()
    return servers


async def test_a_tightened_ceiling_across_a_restart_clamps_what_managers_stored(settings, store):
    await store_as_manager(settings, store)
    await store_as_manager(settings, store, 10, {"channel_ids": "777", "rate_limits": "10/minute,3/hour"})
    by_owners = ServerSettings(permissive(settings), store)
    await by_owners.load()
    await by_owners.set(11, "rate_limits", "50/minute", 0, owner=True)  # `zbot settings` on the command line
    await by_owners.set(11, "safety_nsfw_channels", "post", OWNER, owner=True)  # an owner in Discord
    servers = await restarted(tightened(settings), store)
    here, there = servers.effective(9), servers.effective(10)
    assert here.safety_nsfw_channels == "spoiler"  # flagged images are not posted plainly
    assert here.channel_ids == [2]  # the server's list within the owner's
    assert shown(here, "rate_limits") == "2/minute" and here.role_rate_limits[5] == parse_windows("2/minute")
    assert (here.max_count, here.default_count) == (2, 2)
    assert there.channel_ids == [1, 2]  # none of the server's channels is allowed: the owner's list applies
    assert shown(there, "rate_limits") == "3/hour,2/minute"  # 10/minute is moot; the stricter 3/hour stays
    assert set(servers.held(9)) == {"safety_nsfw_channels", "channel_ids", "rate_limits", "role_rate_limits",
                                    "max_count", "default_count"}
    assert servers.values(9) == STORED  # the stored values stay
    owners = servers.effective(11)  # a bot owner's own values are theirs: no ceiling applies
    assert shown(owners, "rate_limits") == "50/minute" and owners.safety_nsfw_channels == "post"
    assert servers.held(11) == {}
    loosened = await restarted(permissive(settings), store)
    assert shown(loosened.effective(9), "rate_limits") == "50/minute" and loosened.held(9) == {}


async def test_a_reset_or_a_change_of_another_setting_keeps_the_ceilings(settings, store):
    await store_as_manager(settings, store)
    servers = await restarted(tightened(settings), store)
    await servers.reset(9, "default_count", MOD)
    after_reset = servers.effective(9)
    await servers.set(9, "default_size", "wide", MOD, owner=False)
    after_set = servers.effective(9)
    with pytest.raises(BadInput, match="at most 2 images a request"):
        await servers.set(9, "default_count", "3", MOD, owner=False)  # above what applies, though not stored
    for effective in (after_reset, after_set):
        assert shown(effective, "rate_limits") == "2/minute" and effective.channel_ids == [2]
        assert effective.safety_nsfw_channels == "spoiler" and effective.max_count == 2
    assert after_set.default_size == "wide"


async def test_settings_view_says_a_stored_value_is_held_back(fake, tmp_path, tiny_model):
    mod = fake.add_member(name="mod", roles=(fake.add_role("Mods", permissions=1 << 5),))
    loose = bot_settings(tmp_path, tiny_model)
    store = await Store.open(loose.database)
    await store_as_manager(loose, store, fake.guild_id, {"rate_limits": "50/minute", "safety_nsfw_channels": "post"})
    await store.close()
    tight = bot_settings(tmp_path, tiny_model, rate_limits="2/minute", safety_nsfw_channels="spoiler")
    zh_mod = fake.add_member(name="版主", roles=(fake.add_role("版主", permissions=1 << 5),))
    fake.user_locales[zh_mod] = "zh-CN"
    async with running_bot(fake, tight):
        view = (await (await fake.slash("settings", {}, subcommand="view", user_id=mod)).wait_response()
                ).data["content"]
        zh_view = (await (await fake.slash("settings", {}, subcommand="view", user_id=zh_mod)).wait_response()
                   ).data["content"]
    lines = {line.split("`")[1]: line for line in view.splitlines()[1:]}
    zh_lines = {line.split("`")[1]: line for line in zh_view.splitlines()[1:]}
    assert "`rate_limits` = `2/minute`" in lines["rate_limits"]  # what applies
    assert "`50/minute` is held back by the bot owner's settings" in lines["rate_limits"]
    assert "`safety_nsfw_channels` = `spoiler`" in lines["safety_nsfw_channels"]
    assert "held back" in lines["safety_nsfw_channels"] and "held back" not in lines["max_count"]
    assert "超出" in zh_lines["rate_limits"] and "held back" not in zh_view  # each line said in Chinese
