"""Server admins through the fake Discord: /settings per server (view, set, reset, history), checked by
the bot, within the owner's ceilings, kept across restarts; /queue lists and cancels; the limits count
per server."""

from __future__ import annotations

import asyncio

import pytest
from support.botkit import bot_settings, finished, running_bot
from support.renderers import FakeRenderer

from zbot.app import open_core
from zbot.config import parse_windows
from zbot.core.jobs import DrawRequest, RateLimited


@pytest.fixture
def admins(fake):
    """A moderator (Manage Server in the first server), a plain member, and a second server with its own
    owner (who manages that one only)."""
    mod_role = fake.add_role("Mods", permissions=1 << 5)
    mod = fake.add_member(name="mod", roles=(mod_role,))
    other = fake.add_guild("another server", owner_id=fake.add_user("olga"))
    return dict(mod=mod, other=other, olga=fake.guilds[other].owner_id,
                other_channel=fake.guilds[other].channel_ids[0])


def content(callback) -> str:
    return callback.data.get("content", "")


async def settings_cmd(fake, sub: str, options: dict | None = None, **who) -> str:
    return content(await (await fake.slash("settings", options or {}, subcommand=sub, **who)).wait_response())


async def draw_answer(fake, prompt: str, **who) -> str:
    interaction = await fake.slash("draw", {"prompt": prompt, "size": "small"}, **who)
    callback = await interaction.wait_response()
    if "limit" in content(callback):
        return content(callback)
    await interaction.wait_original(finished, timeout=60)
    return "drawn"


async def test_a_manager_sets_rate_limits_in_their_server_only_and_reset_restores_them(fake, tmp_path, tiny_model,
                                                                                      admins):
    settings = bot_settings(tmp_path, tiny_model, rate_limits="100/minute")
    async with running_bot(fake, settings):
        said = await settings_cmd(fake, "set", {"name": "rate_limits", "value": "1/minute"}, user_id=admins["mod"])
        ours = [await draw_answer(fake, "one"), await draw_answer(fake, "two")]
        elsewhere = [await draw_answer(fake, f"theirs {n}", user_id=admins["olga"], guild_id=admins["other"],
                                       channel_id=admins["other_channel"]) for n in range(2)]
        view = await settings_cmd(fake, "view", user_id=admins["mod"])
        reset = await settings_cmd(fake, "reset", {"name": "rate_limits"}, user_id=admins["mod"])
        again = await draw_answer(fake, "three")
        history = await settings_cmd(fake, "history", user_id=admins["mod"])
    assert "`rate_limits` is now `1/minute` in this server (it was the default)" in said
    assert ours[0] == "drawn" and "limit of 1 image per minute" in ours[1]
    assert elsewhere == ["drawn", "drawn"]  # the other server keeps the default
    assert "`rate_limits` = `1/minute` (server)" in view and "`max_count` = `4` (default)" in view
    assert "back to the default here: `100/minute`" in reset and again == "drawn"
    lines = history.splitlines()
    assert f"<@{admins['mod']}>: `rate_limits` `1/minute` → default" in lines[1]  # newest first
    assert f"<@{admins['mod']}>: `rate_limits` default → `1/minute`" in lines[2]


async def test_members_are_refused_and_bad_values_get_the_settings_own_sentence(fake, tmp_path, tiny_model, admins):
    settings = bot_settings(tmp_path, tiny_model, rate_limits="10/minute", admin_ids=[fake.owner_id])
    async with running_bot(fake, settings) as run:
        member = await settings_cmd(fake, "set", {"name": "rate_limits", "value": "1/minute"})
        member_view = await settings_cmd(fake, "view")
        bad = await settings_cmd(fake, "set", {"name": "rate_limits", "value": "5/fortnight"}, user_id=admins["mod"])
        unknown = await settings_cmd(fake, "set", {"name": "model", "value": "x"}, user_id=admins["mod"])
        too_many = await settings_cmd(fake, "set", {"name": "default_count", "value": "9"}, user_id=admins["mod"])
        size = await settings_cmd(fake, "set", {"name": "default_size", "value": "giant"}, user_id=admins["mod"])
        above = await settings_cmd(fake, "set", {"name": "rate_limits", "value": "50/minute"}, user_id=admins["mod"])
        # Olga manages her server, not this one.
        foreign = await settings_cmd(fake, "set", {"name": "rate_limits", "value": "1/minute"},
                                     user_id=admins["olga"])
        owner = await settings_cmd(fake, "set", {"name": "rate_limits", "value": "50/minute"},
                                   user_id=fake.owner_id)
        names = await fake.autocomplete("settings", {"name": "rate"}, focused="name", subcommand="set",
                                        user_id=admins["mod"])
        sizes = await fake.autocomplete("settings", {"name": "default_size", "value": ""}, focused="value",
                                        subcommand="set", user_id=admins["mod"])
        rows = await run.core.store.query("SELECT count(*) FROM settings_audit")
    for refused in (member, member_view, foreign):
        assert "Only server managers (Manage Server) and the bot's owners can do that." in refused
    assert "rate_limits: '5/fortnight' is not a rate like 5/minute or 100/day" in bad
    assert "There is no server setting 'model'" in unknown
    assert "default_count: Input should be less than or equal to 4" in too_many
    assert "Unknown size 'giant'; choose one of: square, small." in size
    assert "at most 10/minute (the bot owner's ceiling, ZBOT_MAX_SERVER_RATE_LIMITS)" in above
    assert "is now `50/minute`" in owner  # a bot owner is not held to the ceiling
    assert [c["value"] for c in names.choices] == ["rate_limits", "role_rate_limits"]
    assert [c["value"] for c in sizes.choices] == ["square", "small"]
    assert rows[0][0] == 1  # only the accepted change is recorded


async def test_server_settings_survive_a_restart_and_apply_to_counts_and_sizes(fake, tmp_path, tiny_model, admins):
    settings = bot_settings(tmp_path, tiny_model)
    async with running_bot(fake, settings):
        await settings_cmd(fake, "set", {"name": "default_size", "value": "small"}, user_id=admins["mod"])
        await settings_cmd(fake, "set", {"name": "max_count", "value": "2"}, user_id=admins["mod"])
    async with running_bot(fake, settings) as run:
        view = await settings_cmd(fake, "view", user_id=admins["mod"])
        image = await (await fake.slash("draw", {"prompt": "a kite"})).wait_original(finished, timeout=60)
        refused = content(await (await fake.slash("draw", {"prompt": "kites", "count": 3})).wait_response())
        await run.settle()
        [row] = await run.core.store.query("SELECT width, height FROM generations WHERE status = 'posted'")
    assert "`default_size` = `small` (server)" in view and "`max_count` = `2` (server)" in view
    assert tuple(row) == (64, 64) and "64×64" in image.content  # the server's default size
    assert "Ask for 1 to 2 images at a time." in refused


async def test_queue_lists_this_servers_jobs_and_an_admin_cancels_one(fake, tmp_path, tiny_model, admins):
    settings = bot_settings(tmp_path, tiny_model)
    async with running_bot(fake, settings) as run:
        run.engine.gate.clear()  # the first job holds the GPU
        first = await fake.slash("draw", {"prompt": "first", "size": "small"})
        await first.wait_response()
        await asyncio.to_thread(run.engine.started.wait, 10)
        second = await fake.slash("draw", {"prompt": "second in line", "size": "small"})
        await second.wait_original(lambda m: "Queued" in m.content)
        member = content(await (await fake.slash("queue")).wait_response())
        listing = await (await fake.slash("queue", user_id=admins["mod"])).wait_original()
        elsewhere = content(await (await fake.slash("queue", user_id=admins["olga"], guild_id=admins["other"],
                                                    channel_id=admins["other_channel"])).wait_response())
        [menu] = listing.custom_ids
        picked = await fake.select(listing, menu, ["2"], user_id=admins["mod"])
        told = content(await picked.wait_response())
        cancelled = await second.wait_original(lambda m: "admin" in m.content)
        run.engine.gate.set()
        await first.wait_original(finished, timeout=60)
        await run.settle()
        statuses = [r[0] for r in await run.core.store.query("SELECT status FROM generations ORDER BY id")]
    assert "Only server managers" in member
    assert "drawing" in listing.content and "#1" in listing.content and "second in line" in listing.content
    assert "Nothing is waiting" in elsewhere  # another server sees only its own queue
    assert f"Cancelled the request of <@{fake.user_id}>" in told
    assert "An admin took this request out of the queue" in cancelled.content
    assert statuses == ["posted", "cancelled"]


async def test_limits_count_per_server_unless_the_scope_is_global(settings):
    settings = settings.model_copy(update={"rate_limits": parse_windows("1/minute")})
    async with open_core(settings, [FakeRenderer()]) as core:
        await (await core.service.submit(DrawRequest(user_id=1, prompt="a", guild_id=10))).result()
        await (await core.service.submit(DrawRequest(user_id=1, prompt="b", guild_id=20))).result()  # another server
        with pytest.raises(RateLimited):
            await core.service.submit(DrawRequest(user_id=1, prompt="c", guild_id=10))
        core.service.settings = settings.model_copy(update={"limits_scope": "global"})
        with pytest.raises(RateLimited):
            await core.service.submit(DrawRequest(user_id=1, prompt="d", guild_id=30))
        await core.service.drain()


async def test_managers_stay_within_the_owners_channels_spoilers_and_tiers(settings):
    from zbot.core.server_settings import ServerSettings

    base = settings.model_copy(update={"channel_ids": [1, 2], "safety_nsfw_channels": "spoiler",
                                       "rate_limits": parse_windows("5/minute")})
    async with open_core(base, [FakeRenderer()]) as core:
        servers = ServerSettings(base, core.store)
        refusals = []
        for name, value in [("channel_ids", "1,3"), ("channel_ids", ""), ("safety_nsfw_channels", "post"),
                            ("role_rate_limits", '{"7": [{"limit": 1000, "seconds": -1, "text": "5/minute"}]}'),
                            ("role_rate_limits", '{"7": "100/second"}'), ("rate_limits", "")]:
            with pytest.raises(Exception) as refused:
                await servers.set(9, name, value, 42, owner=False)
            refusals.append(str(refused.value))
        await servers.set(9, "channel_ids", "2", 42, owner=False)  # a subset is fine
        await servers.set(9, "role_rate_limits", '{"7": "3/minute"}', 42, owner=False)
        assert servers.effective(9).channel_ids == [2]
        await servers.set(9, "default_count", "2", 42, owner=False)
        await core.store.write("UPDATE server_settings SET value = '1' WHERE name = 'max_count' AND guild_id = 9")
        await core.store.write("INSERT INTO server_settings (guild_id, name, value, updated_at, updated_by) "
                               "VALUES (9, 'max_count', '1', 0, 0)")  # made elsewhere: now inconsistent
        await servers.load()
        effective = servers.effective(9)
    assert "choose among those only" in refusals[0] and "choose among those only" in refusals[1]
    assert "can't show them plainly" in refusals[2]
    assert "each tier is text" in refusals[3] and "the bot owner's ceiling" in refusals[4]
    assert "at most 5/minute" in refusals[5]  # no limit at all is past any ceiling
    assert (effective.max_count, effective.default_count) == (1, 1)  # the default that no longer fits is dropped
