"""Bans end to end through the fake Discord: the Ban button on a report (after a restart too), the banned
member's one private line, /bans ban, unban and list, and who may use them."""

from __future__ import annotations

import pytest
from support.botkit import bot_settings, control, finished, running_bot

EPHEMERAL = 64


@pytest.fixture
def people(fake):
    """A moderator (Manage Server here), the member who draws, and another member who reports."""
    mod_role = fake.add_role("Mods", permissions=1 << 5)
    return dict(mod=fake.add_member(name="mod", roles=(mod_role,)), bob=fake.add_member(name="bob"),
                carol=fake.add_member(name="carol"))


def content(callback) -> str:
    return callback.data.get("content", "")


async def draw(fake, user_id: int, prompt: str = "a fox"):
    return await fake.slash("draw", {"prompt": prompt, "size": "small"}, user_id=user_id)


async def bans(fake, sub: str, options: dict | None = None, **who) -> str:
    return content(await (await fake.slash("bans", options or {}, subcommand=sub, **who)).wait_response())


async def test_ban_from_a_report_refuses_the_member_privately_across_restarts_until_unbanned(fake, tmp_path, tiny_model,
                                                                                           people):
    admins = fake.add_channel("zbot-reports")
    settings = bot_settings(tmp_path, tiny_model, report_channel_id=admins)
    bob, mod, carol = people["bob"], people["mod"], people["carol"]
    async with running_bot(fake, settings):
        image = await (await draw(fake, bob, "a rude fox")).wait_original(finished)
        opened = await fake.click(image, control(image, "report"), user_id=carol)
        await opened.wait_response()
        await (await fake.submit_modal(opened, {"zbot:report-note": "rude"})).wait_followups(1)
        report = await fake.wait_for(lambda f: next((m for m in f.bot_messages if m.channel_id == admins), None))

    async with running_bot(fake, settings):  # a restart: the report's buttons still work
        [member_click] = await (await fake.click(report, control(report, "ban-reported"), user_id=carol)).wait_followups(1)
        clicked = await fake.click(report, control(report, "ban-reported"), user_id=mod)
        [told] = await clicked.wait_followups(1)
        await fake.wait_for(lambda f: "banned from zbot by" in report.content)
        asked = await draw(fake, bob, "again")
        refused = await asked.wait_response()

    async with running_bot(fake, settings) as run:  # and another: the ban is in the database
        refused_after = await (await draw(fake, bob, "once more")).wait_response()
        listed = await bans(fake, "list", user_id=mod)
        lifted = await bans(fake, "unban", {"user": bob}, user_id=mod)
        drawn = await (await draw(fake, bob, "forgiven")).wait_original(finished, timeout=60)
        await run.settle()
        prompts = [r[0] for r in await run.core.store.query("SELECT prompt FROM generations ORDER BY id")]
    assert member_click.flags & EPHEMERAL and "Only managers of that server" in member_click.content
    assert told.flags & EPHEMERAL
    assert told.content == (f"<@{bob}> is banned from zbot in this server until it is lifted; "
                            "reason: \u2068report \\#1\u2069.")
    assert f"<@{bob}> banned from zbot by <@{mod}>." in report.content
    assert report.custom_ids == [control(report, "remove-reported")]  # the Ban button is used; Delete stays
    for answer in (refused, refused_after):  # one private line, and nothing drawn
        assert answer.data["flags"] & EPHEMERAL
        assert content(answer) == "You can't use zbot in this server (reason: \u2068report #1\u2069)."
    assert asked.original is None or not asked.original.attachments
    assert prompts == ["a rude fox", "forgiven"]
    # The reason as typed (markdown escaped, isolated from the text around it).
    assert f"<@{bob}> · in this server · until it is lifted · banned by <@{mod}> · \u2068report \\#1\u2069" in listed
    assert f"<@{mod}> banned <@{bob}> in this server" in listed
    assert lifted == f"<@{bob}> may use zbot in this server again." and "forgiven" in drawn.content


async def test_bans_command_for_managers_in_their_server_and_owners_everywhere(fake, tmp_path, tiny_model, people):
    other = fake.add_guild("another server", owner_id=fake.add_user("olga"))
    olga, elsewhere = fake.guilds[other].owner_id, fake.guilds[other].channel_ids[0]
    fake.user_locales[people["bob"]] = "zh-CN"
    settings = bot_settings(tmp_path, tiny_model, admin_ids=[fake.owner_id])
    bob, mod = people["bob"], people["mod"]
    async with running_bot(fake, settings):
        member = await bans(fake, "ban", {"user": mod, "reason": "no"}, user_id=people["carol"])
        everywhere = await bans(fake, "ban", {"user": bob, "reason": "x", "everywhere": True}, user_id=mod)
        foreign = await bans(fake, "ban", {"user": bob, "reason": "x"}, user_id=olga)  # manages another server
        owner = await bans(fake, "ban", {"user": fake.owner_id, "reason": "coup"}, user_id=mod)
        given = await bans(fake, "ban", {"user": bob, "reason": "flooding", "days": 2}, user_id=mod)
        chinese = content(await (await draw(fake, bob)).wait_response())
        theirs = await (await fake.slash("draw", {"prompt": "elsewhere", "size": "small"}, user_id=bob,
                                         guild_id=other, channel_id=elsewhere)).wait_original(finished, timeout=60)
        global_ban = await bans(fake, "ban", {"user": bob, "reason": "everywhere", "everywhere": True},
                                user_id=fake.owner_id)
        blocked_there = content(await (await fake.slash("draw", {"prompt": "x", "size": "small"}, user_id=bob,
                                                        guild_id=other, channel_id=elsewhere)).wait_response())
        listed_there = await bans(fake, "list", user_id=olga, guild_id=other, channel_id=elsewhere)
    assert member == "Only server managers (Manage Server) and the bot's owners can do that."
    assert everywhere == "Only the bot's owners can ban someone from zbot in every server."
    assert foreign == "Only server managers (Manage Server) and the bot's owners can do that."
    assert owner == "The bot's owners can't be banned."
    assert given.startswith(f"<@{bob}> is banned from zbot in this server until <t:") and "flooding" in given
    # In the member's language, with when it ends as Discord shows it to them.
    assert chinese.startswith("你不能在本服务器使用 zbot（原因：\u2068flooding\u2069）。 请<t:") and chinese.endswith(":R>再试。")
    assert "elsewhere" in theirs.content  # a server's ban stays in that server
    assert given != global_ban and "in every server until it is lifted" in global_ban
    # The reason is the admin's text, never taken for a word to translate ("everywhere" is one).
    assert blocked_there == "你不能使用 zbot（原因：\u2068everywhere\u2069）。"
    assert f"<@{bob}> · in every server" in listed_there and "flooding" not in listed_there
