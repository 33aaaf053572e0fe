"""Self-test of the fake Discord: a tiny discord.py bot, defined here, runs against it.

It also pins down discord.py 2.7 behaviour the real bot relies on:
- follow-ups, @original edits and callbacks go through the webhook adapter, which retries
  every 5xx (sleeping 1, 3, 5, 7, 9 s); the bot-token client retries only 500/502/504/524.
  Both retry a 429 after ``retry_after`` if the response has a ``Via`` header.
- a DynamicItem click is routed by matching custom_id against the registered templates and
  needs the clicked message (with its components) in the payload; no stored view is needed,
  so such buttons work after a restart.
- a follow-up sent while a deferred response still shows "thinking..." becomes that message.
- an expired interaction token raises discord.HTTPException(status=401, code=50027).
- a connection closed without an answer raises aiohttp.ServerDisconnectedError out of both
  clients (they retry only errno 54/10054 resets, i.e. macOS/Windows); aiohttp itself retries an
  idempotent request (GET, PUT, DELETE) once, never a POST or PATCH.
"""

from __future__ import annotations

import asyncio
import io
import re
import struct
import time

import aiohttp
import discord
import pytest
import pytest_asyncio
from discord import app_commands
from support.fake_discord import (
    DEFERRED_CHANNEL_MESSAGE,
    DROPPED,
    DiscordLoggedError,
    FakeDiscord,
    fast_discord_sleeps,
    point_discord_at,
)

pytestmark = pytest.mark.asyncio


def fake_png(size: int = 3_000_000, width: int = 1024, height: int = 1024) -> bytes:
    """A PNG signature and IHDR (so the fake reports width/height), zero-padded to ``size``."""
    ihdr = b"IHDR" + struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    head = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + ihdr + b"\0\0\0\0"
    return head + bytes(size - len(head))


class Reroll(discord.ui.DynamicItem[discord.ui.Button], template=r"zbot:reroll:(?P<id>[0-9]+)"):
    def __init__(self, job_id: int) -> None:
        super().__init__(discord.ui.Button(label="Reroll", custom_id=f"zbot:reroll:{job_id}"))
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str]
    ) -> Reroll:
        return cls(int(match["id"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        interaction.client.events.append(("reroll", self.job_id, interaction.user.id))
        await interaction.response.send_message(f"rerolling {self.job_id}", ephemeral=True)


class PromptModal(discord.ui.Modal, title="Edit prompt"):
    prompt = discord.ui.TextInput(label="Prompt", custom_id="prompt")

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"new prompt: {self.prompt.value}")


STYLES = ("anime", "photo")


class StyleView(discord.ui.View):
    """A plain (non-dynamic) view: discord.py finds it by the id of the message it is on."""

    @discord.ui.select(custom_id="zbot:style", options=[discord.SelectOption(label=s) for s in STYLES])
    async def pick(self, interaction: discord.Interaction, select: discord.ui.Select) -> None:
        await interaction.response.edit_message(content=f"picked {select.values[0]}", view=None)


class TinyBot(discord.Client):
    """Just enough bot to drive every path of the fake."""

    def __init__(self, guild_id: int | None) -> None:
        super().__init__(intents=discord.Intents.default(), guild_ready_timeout=0)
        self.tree = app_commands.CommandTree(self)
        self.events: list[tuple] = []
        self.socket_events: list[str] = []
        self.seen: list[discord.Interaction] = []
        self.gate: asyncio.Event | None = None  # when set, /draw waits on it before its follow-up
        self.sync_guild = discord.Object(guild_id) if guild_id else None
        self._add_commands()

    async def setup_hook(self) -> None:
        self.add_dynamic_items(Reroll)
        await self.tree.sync(guild=self.sync_guild)

    async def on_socket_event_type(self, event: str) -> None:
        self.socket_events.append(event)

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        self.seen.append(interaction)

    def _add_commands(self) -> None:
        guild = self.sync_guild

        @self.tree.command(guild=guild, description="Is the bot alive?")
        async def ping(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("pong", ephemeral=True)

        @self.tree.command(guild=guild, description="Draw an image")
        @app_commands.describe(prompt="What to draw")
        async def draw(
            interaction: discord.Interaction, prompt: str, steps: app_commands.Range[int, 1, 50] = 8
        ) -> None:
            await interaction.response.defer(thinking=True)
            await interaction.edit_original_response(content=f"drawing {prompt!r}…")
            if self.gate is not None:
                await self.gate.wait()
            view = discord.ui.View(timeout=None)
            view.add_item(Reroll(42))
            try:
                msg = await interaction.followup.send(
                    f"done: {prompt} ({steps} steps)",
                    file=discord.File(io.BytesIO(fake_png()), "zbot.png"),
                    view=view,
                    allowed_mentions=discord.AllowedMentions.none(),
                    wait=True,
                )
            except discord.HTTPException as exc:
                self.events.append(("followup failed", exc))
                return
            self.events.append(("drew", msg.id, msg.attachments[0].size))

        @self.tree.command(guild=guild, description="Answer privately")
        async def secret(interaction: discord.Interaction) -> None:
            await interaction.response.defer(ephemeral=True, thinking=True)
            await interaction.followup.send("only you can see this", ephemeral=False)

        @self.tree.context_menu(guild=guild, name="Quota")
        async def quota(interaction: discord.Interaction, member: discord.Member) -> None:
            await interaction.response.send_message(f"quota of {member.name}", ephemeral=True)

        @self.tree.command(guild=guild, description="Always fails")
        async def broken(interaction: discord.Interaction) -> None:
            raise RuntimeError("boom")

        @self.tree.command(guild=guild, description="Open a modal")
        async def edit(interaction: discord.Interaction) -> None:
            await interaction.response.send_modal(PromptModal())

        @self.tree.command(guild=guild, description="Pick a style")
        async def style(interaction: discord.Interaction, name: str) -> None:
            sample = discord.File(io.BytesIO(fake_png(100, 8, 8)), "style.png")
            await interaction.response.send_message(f"style {name}", file=sample, view=StyleView())

        @style.autocomplete("name")
        async def style_names(interaction: discord.Interaction, current: str) -> list[app_commands.Choice]:
            names = ["anime", "photo", "pixel"]
            return [app_commands.Choice(name=n, value=n) for n in names if n.startswith(current)]

        @self.tree.context_menu(guild=guild, name="Image size")
        async def image_size(interaction: discord.Interaction, message: discord.Message) -> None:
            data = await message.attachments[0].read()
            await interaction.response.send_message(f"{len(data)} bytes", ephemeral=True)


@pytest_asyncio.fixture
async def fake():
    async with FakeDiscord() as fake:
        yield fake


@pytest_asyncio.fixture
async def bot(fake: FakeDiscord):
    async with fake.running(TinyBot(fake.guild_id)) as client:
        yield client


async def test_draw_defer_edit_followup_and_dynamic_button(fake: FakeDiscord, bot: TinyBot) -> None:
    names = sorted(c["name"] for c in fake.registered_commands)
    assert names == ["Image size", "Quota", "broken", "draw", "edit", "ping", "secret", "style"]

    ix = await fake.slash("draw", {"prompt": "a cat <@123>"})
    assert (await ix.wait_response()).type == DEFERRED_CHANNEL_MESSAGE
    [result] = await ix.wait_followups(1)
    original = ix.original
    assert original is not None and not original.loading
    assert original.content == "drawing 'a cat <@123>'…"
    assert original.edits[0].before["content"] == ""  # the "thinking..." message
    assert result.content == "done: a cat <@123> (8 steps)"
    assert result.pings == set()  # AllowedMentions.none()
    [att] = result.attachments
    assert (att.filename, att.size, att.content_type) == ("zbot.png", 3_000_000, "image/png")
    assert att.to_payload()["width"] == 1024
    assert result.custom_ids == ["zbot:reroll:42"]
    await fake.wait_for(lambda f: ("drew", result.id, 3_000_000) in bot.events)

    click = await fake.click(result, "zbot:reroll:42")
    reply = await click.wait_original()
    assert reply.content == "rerolling 42" and reply.ephemeral
    assert ("reroll", 42, fake.user_id) in bot.events
    assert fake.unknown_routes == []


async def test_dynamic_button_still_works_after_restart(fake: FakeDiscord) -> None:
    async with fake.running(TinyBot(fake.guild_id)):
        [msg] = await (await fake.slash("draw", {"prompt": "x"})).wait_followups(1)
    # A new process: nothing but add_dynamic_items() knows about the old message.
    async with fake.running(TinyBot(fake.guild_id)) as bot:
        reply = await (await fake.click(msg, "zbot:reroll:42")).wait_original()
        assert reply.content == "rerolling 42"
        assert bot.events == [("reroll", 42, fake.user_id)]
    assert fake.gateway.identify_count == 2


async def test_global_sync_and_option_validation(fake: FakeDiscord) -> None:
    async with fake.running(TinyBot(None)):
        assert all("guild_id" not in c for c in fake.registered_commands)
        draw = fake.find_command("draw")
        assert [(o["name"], o["type"], o.get("required", False)) for o in draw["options"]] == [
            ("prompt", 3, True),
            ("steps", 4, False),
        ]
        with pytest.raises(ValueError, match="outside"):
            await fake.slash("draw", {"prompt": "x", "steps": 99})
        with pytest.raises(ValueError, match="required"):
            await fake.slash("draw", {})
        [msg] = await (await fake.slash("draw", {"prompt": "x", "steps": 3})).wait_followups(1)
        assert msg.content == "done: x (3 steps)"


async def test_followup_500_is_retried_by_discord_py(fake: FakeDiscord, bot: TinyBot) -> None:
    # discord.py's webhook adapter (followups, @original edits, interaction callbacks) retries
    # every 5xx up to 5 times, sleeping 1, 3, 5, 7, 9 s; fast_discord_sleeps() skips the wait.
    fault = fake.fail_next("POST", r"^/webhooks/\d+/[^/]+$", 500)
    with fast_discord_sleeps():
        ix = await fake.slash("draw", {"prompt": "retry"})
        [msg] = await ix.wait_followups(1)
    statuses = [r.status for r in fake.request_log if r.method == "POST" and r.path.startswith("/webhooks/")]
    assert statuses == [500, 200] and fault.hits == 1
    assert msg.attachments[0].size == 3_000_000  # the file was re-sent whole


async def test_channel_send_retry_rules(fake: FakeDiscord, bot: TinyBot) -> None:
    # The bot-token client (discord.http) retries only 500/502/504/524; 503 raises at once.
    channel = bot.get_channel(fake.channel_id)
    with fast_discord_sleeps():
        fake.fail_next("POST", r"/channels/\d+/messages$", 502)
        await channel.send("after a 502")
        fake.fail_next("POST", r"/channels/\d+/messages$", 503)
        with pytest.raises(discord.DiscordServerError):
            await channel.send("after a 503")
        # 429 is retried after retry_after, but only if the response has a Via header
        # (without it discord.py assumes a Cloudflare ban and raises).
        fake.fail_next("POST", r"/channels/\d+/messages$", 429, retry_after=0.01)
        await channel.send("after a 429")
        fake.fail_next("POST", r"/channels/\d+/messages$", 429, headers={"Via": ""})
        with pytest.raises(discord.HTTPException) as info:
            await channel.send("banned")
        assert info.value.status == 429
    sent = [m.content for m in fake.bot_messages if m.source == "channel"]
    assert sent == ["after a 502", "after a 429"]


async def test_expired_token_gives_50027(fake: FakeDiscord, bot: TinyBot) -> None:
    bot.gate = asyncio.Event()
    ix = await fake.slash("draw", {"prompt": "slow"})
    await ix.wait_original(lambda m: not m.loading)
    fake.expire_token(ix)
    bot.gate.set()
    failure = await fake.wait_for(lambda f: [e[1] for e in bot.events if e[0] == "followup failed"])
    failure = failure[0]
    assert isinstance(failure, discord.HTTPException)
    assert (failure.status, failure.code) == (401, 50027)


def server_log_problems(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Warnings and errors the fake's aiohttp server logged (e.g. "Error handling request")."""
    return [r.getMessage() for r in caplog.records if r.name.startswith("aiohttp") and r.levelno >= 30]


async def test_dropped_edit_is_not_applied(
    fake: FakeDiscord, bot: TinyBot, caplog: pytest.LogCaptureFixture
) -> None:
    ix = await fake.slash("ping")
    original = await ix.wait_original()
    [interaction] = bot.seen
    fault = fake.drop_next("PATCH", r"/messages/@original$")
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await interaction.edit_original_response(content="lost")
    assert original.content == "pong" and original.edits == []
    assert fault.hits == 1 and fake.faults == []
    # The server goes on serving: the next edit (a new connection) gets through.
    await interaction.edit_original_response(content="edited")
    assert original.content == "edited" and len(original.edits) == 1
    patches = [r.status for r in fake.request_log if r.method == "PATCH"]
    assert patches == [DROPPED, 200]
    assert fake.internal_errors == [] and server_log_problems(caplog) == []


async def test_dropped_answer_after_processing(
    fake: FakeDiscord, bot: TinyBot, caplog: pytest.LogCaptureFixture
) -> None:
    # Discord created the message but the answer was lost: the bot sees an error for a message
    # that exists (a naive retry would post it twice).
    channel = bot.get_channel(fake.channel_id)
    fault = fake.drop_next("POST", r"^/channels/\d+/messages$", after_processing=True)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await channel.send("sent, answer lost")
    [msg] = [m for m in fake.bot_messages if m.source == "channel"]
    assert msg.content == "sent, answer lost" and fault.hits == 1
    await channel.send("next")
    assert [m.content for m in fake.bot_messages] == ["sent, answer lost", "next"]
    posts = [r.status for r in fake.request_log if r.method == "POST" and r.path.startswith("/channels/")]
    assert posts == [DROPPED, 200]
    assert fake.internal_errors == [] and server_log_problems(caplog) == []


async def test_dropped_get_is_retried_once_by_aiohttp(fake: FakeDiscord, bot: TinyBot) -> None:
    route = rf"^/channels/{fake.channel_id}$"
    fake.drop_next("GET", route)
    assert (await bot.fetch_channel(fake.channel_id)).name == "general"
    fault = fake.drop_next("GET", route, times=2)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await bot.fetch_channel(fake.channel_id)
    gets = [r.status for r in fake.request_log if r.method == "GET" and re.search(route, r.path)]
    assert gets == [DROPPED, 200, DROPPED, DROPPED] and fault.hits == 2


async def test_bad_token_is_a_login_failure(fake: FakeDiscord) -> None:
    client = TinyBot(fake.guild_id)
    with point_discord_at(fake):
        with pytest.raises(discord.LoginFailure):
            await client.login("not-the-token")
        await client.close()
    assert [r.status for r in fake.request_log] == [401]


async def test_handler_exception_fails_fast(fake: FakeDiscord, bot: TinyBot) -> None:
    ix = await fake.slash("broken")
    started = time.monotonic()
    with pytest.raises(DiscordLoggedError, match="boom|broken"):
        await ix.wait_response(timeout=5)
    assert time.monotonic() - started < 1
    assert fake.take_logged_errors()  # expected here; running() would fail the test otherwise


async def test_late_response_is_unknown_interaction(fake: FakeDiscord, bot: TinyBot) -> None:
    fake.callback_deadline = 0.0  # Discord allows 3 s
    ix = await fake.slash("ping")
    with pytest.raises(DiscordLoggedError, match="10062"):
        await ix.wait_response(timeout=2)
    assert fake.take_logged_errors() and ix.callbacks == []


async def test_followup_resolves_ephemeral_defer(fake: FakeDiscord, bot: TinyBot) -> None:
    ix = await fake.slash("secret")
    [msg] = await ix.wait_followups(1)
    # The follow-up replaced the "thinking..." message and kept the defer's ephemeral flag.
    assert msg is ix.original and msg.ephemeral and not msg.loading
    assert msg.content == "only you can see this"


async def test_roles_permissions_and_user_command(fake: FakeDiscord) -> None:
    artist = fake.add_role("artist")
    admin = fake.add_role("admin", discord.Permissions(administrator=True))
    bob = fake.add_member(name="bob", roles=(admin,))
    async with fake.running(TinyBot(fake.guild_id)) as bot:
        await (await fake.slash("ping", roles=[artist])).wait_response()
        await (await fake.slash("ping", user_id=bob)).wait_response()
        quota = await fake.user_command("Quota", bob)
        assert (await quota.wait_original()).content == "quota of bob"
    alice, as_bob, _ = bot.seen
    assert [r.name for r in alice.user.roles] == ["@everyone", "artist"]
    assert alice.permissions.send_messages and not alice.permissions.administrator
    assert [r.name for r in as_bob.user.roles] == ["@everyone", "admin"]
    assert as_bob.permissions.administrator and as_bob.app_permissions.attach_files


async def test_gateway_resume_replays_missed_events(fake: FakeDiscord, bot: TinyBot) -> None:
    await fake.drop_gateway(resumable=True)
    await fake.gateway.dispatch("FAKE_MISSED", {})  # while the client is away
    await fake.wait_connected()
    await fake.wait_for(lambda f: "RESUMED" in bot.socket_events)
    assert bot.socket_events[-2:] == ["FAKE_MISSED", "RESUMED"]
    assert (fake.gateway.identify_count, fake.gateway.resume_count) == (1, 1)
    assert (await (await fake.slash("ping")).wait_original()).content == "pong"


async def test_gateway_not_resumable_reidentifies(fake: FakeDiscord, bot: TinyBot) -> None:
    # discord.py waits 5 s (Client.before_identify_hook) before any IDENTIFY but the first.
    with fast_discord_sleeps():
        await fake.drop_gateway(resumable=False)
        await fake.wait_connected()
    assert (fake.gateway.identify_count, fake.gateway.resume_count) == (2, 0)
    assert fake.gateway.received[-1]["op"] in (1, 2)  # RESUME refused, then IDENTIFY
    assert (await (await fake.slash("ping")).wait_original()).content == "pong"


async def test_context_menu_reads_attachment(fake: FakeDiscord, bot: TinyBot) -> None:
    msg = fake.add_message("look", attachments=[("cat.png", fake_png(5000))])
    ix = await fake.context_menu("Image size", msg.id)
    assert (await ix.wait_original()).content == "5000 bytes"


async def test_modal_and_autocomplete(fake: FakeDiscord, bot: TinyBot) -> None:
    opened = await fake.slash("edit")
    await opened.wait_response()
    assert opened.modal["title"] == "Edit prompt"
    submitted = await fake.submit_modal(opened, {"prompt": "a dog"})
    assert (await submitted.wait_original()).content == "new prompt: a dog"

    typing = await fake.autocomplete("style", {"name": "p"}, focused="name")
    await typing.wait_response()
    assert [c["value"] for c in typing.choices] == ["photo", "pixel"]


async def test_reply_with_file_and_select_on_plain_view(fake: FakeDiscord, bot: TinyBot) -> None:
    ix = await fake.slash("style", {"name": "photo"})
    reply = await ix.wait_original()
    assert [a.filename for a in reply.attachments] == ["style.png"]
    # discord.py stored StyleView under the response_message_id of the callback response.
    picked = await fake.select(reply, "zbot:style", ["anime"])
    await picked.wait_response()
    assert reply.content == "picked anime" and reply.components == []
    assert picked.original is reply  # type 7 updates the message the select is on


async def test_edit_keeps_replaces_and_removes_attachments(fake: FakeDiscord, bot: TinyBot) -> None:
    ix = await fake.slash("draw", {"prompt": "x"})
    [msg] = await ix.wait_followups(1)
    webhook = discord.Webhook.partial(fake.app_id, ix.token, client=bot)
    with point_discord_at(fake):
        fetched = await webhook.fetch_message(msg.id)
        assert (await fetched.attachments[0].read())[:4] == b"\x89PNG"
        extra = discord.File(io.BytesIO(b"seed=1"), "info.txt")
        await webhook.edit_message(msg.id, attachments=[fetched.attachments[0], extra])
        assert [a.filename for a in msg.attachments] == ["zbot.png", "info.txt"]
        await webhook.edit_message(msg.id, attachments=[])
        assert msg.attachments == [] and len(msg.edits) == 2
        await webhook.delete_message(msg.id)
        assert msg.deleted


async def test_refusals_and_rest_extras(fake: FakeDiscord, bot: TinyBot) -> None:
    ix = await fake.slash("ping")
    await ix.wait_response()
    with point_discord_at(fake):
        webhook = discord.Webhook.partial(fake.app_id, ix.token, client=bot)
        fake.attachment_size_limit = 1000
        with pytest.raises(discord.HTTPException) as info:
            await webhook.send(file=discord.File(io.BytesIO(bytes(2000)), "big.png"), wait=True)
        assert (info.value.status, info.value.code) == (413, 40005)

        url = f"{fake.api_url}/interactions/{ix.id}/{ix.token}/callback?with_response=1"
        async with aiohttp.ClientSession() as http:
            async with http.post(url, json={"type": 4, "data": {"content": "again"}}) as resp:
                assert resp.status == 400 and resp.headers["Content-Type"] == "application/json"
                assert (await resp.json())["code"] == 40060

        channel = bot.get_channel(fake.channel_id)
        with pytest.raises(discord.HTTPException) as info:
            await channel.send("x" * 2001)
        assert (info.value.status, info.value.code) == (400, 50035) and "content" in info.value.text
        with pytest.raises(discord.HTTPException) as info:
            await channel.send()
        assert info.value.code == 50006

        assert (await bot.fetch_channel(fake.channel_id)).name == "general"
        assert (await bot.fetch_guild(fake.guild_id)).name == "zbot test guild"
        guild = bot.get_guild(fake.guild_id)
        assert (await guild.fetch_member(fake.user_id)).name == "alice"
        with pytest.raises(discord.NotFound):
            await bot.http.request(discord.http.Route("GET", "/nope"))
    assert fake.unknown_routes == [("GET", "/nope")]
