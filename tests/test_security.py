"""Nobody above their station: secrets never echoed, blocked words not bypassed by how they are
written, commands registered once, and the Docker build context without secrets or data."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.botkit import bot_settings, running_bot
from support.fake_discord import FakeDiscord

from zbot.config import SettingsError, load_settings
from zbot.core.validation import blocked_word

ROOT = Path(__file__).resolve().parent.parent
KEY = "s3cr3t-key-abcdefghij"


@pytest.mark.parametrize("env", [
    {"ZBOT_API_KEYS": "short"},
    {"ZBOT_API_KEYS": f"{KEY},tiny"},
    {"ZBOT_API_KEYS": f"tiny,{KEY}"},
    {"ZBOT_DISCORD_TOKEN": KEY},  # with another setting wrong: the line names that one only
], ids=["one-short", "short-second", "short-first", "token"])
def test_no_secret_appears_in_a_settings_error(settings, monkeypatch, env):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ZBOT_STEPS", "0")  # something wrong elsewhere, for the token case
    with pytest.raises(SettingsError) as raised:
        load_settings(_env_file=None)
    message = str(raised.value)
    for secret in [KEY, "short", "tiny"]:
        assert secret not in message
    assert message.startswith("bad setting ZBOT_")


def test_the_short_key_error_says_what_to_do_without_the_key(settings, monkeypatch):
    monkeypatch.setenv("ZBOT_API_KEYS", f"{KEY},tiny")
    with pytest.raises(SettingsError) as raised:
        load_settings(_env_file=None)
    assert str(raised.value) == ("bad setting ZBOT_API_KEYS: each API key must be at least 16 characters "
                                 "(e.g. `openssl rand -hex 24`)")


@pytest.mark.parametrize("prompt", [
    "lots of GORE",
    "lots of ｇｏｒｅ",  # full-width letters
    "lots of g\u200bo\u200dr\ufeffe",  # zero-width space, joiner, BOM between the letters
    "lots of g\u00adore",  # soft hyphen
    "lots of 𝐠𝐨𝐫𝐞",  # mathematical bold
    "lots of go\u0308re",  # a combining mark on a letter
    "lots of G\u034fORE",  # combining grapheme joiner
    "lots of gore\ufe0f",  # variation selector
])
def test_blocked_words_are_found_however_they_are_written(prompt):
    assert blocked_word(prompt, ["gore"]) == "gore"


@pytest.mark.parametrize("prompt", ["gorest forest", "a gory mess", "medieval weaponry"])
def test_blocked_words_are_still_whole_words(prompt):
    assert blocked_word(prompt, ["gore", "weapon"]) is None


def test_blocked_words_in_scripts_without_spaces_are_found_inside_text():
    assert blocked_word("一只血腥的狐狸", ["血腥"]) == "血腥"
    assert blocked_word("一只红狐狸", ["血腥"]) is None


async def test_switching_from_global_to_server_commands_leaves_each_command_registered_once(tmp_path, tiny_model):
    async with FakeDiscord() as fake:
        other = fake.add_guild("second server")
        async with running_bot(fake, bot_settings(tmp_path, tiny_model, guild_ids=[])):
            assert {c["name"] for c in fake.global_commands} >= {"draw", "Reroll"}
        async with running_bot(fake, bot_settings(tmp_path, tiny_model, guild_ids=[fake.guild_id, other])):
            assert fake.global_commands == []  # the earlier global registration is gone
            assert {c["name"] for c in fake.guild_commands[other]} >= {"draw", "Reroll"}
        async with running_bot(fake, bot_settings(tmp_path, tiny_model, guild_ids=[fake.guild_id])):
            names = [c["name"] for c in fake.registered_commands]
            assert fake.guild_commands[other] == []  # no longer listed: emptied
    assert sorted(names) == sorted(set(names))  # every command once, in the one server listed


def test_the_docker_build_context_leaves_out_secrets_and_data():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".env", ".venv", "*.sqlite3", "*.sqlite3-*", ".git"} <= ignored
