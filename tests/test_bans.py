"""Bans in the core (zbot.core.bans, Service): who may ban where, the refusal at admission, expiry with nothing
running, the audit, a ban written by another process (`zbot ban`) while the bot runs, and the command line."""

from __future__ import annotations

import asyncio

import pytest
from support.renderers import FakeRenderer
from test_cli import zbot

from zbot.app import open_core
from zbot.core.bans import Actor, Banned, Bans
from zbot.core.jobs import BadInput, DrawRequest
from zbot.core.store import Store

GUILD, OTHER_GUILD = 1001, 1002
MEMBER, MOD, OWNER = 7, 8, 9
MOD_HERE = Actor(MOD, manages=GUILD)


def asks(user_id: int = MEMBER, guild_id: int | None = GUILD, source: str = "discord") -> DrawRequest:
    return DrawRequest(user_id=user_id, prompt="a fox", guild_id=guild_id, channel_id=5, source=source)


async def test_a_banned_member_is_refused_in_that_server_only_nothing_is_drawn_and_a_restart_keeps_it(settings):
    renderer = FakeRenderer()
    async with open_core(settings, [renderer]) as core:
        ban = await core.service.ban(MOD_HERE, MEMBER, GUILD, "spamming   the\nchannel", days=3)
        with pytest.raises(Banned) as refused:
            await core.service.submit(asks())
        elsewhere = await (await core.service.submit(asks(guild_id=OTHER_GUILD))).result()
        others = await (await core.service.submit(asks(user_id=MOD))).result()
        # An HTTP key's user id is a hash of the key, not a Discord user: bans don't reach it.
        http = await (await core.service.submit(asks(source="http"))).result()
        await core.service.drain()
        rows = await core.store.query("SELECT user_id, guild_id, source FROM generations ORDER BY id")
        counted = [tuple(r) for r in await core.store.query("SELECT user_id, guild_id, reason, count FROM refusals")]
    assert refused.value.sentence().startswith("You can't use zbot in this server (reason: \u2068spamming the channel\u2069).")
    assert refused.value.retry_at.timestamp() == pytest.approx(ban.expires_at) and refused.value.kind == "banned"
    assert [tuple(r) for r in rows] == [(MEMBER, OTHER_GUILD, "discord"), (MOD, GUILD, "discord"),
                                        (MEMBER, GUILD, "http")]  # nothing was queued for the banned request
    assert len(renderer.ran) == 3 and elsewhere and others and http
    assert counted == [(MEMBER, GUILD, "banned", 1)]  # counted like any refusal, for /stats

    async with open_core(settings, [FakeRenderer()]) as core:  # a restart
        with pytest.raises(Banned):
            await core.service.submit(asks())
        lifted = await core.service.unban(MOD_HERE, MEMBER, GUILD)
        drawn = await (await core.service.submit(asks())).result()
        bans, events = await core.service.ban_list(GUILD)
    assert lifted.reason == "spamming the channel" and drawn.job_id and bans == []
    assert [(e.action, e.actor_id, e.user_id) for e in events] == [("unban", MOD, MEMBER), ("ban", MOD, MEMBER)]


async def test_an_expired_ban_stops_applying_with_nothing_run_and_a_ban_everywhere_wins(store):
    now = [1_000_000.0]
    bans = Bans(store, owners=[OWNER], clock=lambda: now[0])
    await bans.ban(MOD_HERE, MEMBER, GUILD, "cool off", days=1)
    await bans.ban(Actor(OWNER, owner=True), MEMBER, None, "everywhere", days=2)
    with pytest.raises(Banned, match="^You can't use zbot \\(reason: \u2068everywhere\u2069\\)\\.$"):
        await bans.check(MEMBER, GUILD)
    now[0] += 86400 + 1
    with pytest.raises(Banned, match="everywhere"):  # the server's ended; the owner's stands
        await bans.check(MEMBER, OTHER_GUILD)
    now[0] += 86400
    await bans.check(MEMBER, GUILD)  # both over: no job had to lift them
    assert await bans.current(GUILD) == [] and len(await bans.current()) == 0
    with pytest.raises(BadInput, match="isn't banned"):
        await bans.unban(MOD_HERE, MEMBER, GUILD)
    # Expired, a ban may be given again in one click (not "again" = only where none stands).
    renewed = await bans.ban(MOD_HERE, MEMBER, GUILD, "report #3", again=False)
    with pytest.raises(BadInput, match="banned from zbot there already"):
        await bans.ban(MOD_HERE, MEMBER, GUILD, "report #4", again=False)
    assert renewed.expires_at is None and (await bans.standing(MEMBER, GUILD)).reason == "report #3"


async def test_who_may_ban_where(store):
    bans = Bans(store, owners=[OWNER])
    refusals = []
    for actor, user, guild, days in [(Actor(MOD, manages=OTHER_GUILD), MEMBER, GUILD, None),  # not their server
                                     (Actor(MEMBER), MOD, GUILD, None),  # a member
                                     (MOD_HERE, MEMBER, None, None),  # everywhere: owners only
                                     (MOD_HERE, OWNER, GUILD, None),  # owners can't be banned
                                     (MOD_HERE, MEMBER, GUILD, 0), (MOD_HERE, MEMBER, GUILD, 3651)]:
        with pytest.raises(BadInput) as refused:
            await bans.ban(actor, user, guild, "x", days)
        refusals.append(refused.value.message)
    assert refusals[0] == refusals[1] == ("Only managers of that server (Manage Server) and the bot's owners can "
                                          "ban or unban there.")
    assert "in every server" in refusals[2] and "owners can't be banned" in refusals[3]
    assert refusals[4] == refusals[5] and "1 to 3650 days" in refusals[4]
    assert await store.query("SELECT * FROM bans") == [] and await store.query("SELECT * FROM bans_audit") == []
    await bans.ban(Actor(OWNER, owner=True), MEMBER, OTHER_GUILD, "owner anywhere")
    with pytest.raises(BadInput):  # nor can a manager lift a ban in another server
        await bans.unban(MOD_HERE, MEMBER, OTHER_GUILD)
    await bans.check(OWNER, GUILD)


async def test_a_ban_written_by_another_process_applies_to_the_running_bot_at_once(settings):
    async with open_core(settings, [FakeRenderer()]) as core:
        await (await core.service.submit(asks())).result()
        other = await Store.open(settings.database)  # `zbot ban` on the same file, while the bot runs
        try:
            await Bans(other).ban(Actor(0, owner=True), MEMBER, None, "from the shell")
        finally:
            await other.close()
        with pytest.raises(Banned, match="from the shell"):
            await core.service.submit(asks(guild_id=OTHER_GUILD))


async def test_two_admins_banning_from_the_same_report_at_once_give_one_ban(settings):
    """Two processes (or two clicks) on one database: the one-click ban is a single conditional upsert."""
    stores = [await Store.open(settings.database) for _ in range(2)]
    try:
        results = await asyncio.gather(*(Bans(store).ban(Actor(MOD + n, manages=GUILD), MEMBER, GUILD, "report #1",
                                                         again=False) for n, store in enumerate(stores)),
                                       return_exceptions=True)
        audit = await stores[0].query("SELECT action FROM bans_audit")
    finally:
        for store in stores:
            await store.close()
    assert sorted(type(r).__name__ for r in results) == ["BadInput", "Ban"] and len(audit) == 1


def test_ban_unban_and_list_from_the_command_line(tmp_path):
    env = dict(ZBOT_SAFETY="off", ZBOT_ADMIN_IDS=str(OWNER))
    banned = zbot("ban", str(MEMBER), "--reason", "spam", "--days", "2", cwd=tmp_path, **env)
    assert banned.returncode == 0, banned.stderr
    assert f"user {MEMBER} is banned in every server until 20" in banned.stdout
    zbot("ban", str(MOD), "--guild", str(GUILD), cwd=tmp_path, **env)
    listed = zbot("bans", cwd=tmp_path, **env).stdout
    assert f"user {MEMBER}  every server  until 20" in listed and "by the command line  spam" in listed
    assert f"user {MOD}  server {GUILD}  until lifted" in listed and f"ban user {MOD} in server {GUILD}" in listed
    owner = zbot("ban", str(OWNER), cwd=tmp_path, **env)
    assert owner.returncode == 1 and owner.stderr == "zbot: The bot's owners can't be banned.\n"
    assert zbot("unban", str(MEMBER), cwd=tmp_path, **env).returncode == 0
    again = zbot("unban", str(MEMBER), cwd=tmp_path, **env)
    assert again.returncode == 1 and "isn't banned" in again.stderr
    left = zbot("bans", "--guild", str(OTHER_GUILD), cwd=tmp_path, **env).stdout
    assert left.startswith(f"no one is banned in server {OTHER_GUILD}") and f"unban user {MEMBER}" in left
