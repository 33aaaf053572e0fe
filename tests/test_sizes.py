"""ZBOT_SIZES names against Discord's limits: a choice's name and value and a menu option's label and
value take at most 100 characters, and /draw shows a size as "name (W×H)". One name too long would make
Discord refuse the whole bulk registration (400 Invalid Form Body), so it is refused at start."""

from __future__ import annotations

import json

import pytest
from support.botkit import bot_settings, running_bot

from zbot.config import MAX_SIZE_NAME, SettingsError, load_settings

DISCORD_MAX = 100


def long_name(length: int) -> str:
    return ("poster-for-the-spring-fair-" * 4)[:length]


async def test_the_longest_size_name_fits_discords_limits_and_one_more_is_refused(settings, fake, tmp_path, tiny_model,
                                                                                  monkeypatch):
    longest = long_name(MAX_SIZE_NAME)
    monkeypatch.setenv("ZBOT_SIZES", json.dumps({"square": "64x64", longest + "s": "2048x2048"}))
    with pytest.raises(SettingsError) as refused:
        load_settings(_env_file=None)
    message = str(refused.value)
    assert message.startswith("bad setting ZBOT_SIZES:") and "\n" not in message
    assert f"at most {MAX_SIZE_NAME} characters" in message
    monkeypatch.setenv("ZBOT_SIZES", json.dumps({"small": "64x64", longest: "2048x2048"}))
    settings = bot_settings(tmp_path, tiny_model, sizes=load_settings(_env_file=None).sizes)
    async with running_bot(fake, settings) as run:
        draw = fake.find_command("draw")
        view = run.bot.get_cog("Drawing").image_view(1, 64, 64)
    [size] = [option for option in draw["options"] if option["name"] == "size"]
    shown = {choice["value"]: choice["name"] for choice in size["choices"]}
    assert shown[longest] == f"{longest} (2048×2048)" and len(shown[longest]) == DISCORD_MAX  # not cut
    assert all(1 <= len(name) <= DISCORD_MAX and len(value) <= DISCORD_MAX for value, name in shown.items())
    [menu] = [c for row in view.to_components() for c in row["components"] if c["type"] == 3]
    [option] = menu["options"]
    assert option["value"] == longest and option["label"] == f"{longest} (2048×2048)"
    assert len(option["label"]) <= DISCORD_MAX and len(option["value"]) <= DISCORD_MAX
