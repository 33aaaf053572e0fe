"""A fake Discord (REST + gateway) on 127.0.0.1 for end-to-end tests of a discord.py bot.

The real, unmodified discord.py client logs in to it, syncs commands, receives interactions the
test sends "as a user", and everything the bot does lands in plain records the test can assert on::

    async with FakeDiscord() as fake, fake.running(bot):      # bot built with guild_ready_timeout=0
        ix = await fake.slash("draw", {"prompt": "a cat"})
        [result] = await ix.wait_followups(1)
        click = await fake.click(result, result.custom_ids[0])
        await click.wait_response()

What is where in this file:
  records        FakeMessage, FakeAttachment, MessageEdit, FakeInteraction, Callback, Fault
  FakeDiscord    lifecycle and ``running(client)``; ``wait_for`` and logged-error capture;
                 world building (users, guilds, channels, roles, members); acting as a user
                 (slash, autocomplete, context_menu, user_command, click, select, submit_modal);
                 fault injection (fail_next, expire_token, drop_gateway); the REST routes
  helpers        point_discord_at (Route.BASE + DEFAULT_GATEWAY), fast_discord_sleeps
The websocket protocol and INTERACTION_CREATE ``data`` builders are in ``fake_discord_gateway.py``.

Only what a slash-command bot touches is implemented (see ``_routes``); anything else answers
404 ``{"code": 10000}`` and is listed in ``unknown_routes``. Discord's answers are mimicked where
a bot must cope with them: 401/50027 for an expired interaction token, 404/10062 for a late or
unknown interaction, 400/40060 for a second response, 413/40005 for a file over
``attachment_size_limit``, 400/50035 for invalid bodies and command schemas, 400/50006 for an
empty message. Not implemented: MESSAGE_CREATE/UPDATE events to the bot, DMs as the source of
interactions, threads, reactions.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import mimetypes
import re
import secrets
import sys
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, AsyncIterator, Callable, Iterator, NamedTuple

import yarl
from aiohttp import web

try:
    from .fake_discord_gateway import FakeGateway, GatewaySession, chat_input_data, modal_submit_data
except ImportError:  # tests/ is on sys.path (pytest's default rootdir-relative import)
    from fake_discord_gateway import (  # type: ignore[no-redef]
        FakeGateway,
        GatewaySession,
        chat_input_data,
        modal_submit_data,
    )

DISCORD_EPOCH_MS = 1_420_070_400_000
EPHEMERAL = 1 << 6
LOADING = 1 << 7
ALL_PERMISSIONS = (1 << 51) - 1
ADMINISTRATOR = 1 << 3
# @everyone in a fresh guild: invite, reactions, view, send, embed links, attach files, read
# history, external emojis, connect, speak, change nickname, app commands, public threads,
# send in threads.
DEFAULT_EVERYONE_PERMISSIONS = sum(1 << b for b in (0, 6, 10, 11, 14, 15, 16, 18, 20, 21, 26, 31, 35, 38))
# What the bot may do in the channel (``app_permissions``): view, send, embed links, attach
# files, read history, add reactions, external emojis, send in threads.
DEFAULT_APP_PERMISSIONS = sum(1 << b for b in (6, 10, 11, 14, 15, 16, 18, 38))

# Interaction types and callback types
PING, APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT = 1, 2, 3, 4, 5
PONG, CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, DEFERRED_UPDATE, UPDATE_MESSAGE = 1, 4, 5, 6, 7
AUTOCOMPLETE_RESULT, MODAL = 8, 9


# Uploaded files[n] parts: index -> (filename, bytes, content type or None)
_Files = dict[int, tuple[str, bytes, "str | None"]]


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


def _sid(value: Any) -> int:
    """An id from an int, a numeric str, or anything with ``.id`` (discord objects, FakeMessage)."""
    return int(getattr(value, "id", value))


def _perm_str(value: Any) -> str:
    return str(int(getattr(value, "value", value)))


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # Exactly "application/json": discord.py decodes JSON only for that content type, and
    # web.json_response would append "; charset=utf-8".
    return web.Response(
        status=status, body=json.dumps(data).encode(), content_type="application/json", headers=headers
    )


def _error(status: int, code: int, message: str, **extra: Any) -> web.Response:
    return _json({"code": code, "message": message, **extra}, status)


def _invalid_form(problems: list[str]) -> web.Response:
    """400/50035 with Discord's nested ``errors``; each problem reads "field.path: message"."""
    errors: dict[str, Any] = {}
    for problem in problems:
        path, _, message = problem.partition(": ")
        node = errors
        for part in path.split("."):
            node = node.setdefault(part, {})
        node.setdefault("_errors", []).append({"code": "INVALID", "message": message})
    return _error(400, 50035, "Invalid Form Body", errors=errors)


def _no_content() -> web.Response:
    return web.Response(status=204)


class LoggedRequest(NamedTuple):
    method: str
    path: str  # relative to /api/v10, without the query
    status: int
    time: float  # time.monotonic()


@dataclass(eq=False)
class FakeAttachment:
    id: int
    filename: str
    data: bytes = field(repr=False)
    content_type: str | None
    url: str
    description: str | None = None

    @property
    def size(self) -> int:
        return len(self.data)

    def to_payload(self) -> dict[str, Any]:
        p: dict[str, Any] = {
            "id": str(self.id),
            "filename": self.filename,
            "size": self.size,
            "url": self.url,
            "proxy_url": self.url,
            "content_type": self.content_type,
        }
        if self.description is not None:
            p["description"] = self.description
        if self.data[:8] == b"\x89PNG\r\n\x1a\n" and len(self.data) >= 24:
            p["width"] = int.from_bytes(self.data[16:20], "big")
            p["height"] = int.from_bytes(self.data[20:24], "big")
        return p


@dataclass
class MessageEdit:
    at: float  # time.monotonic()
    payload: dict[str, Any]  # the PATCH body (or the type-7 callback data)
    before: dict[str, Any]  # content/embeds/components/attachment names before the edit
    via: str  # "webhook" (PATCH), "channel" (PATCH), "callback" (type 7) or "followup" (see _followup)


@dataclass(eq=False)
class FakeMessage:
    id: int
    channel_id: int
    guild_id: int | None
    author: dict[str, Any]
    content: str = ""
    embeds: list[dict[str, Any]] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[FakeAttachment] = field(default_factory=list)
    allowed_mentions: dict[str, Any] | None = None
    flags: int = 0
    type: int = 0
    source: str = "channel"  # "callback", "followup", "channel" (bot token) or "user"
    interaction_id: int | None = None
    webhook_id: int | None = None
    message_reference: dict[str, Any] | None = None
    interaction_metadata: dict[str, Any] | None = None
    created_at: float = field(default_factory=time.monotonic)
    timestamp: str = field(default_factory=_now_iso)
    edited_timestamp: str | None = None
    edits: list[MessageEdit] = field(default_factory=list)
    deleted: bool = False

    @property
    def author_id(self) -> int:
        return int(self.author["id"])

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & EPHEMERAL)

    @property
    def loading(self) -> bool:
        """True for a deferred ("thinking...") response not edited yet."""
        return bool(self.flags & LOADING)

    def walk_components(self) -> Iterator[dict[str, Any]]:
        return _walk_components(self.components)

    @property
    def buttons(self) -> list[dict[str, Any]]:
        return [c for c in self.walk_components() if c.get("type") == 2]

    @property
    def custom_ids(self) -> list[str]:
        return [c["custom_id"] for c in self.walk_components() if "custom_id" in c]

    def component(self, custom_id: str) -> dict[str, Any] | None:
        return next((c for c in self.walk_components() if c.get("custom_id") == custom_id), None)

    def snapshot(self) -> dict[str, Any]:
        return {
            "content": self.content,
            "embeds": self.embeds,
            "components": self.components,
            "attachments": [a.filename for a in self.attachments],
            "flags": self.flags,
        }

    @property
    def pings(self) -> set[str]:
        """Who this message would notify, given its content and allowed_mentions (Discord's
        rules; no allowed_mentions means everything parses): "everyone", "user:ID", "role:ID"."""
        am = self.allowed_mentions
        parse = set(am.get("parse", [])) if am is not None else {"everyone", "users", "roles"}
        users = {str(u) for u in (am or {}).get("users", [])}
        roles = {str(r) for r in (am or {}).get("roles", [])}
        out: set[str] = set()
        if "everyone" in parse and re.search(r"@(everyone|here)", self.content):
            out.add("everyone")
        for uid in re.findall(r"<@!?(\d+)>", self.content):
            if "users" in parse or uid in users:
                out.add(f"user:{uid}")
        for rid in re.findall(r"<@&(\d+)>", self.content):
            if "roles" in parse or rid in roles:
                out.add(f"role:{rid}")
        return out

    def to_payload(self) -> dict[str, Any]:
        p: dict[str, Any] = {
            "id": str(self.id),
            "channel_id": str(self.channel_id),
            "author": self.author,
            "content": self.content,
            "embeds": self.embeds,
            "components": self.components,
            "attachments": [a.to_payload() for a in self.attachments],
            "type": self.type,
            "flags": self.flags,
            "timestamp": self.timestamp,
            "edited_timestamp": self.edited_timestamp,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "pinned": False,
        }
        if self.guild_id is not None:
            p["guild_id"] = str(self.guild_id)
        if self.webhook_id is not None:
            p["webhook_id"] = str(self.webhook_id)
            p["application_id"] = str(self.webhook_id)
        if self.message_reference is not None:
            p["message_reference"] = self.message_reference
        if self.interaction_metadata is not None:
            p["interaction_metadata"] = self.interaction_metadata
        return p


@dataclass
class Callback:
    type: int  # 1 pong, 4 reply, 5 defer, 6 deferred update, 7 update, 8 autocomplete, 9 modal
    data: dict[str, Any]
    at: float


@dataclass(eq=False)
class FakeInteraction:
    """One interaction the test sent, and everything the bot answered to it."""

    fake: FakeDiscord = field(repr=False)
    id: int
    token: str
    type: int
    payload: dict[str, Any] = field(repr=False)  # the INTERACTION_CREATE data as sent
    user_id: int
    guild_id: int | None
    channel_id: int
    message_id: int | None = None  # the message a component / message command targets
    created_at: float = field(default_factory=time.monotonic)
    callbacks: list[Callback] = field(default_factory=list)
    original_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)
    expired: bool = False

    @property
    def response(self) -> Callback | None:
        return self.callbacks[0] if self.callbacks else None

    @property
    def response_type(self) -> int | None:
        return self.callbacks[0].type if self.callbacks else None

    @property
    def original(self) -> FakeMessage | None:
        return self.fake.messages.get(self.original_id) if self.original_id else None

    @property
    def followups(self) -> list[FakeMessage]:
        return [self.fake.messages[m] for m in self.followup_ids]

    @property
    def modal(self) -> dict[str, Any] | None:
        """The modal the bot opened (callback type 9 data), if any."""
        return next((c.data for c in self.callbacks if c.type == MODAL), None)

    @property
    def choices(self) -> list[dict[str, Any]] | None:
        """Autocomplete choices the bot returned (callback type 8), if any."""
        results = [c.data.get("choices", []) for c in self.callbacks if c.type == AUTOCOMPLETE_RESULT]
        return results[0] if results else None

    async def wait_until(self, predicate: Callable[[FakeInteraction], Any], timeout: float = 10) -> Any:
        return await self.fake.wait_for(lambda _: predicate(self), timeout, what=f"interaction {self.id}")

    async def wait_response(self, timeout: float = 10) -> Callback:
        """The first callback (defer, reply, update, modal...)."""
        return await self.wait_until(lambda ix: ix.response, timeout)

    async def wait_original(
        self, predicate: Callable[[FakeMessage], Any] | None = None, timeout: float = 10
    ) -> FakeMessage:
        """The @original message once it exists (and satisfies ``predicate``)."""

        def check(ix: FakeInteraction) -> FakeMessage | None:
            msg = ix.original
            return msg if msg is not None and (predicate is None or predicate(msg)) else None

        return await self.wait_until(check, timeout)

    async def wait_followups(self, n: int = 1, timeout: float = 10) -> list[FakeMessage]:
        return await self.wait_until(lambda ix: ix.followups if len(ix.followup_ids) >= n else None, timeout)


@dataclass
class Fault:
    method: str
    pattern: re.Pattern[str]
    status: int
    body: Any
    headers: dict[str, str]
    remaining: int | None  # None: until clear_faults()
    hits: int = 0


@dataclass
class FakeGuild:
    id: int
    name: str
    owner_id: int
    roles: dict[int, dict[str, Any]] = field(default_factory=dict)
    channel_ids: list[int] = field(default_factory=list)
    members: dict[int, dict[str, Any]] = field(default_factory=dict)  # user id -> roles, joined_at


class DiscordLoggedError(AssertionError):
    """discord.py (or another watched logger) logged an ERROR: a handler raised."""


class _ErrorCollector(logging.Handler):
    def __init__(self, fake: FakeDiscord) -> None:
        super().__init__(logging.ERROR)
        self.fake = fake

    def emit(self, record: logging.LogRecord) -> None:
        # May run on any thread (a worker logging through a watched logger): only append;
        # wait_for polls every 10 ms and picks it up.
        self.fake.logged_errors.append(record)


class _Snowflakes:
    def __init__(self) -> None:
        self._last = 0

    def __call__(self) -> int:
        now = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        self._last = max(now, self._last + 1)
        return self._last


class FakeDiscord:
    """Fake Discord REST API + gateway on 127.0.0.1 (random port). See the module docstring."""

    def __init__(
        self,
        *,
        token: str = "fake-bot-token",
        app_id: int = 1_100_000_000_000_000_001,
        guild_id: int = 1_200_000_000_000_000_001,
        channel_id: int = 1_300_000_000_000_000_001,
        owner_id: int = 1_400_000_000_000_000_001,
        user_id: int = 1_400_000_000_000_000_002,
        bot_name: str = "zbot",
        attachment_size_limit: int = 10 * 1024 * 1024,
        watch_loggers: tuple[str, ...] = ("discord",),
    ) -> None:
        self.token = token
        self.app_id = app_id
        self.bot_user_id = app_id  # as on Discord: the bot user shares the application's id
        self.guild_id = guild_id
        self.channel_id = channel_id
        self.owner_id = owner_id
        self.user_id = user_id  # the default user who runs commands and clicks
        self.attachment_size_limit = attachment_size_limit
        self.app_permissions: int = DEFAULT_APP_PERMISSIONS
        # Answer callbacks later than this many seconds after the interaction with 404/10062
        # ("Unknown interaction"), as Discord does after 3 s. None: no deadline.
        self.callback_deadline: float | None = None
        self.fail_on_logged_errors = True
        self.watch_loggers = watch_loggers

        self.users: dict[int, dict[str, Any]] = {}
        self.guilds: dict[int, FakeGuild] = {}
        self.channels: dict[int, dict[str, Any]] = {}
        self.messages: dict[int, FakeMessage] = {}
        self.attachments: dict[int, FakeAttachment] = {}
        self.interactions: list[FakeInteraction] = []
        self.global_commands: list[dict[str, Any]] = []
        self.guild_commands: dict[int, list[dict[str, Any]]] = {}
        self.request_log: list[LoggedRequest] = []
        self.unknown_routes: list[tuple[str, str]] = []
        self.logged_errors: list[logging.LogRecord] = []
        self.internal_errors: list[str] = []  # bugs in the fake itself (tracebacks)
        self.faults: list[Fault] = []
        self._by_token: dict[str, FakeInteraction] = {}
        self._by_id: dict[int, FakeInteraction] = {}
        self._dm_channels: dict[int, int] = {}
        self._snowflake = _Snowflakes()
        self._changed = asyncio.Event()
        self._collector = _ErrorCollector(self)
        self._runner: web.AppRunner | None = None
        self.base_url = ""

        self.add_user(bot_name, user_id=self.bot_user_id, bot=True)
        self.add_user("owner", user_id=owner_id)
        self.add_user("alice", user_id=user_id)
        self.add_guild("zbot test guild", guild_id=guild_id, channel_id=channel_id, owner_id=owner_id)
        self.add_member(self.bot_user_id)
        self.add_member(user_id)

        self.gateway = FakeGateway(
            token=token,
            ready_payload=self._ready_payload,
            guild_payloads=lambda: [self.guild_payload(g) for g in self.guilds],
            member_payloads=lambda gid: [self.member_payload(gid, u) for u in self.guilds[gid].members],
            on_change=self._notify,
        )

    # -- lifecycle --------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"{self.base_url.replace('http://', 'ws://')}/gateway"

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/api/v10/{tail:.*}", self._handle_api)
        app.router.add_get("/gateway", self.gateway.handle)
        app.router.add_get("/attachments/{channel}/{id}/{filename}", self._serve_attachment)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"
        for name in self.watch_loggers:
            logging.getLogger(name).addHandler(self._collector)

    async def stop(self) -> None:
        for name in self.watch_loggers:
            logging.getLogger(name).removeHandler(self._collector)
        await self.gateway.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    @contextlib.asynccontextmanager
    async def running(
        self, client: Any, *, token: str | None = None, timeout: float = 10
    ) -> AsyncIterator[Any]:
        """Log ``client`` in against this fake, connect it, wait until it is ready and has the
        default guild; on exit close it. Fails at exit if watched loggers logged errors."""
        with point_discord_at(self):
            await client.login(token or self.token)
            task = asyncio.create_task(client.connect(reconnect=True), name="fake-discord-client")
            try:
                await self._until_ready(client, task, timeout)
                yield client
            finally:
                await client.close()
                if not task.done():  # done already: _until_ready raised its exception
                    await asyncio.wait_for(task, 5)
        self.check_errors()

    async def _until_ready(self, client: Any, task: asyncio.Task[Any], timeout: float) -> None:
        async def ready() -> None:
            await client.wait_until_ready()
            while (g := client.get_guild(self.guild_id)) is None or g.unavailable:
                await asyncio.sleep(0.001)

        waiter = asyncio.ensure_future(ready())
        done, _ = await asyncio.wait({waiter, task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if waiter not in done:
            waiter.cancel()
            if task in done:
                task.result()  # re-raise why connect() ended (bad token, ...)
            raise TimeoutError(f"client not ready within {timeout}s")

    # -- waiting and errors -----------------------------------------------------------

    def _notify(self) -> None:
        # Wake every waiter; each re-checks its predicate and waits on the next event.
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(
        self, predicate: Callable[[FakeDiscord], Any], timeout: float = 10, *, what: str = ""
    ) -> Any:
        """Wait until ``predicate(fake)`` is truthy and return its value. It is re-checked
        after every request, gateway message and logged error, and every 10 ms (for predicates
        on the bot's own state). Raises DiscordLoggedError at once if a watched logger logged
        an ERROR meanwhile, TimeoutError listing recent requests otherwise."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            self.check_errors()
            result = predicate(self)
            if result:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                recent = "\n  ".join(f"{r.method} {r.path} -> {r.status}" for r in self.request_log[-12:])
                raise TimeoutError(
                    f"condition {what or predicate!r} not met within {timeout}s; "
                    f"unknown routes: {self.unknown_routes}; last requests:\n  {recent}"
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.01))

    def check_errors(self) -> None:
        """Raise if the fake had an internal error or a watched logger logged an ERROR."""
        if self.internal_errors:
            raise AssertionError("fake Discord internal error:\n" + self.internal_errors[0])
        if self.fail_on_logged_errors and self.logged_errors:
            fmt = logging.Formatter("%(name)s: %(message)s")
            raise DiscordLoggedError("\n".join(fmt.format(r) for r in self.logged_errors))

    def take_logged_errors(self) -> list[logging.LogRecord]:
        """Return and forget the ERROR records so far (for tests that expect some)."""
        records, self.logged_errors = self.logged_errors, []
        return records

    async def wait_connected(self, timeout: float = 10) -> None:
        """Until a client has identified (READY + GUILD_CREATE sent) or resumed."""
        await self.gateway.wait_connected(timeout)

    # -- world building (call before the client connects: guilds go out in GUILD_CREATE) ---

    def add_user(self, name: str, *, user_id: int | None = None, bot: bool = False) -> int:
        uid = user_id or self._snowflake()
        self.users[uid] = {
            "id": str(uid),
            "username": name,
            "global_name": name,
            "discriminator": "0",
            "avatar": None,
            "bot": bot,
            "public_flags": 0,
            "flags": 0,
        }
        return uid

    def add_guild(
        self,
        name: str,
        *,
        guild_id: int | None = None,
        channel_id: int | None = None,
        owner_id: int | None = None,
    ) -> int:
        self._check_not_connected("add_guild")
        gid = guild_id or self._snowflake()
        guild = FakeGuild(id=gid, name=name, owner_id=owner_id or self.owner_id)
        guild.roles[gid] = self._role(gid, "@everyone", DEFAULT_EVERYONE_PERMISSIONS, position=0)
        self.guilds[gid] = guild
        self.add_channel("general", guild_id=gid, channel_id=channel_id)
        self.add_member(guild.owner_id, guild_id=gid)
        return gid

    def add_channel(self, name: str, *, guild_id: int | None = None, channel_id: int | None = None) -> int:
        self._check_not_connected("add_channel")
        gid = guild_id or self.guild_id
        cid = channel_id or self._snowflake()
        guild = self.guilds[gid]
        self.channels[cid] = {
            "id": str(cid),
            "type": 0,
            "guild_id": str(gid),
            "name": name,
            "position": len(guild.channel_ids),
            "permission_overwrites": [],
            "nsfw": False,
            "topic": None,
            "parent_id": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
        }
        guild.channel_ids.append(cid)
        return cid

    def add_role(self, name: str, permissions: Any = 0, *, guild_id: int | None = None) -> int:
        self._check_not_connected("add_role")
        guild = self.guilds[guild_id or self.guild_id]
        rid = self._snowflake()
        guild.roles[rid] = self._role(rid, name, int(_perm_str(permissions)), position=len(guild.roles))
        return rid

    def add_member(
        self,
        user_id: int | None = None,
        *,
        name: str | None = None,
        roles: tuple[int, ...] = (),
        guild_id: int | None = None,
    ) -> int:
        """Make a user (created if needed) a member of a guild with the given roles."""
        uid = user_id or self.add_user(name or "member")
        if uid not in self.users:
            self.add_user(name or f"user{uid % 10000}", user_id=uid)
        self.guilds[guild_id or self.guild_id].members[uid] = {"roles": list(roles), "joined_at": _now_iso()}
        return uid

    def _check_not_connected(self, what: str) -> None:
        if getattr(self, "gateway", None) is not None and self.gateway.connected:
            raise RuntimeError(f"{what}() while a client is connected: it would never see it")

    @staticmethod
    def _role(rid: int, name: str, permissions: int, position: int) -> dict[str, Any]:
        return {
            "id": str(rid),
            "name": name,
            "permissions": str(permissions),
            "position": position,
            "color": 0,
            "hoist": False,
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }

    def member_permissions(self, guild_id: int, user_id: int, roles: Any = None) -> int:
        guild = self.guilds[guild_id]
        if user_id == guild.owner_id:
            return ALL_PERMISSIONS
        role_ids = roles if roles is not None else guild.members.get(user_id, {}).get("roles", [])
        perms = int(guild.roles[guild_id]["permissions"])
        for rid in role_ids:
            role = guild.roles.get(_sid(rid))
            if role is not None:
                perms |= int(role["permissions"])
        return ALL_PERMISSIONS if perms & ADMINISTRATOR else perms

    # -- payloads -----------------------------------------------------------------------

    def member_payload(
        self, guild_id: int, user_id: int, *, roles: Any = None, permissions: Any = None
    ) -> dict[str, Any]:
        """A guild member; ``permissions`` (only interaction payloads carry them) if given."""
        info = self.guilds[guild_id].members.get(user_id, {})
        role_ids = roles if roles is not None else info.get("roles", [])
        payload = {
            "user": self.users[user_id],
            "roles": [str(_sid(r)) for r in role_ids],
            "joined_at": info.get("joined_at") or _now_iso(),
            "nick": None,
            "avatar": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "premium_since": None,
            "communication_disabled_until": None,
        }
        if permissions is not None:
            payload["permissions"] = _perm_str(permissions)
        return payload

    def guild_payload(self, guild_id: int) -> dict[str, Any]:
        g = self.guilds[guild_id]
        return {
            "id": str(g.id),
            "name": g.name,
            "icon": None,
            "owner_id": str(g.owner_id),
            "roles": list(g.roles.values()),
            "channels": [self.channels[c] for c in g.channel_ids],
            "members": [self.member_payload(g.id, u) for u in g.members],
            "member_count": len(g.members),
            "large": False,
            "unavailable": False,
            "joined_at": _now_iso(),
            "features": [],
            "emojis": [],
            "stickers": [],
            "threads": [],
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "preferred_locale": "en-US",
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "system_channel_flags": 0,
        }

    def _ready_payload(self, session: GatewaySession) -> dict[str, Any]:
        ready = {
            "v": 10,
            "user": {**self.users[self.bot_user_id], "verified": True, "mfa_enabled": False},
            "guilds": [{"id": str(g), "unavailable": True} for g in self.guilds],
            "session_id": session.id,
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.app_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "_trace": ["fake-discord"],
        }
        if session.shard is not None:
            ready["shard"] = session.shard
        return ready

    def _app_payload(self) -> dict[str, Any]:
        return {
            "id": str(self.app_id),
            "name": self.users[self.bot_user_id]["username"],
            "description": "",
            "icon": None,
            "bot_public": True,
            "bot_require_code_grant": False,
            "owner": self.users[self.owner_id],
            "verify_key": "0" * 64,
            "flags": 0,
            "team": None,
            "summary": "",
            "rpc_origins": [],
            "interactions_endpoint_url": None,
            "bot": self.users[self.bot_user_id],
        }

    # -- fault injection ----------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        path_regex: str,
        status: int,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
        times: int | None = 1,
        *,
        retry_after: float = 0.05,
    ) -> Fault:
        """Answer the next ``times`` requests whose method matches (``"*"`` for any) and whose
        path (relative to /api/v10, no query) matches ``re.search(path_regex)`` with ``status``.
        429s get Discord's body and headers (incl. ``Via``, without which discord.py treats a
        429 as a Cloudflare ban and raises at once). ``times=None``: until clear_faults()."""
        if json_body is None:
            json_body = _default_fault_body(status, retry_after)
        hdrs: dict[str, str] = {}
        if status == 429:
            hdrs = {
                "Via": "1.1 google",
                "Retry-After": str(max(1, round(retry_after))),
                "X-RateLimit-Limit": "5",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset-After": str(retry_after),
                "X-RateLimit-Bucket": "fake-bucket",
                "X-RateLimit-Scope": "user",
            }
        hdrs.update(headers or {})
        fault = Fault(method.upper(), re.compile(path_regex), status, json_body, hdrs, times)
        self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        self.faults.clear()

    def expire_token(self, interaction: FakeInteraction | str) -> None:
        """Age an interaction token past its 15 minutes: webhook calls get 401/50027 and
        callbacks 404/10062 from now on."""
        ix = interaction if isinstance(interaction, FakeInteraction) else self._by_token[interaction]
        ix.expired = True

    async def drop_gateway(self, resumable: bool = True) -> None:
        """Close the client's websocket. discord.py reconnects at once and RESUMEs (events sent
        meanwhile are replayed, then RESUMED); with ``resumable=False`` the RESUME gets
        INVALID_SESSION and the client IDENTIFYs afresh (events sent meanwhile are lost)."""
        await self.gateway.drop(resumable=resumable)

    def _take_fault(self, method: str, path: str) -> web.Response | None:
        for fault in self.faults:
            if fault.method in ("*", method) and fault.pattern.search(path):
                fault.hits += 1
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self.faults.remove(fault)
                if isinstance(fault.body, (dict, list)):
                    return _json(fault.body, fault.status, fault.headers)
                return web.Response(status=fault.status, text=str(fault.body), headers=fault.headers)
        return None

    # -- acting as a user ---------------------------------------------------------------

    def find_command(self, name: str, type: int = 1, guild_id: int | None = None) -> dict[str, Any]:
        """The registered command as Discord stores it (guild commands win over global)."""
        gid = guild_id or self.guild_id
        for cmd in [*self.guild_commands.get(gid, []), *self.global_commands]:
            if cmd["name"] == name and cmd.get("type", 1) == type:
                return cmd
        known = [(c["name"], c.get("type", 1)) for c in self.registered_commands]
        raise LookupError(f"no registered command {name!r} of type {type}; registered: {known}")

    @property
    def registered_commands(self) -> list[dict[str, Any]]:
        """Global commands, then every guild's (those carry ``guild_id``)."""
        return [*self.global_commands, *(c for cmds in self.guild_commands.values() for c in cmds)]

    async def slash(
        self,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        subcommand: str | None = None,
        user_id: int | None = None,
        guild_id: int | None = None,
        channel_id: int | None = None,
        roles: Any = None,
        permissions: Any = None,
    ) -> FakeInteraction:
        """Run ``/name`` as a user would. Option types, the command id and validation (required
        options, choices, min/max) come from the registered schema; ``subcommand`` is
        ``"sub"`` or ``"group sub"``. Values: str/int/float/bool; users, channels, roles as ids
        or objects with ``.id``; attachments as ``(filename, bytes)``."""
        gid = guild_id or self.guild_id
        cmd = self.find_command(name, 1, gid)
        resolve = functools.partial(self._resolve_option, gid=gid)
        data = chat_input_data(cmd, options or {}, subcommand=subcommand, resolve=resolve)
        return await self._interact(
            APPLICATION_COMMAND, data, user_id=user_id, guild_id=gid, channel_id=channel_id,
            roles=roles, permissions=permissions,
        )

    async def autocomplete(
        self,
        name: str,
        options: dict[str, Any],
        focused: str,
        *,
        subcommand: str | None = None,
        user_id: int | None = None,
    ) -> FakeInteraction:
        """Send an autocomplete interaction (type 4) while the user types ``focused``; the
        bot's choices end up in ``FakeInteraction.choices``. Values are sent as typed."""
        data = chat_input_data(self.find_command(name, 1), options, subcommand=subcommand, focused=focused)
        return await self._interact(AUTOCOMPLETE, data, user_id=user_id)

    async def context_menu(
        self,
        name: str,
        message_id: Any,
        *,
        user_id: int | None = None,
        roles: Any = None,
        permissions: Any = None,
    ) -> FakeInteraction:
        """Run the message command ``name`` on a message (the bot's or one from add_message)."""
        msg = self._message_or_raise(message_id)
        cmd = self.find_command(name, 3, msg.guild_id)
        data: dict[str, Any] = {
            "id": cmd["id"],
            "name": name,
            "type": 3,
            "target_id": str(msg.id),
            "resolved": {"messages": {str(msg.id): msg.to_payload()}},
        }
        if cmd.get("guild_id"):
            data["guild_id"] = cmd["guild_id"]
        return await self._interact(
            APPLICATION_COMMAND, data, user_id=user_id, guild_id=msg.guild_id, channel_id=msg.channel_id,
            roles=roles, permissions=permissions, target_message=msg,
        )

    async def user_command(
        self, name: str, target_user_id: int, *, user_id: int | None = None
    ) -> FakeInteraction:
        """Run the user command ``name`` on a user."""
        cmd = self.find_command(name, 2)
        resolved: dict[str, dict[str, Any]] = {}
        self._resolve_user(target_user_id, resolved, self.guild_id)
        data = {"id": cmd["id"], "name": name, "type": 2, "target_id": str(target_user_id)}
        data["resolved"] = resolved
        if cmd.get("guild_id"):
            data["guild_id"] = cmd["guild_id"]
        return await self._interact(APPLICATION_COMMAND, data, user_id=user_id)

    async def click(
        self,
        message_id: Any,
        custom_id: str,
        *,
        user_id: int | None = None,
        roles: Any = None,
        permissions: Any = None,
    ) -> FakeInteraction:
        """Click the button ``custom_id`` on a message; the payload carries the full message,
        which discord.py needs to route DynamicItem clicks and finds views by."""
        return await self._component(message_id, custom_id, None, user_id, roles, permissions)

    async def select(
        self,
        message_id: Any,
        custom_id: str,
        values: list[str],
        *,
        user_id: int | None = None,
        roles: Any = None,
    ) -> FakeInteraction:
        """Pick ``values`` in the select menu ``custom_id`` of a message."""
        return await self._component(message_id, custom_id, values, user_id, roles, None)

    async def _component(
        self,
        message_id: Any,
        custom_id: str,
        values: list[str] | None,
        user_id: int | None,
        roles: Any,
        permissions: Any,
    ) -> FakeInteraction:
        msg = self._message_or_raise(message_id)
        comp = msg.component(custom_id)
        if comp is None:
            raise LookupError(f"message {msg.id} has no component {custom_id!r}; it has {msg.custom_ids}")
        if comp.get("disabled"):
            raise ValueError(f"component {custom_id!r} is disabled: a user cannot use it")
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": comp["type"]}
        if values is not None:
            data["values"] = list(values)
        return await self._interact(
            MESSAGE_COMPONENT, data, user_id=user_id, guild_id=msg.guild_id, channel_id=msg.channel_id,
            roles=roles, permissions=permissions, target_message=msg, with_message=True,
        )

    async def submit_modal(
        self, interaction: FakeInteraction, values: dict[str, str | list[str]], *, user_id: int | None = None
    ) -> FakeInteraction:
        """Fill in and submit the modal the bot opened in answer to ``interaction``: text
        inputs get a str, selects a list. The submission mirrors the modal's layout."""
        modal = interaction.modal
        if modal is None:
            raise LookupError(f"interaction {interaction.id} got no modal")
        data = modal_submit_data(modal, values)
        target = self.messages.get(interaction.message_id) if interaction.message_id else None
        return await self._interact(
            MODAL_SUBMIT, data, user_id=user_id or interaction.user_id, guild_id=interaction.guild_id,
            channel_id=interaction.channel_id, target_message=target, with_message=target is not None,
        )

    def add_message(
        self,
        content: str = "",
        *,
        user_id: int | None = None,
        channel_id: int | None = None,
        attachments: list[tuple[Any, ...]] = (),  # type: ignore[assignment]
    ) -> FakeMessage:
        """A message posted by a user (not the bot), e.g. as the target of a message command.
        ``attachments``: ``(filename, bytes)`` or ``(filename, bytes, content_type)``."""
        cid = channel_id or self.channel_id
        msg = FakeMessage(
            id=self._snowflake(),
            channel_id=cid,
            guild_id=_opt_int(self.channels[cid].get("guild_id")),
            author=self.users[user_id or self.user_id],
            content=content,
            source="user",
        )
        msg.attachments = [self._new_attachment(cid, *a) for a in attachments]
        self.messages[msg.id] = msg
        return msg

    @property
    def bot_messages(self) -> list[FakeMessage]:
        """Every message the bot created, in order (deleted ones included)."""
        return [m for m in self.messages.values() if m.author_id == self.bot_user_id]

    def _message_or_raise(self, message_id: Any) -> FakeMessage:
        msg = self.messages.get(_sid(message_id))
        if msg is None or msg.deleted:
            raise LookupError(f"no message {_sid(message_id)} (or it was deleted)")
        return msg

    def _resolve_option(self, opt_type: int, value: Any, resolved: dict[str, Any], gid: int) -> str:
        """Value of a user/channel/role/mentionable/attachment option; fills ``resolved``."""
        if opt_type == 6 or (opt_type == 9 and _sid(value) in self.users):
            return self._resolve_user(_sid(value), resolved, gid)
        if opt_type in (8, 9):
            role = self.guilds[gid].roles[_sid(value)]
            resolved.setdefault("roles", {})[role["id"]] = role
            return role["id"]
        if opt_type == 7:
            ch = self.channels[_sid(value)]
            resolved.setdefault("channels", {})[ch["id"]] = {**ch, "permissions": _perm_str(ALL_PERMISSIONS)}
            return ch["id"]
        if opt_type == 11:
            if isinstance(value, FakeAttachment):
                att = value
            else:
                att = self._new_attachment(self.channel_id, *value)
            resolved.setdefault("attachments", {})[str(att.id)] = {**att.to_payload(), "ephemeral": True}
            return str(att.id)
        raise ValueError(f"option type {opt_type} not supported by the fake")

    def _resolve_user(self, uid: int, resolved: dict[str, Any], gid: int | None) -> str:
        if uid not in self.users:
            self.add_user(f"user{uid % 10000}", user_id=uid)
        resolved.setdefault("users", {})[str(uid)] = self.users[uid]
        if gid is not None and uid in self.guilds[gid].members:
            member = self.member_payload(gid, uid, permissions=self.member_permissions(gid, uid))
            member.pop("user")
            resolved.setdefault("members", {})[str(uid)] = member
        return str(uid)

    async def _interact(
        self,
        itype: int,
        data: dict[str, Any],
        *,
        user_id: int | None,
        guild_id: int | None = None,
        channel_id: int | None = None,
        roles: Any = None,
        permissions: Any = None,
        target_message: FakeMessage | None = None,
        with_message: bool = False,
    ) -> FakeInteraction:
        await self.wait_connected()
        uid = user_id or self.user_id
        gid = guild_id or self.guild_id
        cid = channel_id or self.guilds[gid].channel_ids[0]
        if uid not in self.users:
            self.add_user(f"user{uid % 10000}", user_id=uid)
        if uid not in self.guilds[gid].members:
            self.add_member(uid, guild_id=gid)
        perms = permissions if permissions is not None else self.member_permissions(gid, uid, roles)
        iid = self._snowflake()
        token = "fake-ix." + secrets.token_urlsafe(32)
        payload: dict[str, Any] = {
            "id": str(iid),
            "application_id": str(self.app_id),
            "type": itype,
            "data": data,
            "guild_id": str(gid),
            "guild": {"id": str(gid), "locale": "en-US", "features": []},
            "channel_id": str(cid),
            "channel": {**self.channels[cid], "permissions": _perm_str(perms)},
            "member": self.member_payload(gid, uid, roles=roles, permissions=perms),
            "token": token,
            "version": 1,
            "app_permissions": str(self.app_permissions),
            "locale": "en-US",
            "guild_locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(gid)},
            "context": 0,
            "attachment_size_limit": self.attachment_size_limit,
        }
        if with_message and target_message is not None:
            payload["message"] = target_message.to_payload()
        ix = FakeInteraction(
            fake=self, id=iid, token=token, type=itype, payload=payload, user_id=uid, guild_id=gid,
            channel_id=cid, message_id=target_message.id if target_message else None,
        )
        self.interactions.append(ix)
        self._by_token[token] = ix
        self._by_id[iid] = ix
        await self.gateway.dispatch("INTERACTION_CREATE", payload)
        self._notify()
        return ix

    # -- REST: plumbing -----------------------------------------------------------------

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        method, path = request.method, "/" + request.match_info["tail"]
        try:
            body, files = await _read_body(request)
            response = self._take_fault(method, path)
            if response is None:
                response = await self._route(request, method, path, body, files)
        except _InvalidBody as exc:
            response = _invalid_form([str(exc)])
        except Exception:
            self.internal_errors.append(f"{method} {path}\n{traceback.format_exc()}")
            # 400 rather than 5xx: discord.py would retry a 5xx for up to 25 s.
            response = _error(400, -1, "fake discord internal error (see fake.internal_errors)")
        self.request_log.append(LoggedRequest(method, path, response.status, time.monotonic()))
        self._notify()
        return response

    def _routes(self) -> list[tuple[str, str, Any, bool]]:
        """(methods, path regex, handler, needs the bot token)."""
        return [
            ("GET", r"/users/@me", self._get_me, True),
            ("GET", r"/users/(?P<uid>\d+)", self._get_user, True),
            ("POST", r"/users/@me/channels", self._create_dm, True),
            ("GET", r"/oauth2/applications/@me", self._get_app, True),
            ("GET", r"/gateway(/bot)?", self._get_gateway, False),
            ("GET PUT", r"/applications/(?P<app>\d+)(/guilds/(?P<gid>\d+))?/commands", self._commands, True),
            ("POST", r"/interactions/(?P<iid>\d+)/(?P<token>[^/]+)/callback", self._callback, False),
            ("POST", r"/webhooks/(?P<app>\d+)/(?P<token>[^/]+)", self._followup, False),
            (
                "GET PATCH DELETE",
                r"/webhooks/(?P<app>\d+)/(?P<token>[^/]+)/messages/(?P<mid>@original|\d+)",
                self._webhook_message,
                False,
            ),
            ("POST", r"/channels/(?P<cid>\d+)/messages", self._channel_send, True),
            (
                "GET PATCH DELETE",
                r"/channels/(?P<cid>\d+)/messages/(?P<mid>\d+)",
                self._channel_message,
                True,
            ),
            ("POST", r"/channels/(?P<cid>\d+)/typing", self._typing, True),
            ("GET", r"/channels/(?P<cid>\d+)", self._get_channel, True),
            ("GET", r"/guilds/(?P<gid>\d+)", self._get_guild, True),
            ("GET", r"/guilds/(?P<gid>\d+)/channels", self._get_guild_channels, True),
            ("GET", r"/guilds/(?P<gid>\d+)/roles", self._get_guild_roles, True),
            ("GET", r"/guilds/(?P<gid>\d+)/members/(?P<uid>\d+)", self._get_member, True),
        ]

    async def _route(
        self, request: web.Request, method: str, path: str, body: Any, files: _Files
    ) -> web.Response:
        for methods, pattern, handler, needs_bot in self._routes():
            m = re.fullmatch(pattern, path)
            if m is None or method not in methods.split():
                continue
            if needs_bot and request.headers.get("Authorization") != f"Bot {self.token}":
                return _error(401, 0, "401: Unauthorized")
            req = _Req(method, path, m.groupdict(), request.query, body, files)
            return await handler(req)
        self.unknown_routes.append((method, path))
        return _error(404, 10000, "Unknown")

    async def _serve_attachment(self, request: web.Request) -> web.StreamResponse:
        att = self.attachments.get(int(request.match_info["id"]))
        if att is None:
            return web.Response(status=404)
        return web.Response(body=att.data, content_type=att.content_type or "application/octet-stream")

    def _new_attachment(
        self,
        channel_id: int,
        filename: str,
        data: bytes,
        content_type: str | None = None,
        description: str | None = None,
    ) -> FakeAttachment:
        aid = self._snowflake()
        att = FakeAttachment(
            id=aid,
            filename=filename,
            data=bytes(data),
            content_type=content_type or mimetypes.guess_type(filename)[0],
            url=f"{self.base_url}/attachments/{channel_id}/{aid}/{filename}",
            description=description,
        )
        self.attachments[aid] = att
        return att

    # -- REST: messages -----------------------------------------------------------------

    def _message_problem(
        self, payload: dict[str, Any], files: _Files, *, creating: bool
    ) -> web.Response | None:
        """Discord's validation of a message body, the parts a bot can get wrong."""
        for _name, data, _type in files.values():
            if len(data) > self.attachment_size_limit:
                return _error(413, 40005, "Request entity too large")
        problems = []
        content = payload.get("content") or ""
        if len(content) > 2000:
            problems.append("content: Must be 2000 or fewer in length.")
        embeds = payload.get("embeds") or []
        if len(embeds) > 10:
            problems.append("embeds: Must be 10 or fewer in length.")
        too_long = any(len(e.get("description") or "") > 4096 for e in embeds)
        if too_long or sum(len(json.dumps(e)) for e in embeds) > 12000:
            problems.append("embeds: Embed size exceeds maximum size of 6000")
        components = payload.get("components") or []
        is_v2 = bool((payload.get("flags") or 0) & (1 << 15))
        if not is_v2 and len(components) > 5:
            problems.append("components: Must be 5 or fewer in length.")
        for c in _walk_components(components):
            if len(c.get("custom_id") or "") > 100:
                problems.append(f"components.custom_id: {c['custom_id']!r} must be 100 or fewer in length.")
        if len(files) > 10:
            problems.append("files: Must be 10 or fewer in length.")
        if problems:
            return _invalid_form(problems)
        extras = payload.get("sticker_ids") or payload.get("poll")
        if creating and not (content or embeds or components or files or extras):
            return _error(400, 50006, "Cannot send an empty message")
        return None

    def _create_message(
        self, channel_id: int, payload: dict[str, Any], files: _Files, *, source: str,
        ix: FakeInteraction | None = None, flags: int | None = None, msg_type: int = 0,
    ) -> FakeMessage:
        ch = self.channels[channel_id]
        msg = FakeMessage(
            id=self._snowflake(),
            channel_id=channel_id,
            guild_id=_opt_int(ch.get("guild_id")),
            author=self.users[self.bot_user_id],
            content=payload.get("content") or "",
            embeds=payload.get("embeds") or [],
            components=payload.get("components") or [],
            allowed_mentions=payload.get("allowed_mentions"),
            flags=flags if flags is not None else (payload.get("flags") or 0),
            type=msg_type,
            source=source,
            message_reference=payload.get("message_reference"),
        )
        msg.attachments = self._attachments_after(channel_id, [], payload, files)
        if ix is not None:
            msg.interaction_id = ix.id
            msg.webhook_id = self.app_id
            msg.interaction_metadata = {
                "id": str(ix.id),
                "type": ix.type,
                "user": self.users[ix.user_id],
                "authorizing_integration_owners": {"0": str(ix.guild_id)},
            }
        self.messages[msg.id] = msg
        return msg

    def _attachments_after(
        self, channel_id: int, current: list[FakeAttachment], payload: dict[str, Any], files: _Files
    ) -> list[FakeAttachment]:
        """Apply the ``attachments`` list: ids of current attachments are kept, small ids name
        uploaded ``files[n]``; without the list, uploads are appended (API v9 behaviour)."""
        if "attachments" not in payload:
            return current + [self._new_attachment(channel_id, *files[i]) for i in sorted(files)]
        keep = {a.id: a for a in current}
        out = []
        for entry in payload.get("attachments") or []:
            aid = int(entry["id"])
            if aid in keep:
                out.append(keep[aid])
            elif aid in files:
                name, data, ctype = files[aid]
                filename = entry.get("filename") or name
                out.append(self._new_attachment(channel_id, filename, data, ctype, entry.get("description")))
            else:
                raise _InvalidBody(f"attachments: {entry} names neither a kept attachment nor an upload")
        return out

    def _edit_message(self, msg: FakeMessage, payload: dict[str, Any], files: _Files, via: str) -> None:
        attachments = self._attachments_after(msg.channel_id, msg.attachments, payload, files)
        msg.edits.append(MessageEdit(time.monotonic(), payload, msg.snapshot(), via))
        if "content" in payload:
            msg.content = payload["content"] or ""
        for key in ("embeds", "components"):
            if key in payload:
                setattr(msg, key, payload[key] or [])
        if "allowed_mentions" in payload:
            msg.allowed_mentions = payload["allowed_mentions"]
        if "flags" in payload and payload["flags"] is not None:
            # Only SUPPRESS_EMBEDS (and friends) can change; ephemeral stays as it was.
            msg.flags = (msg.flags & EPHEMERAL) | (int(payload["flags"]) & ~(EPHEMERAL | LOADING))
        msg.flags &= ~LOADING  # the first edit of a deferred response ends "thinking..."
        msg.attachments = attachments
        msg.edited_timestamp = _now_iso()

    # -- REST: interactions and webhooks ------------------------------------------------

    async def _callback(self, req: _Req) -> web.Response:
        ix = self._by_id.get(int(req.params["iid"]))
        deadline = self.callback_deadline
        late = ix is not None and deadline is not None and time.monotonic() - ix.created_at > deadline
        if ix is None or ix.token != req.params["token"] or ix.expired or late:
            return _error(404, 10062, "Unknown interaction")
        if ix.callbacks:
            return _error(400, 40060, "Interaction has already been acknowledged.")
        ctype, data = req.body.get("type"), req.body.get("data") or {}
        allowed = {
            APPLICATION_COMMAND: {CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, MODAL},
            MESSAGE_COMPONENT: {
                CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, DEFERRED_UPDATE, UPDATE_MESSAGE, MODAL,
            },
            MODAL_SUBMIT: {CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, DEFERRED_UPDATE, UPDATE_MESSAGE},
            AUTOCOMPLETE: {AUTOCOMPLETE_RESULT},
            PING: {PONG},
        }[ix.type]
        if ctype not in allowed:
            problem = f"type: {ctype} not valid for interaction type {ix.type}"
            return _invalid_form([problem])
        message: FakeMessage | None = None
        if ctype in (CHANNEL_MESSAGE, UPDATE_MESSAGE):
            if problem := self._message_problem(data, req.files, creating=ctype == CHANNEL_MESSAGE):
                return problem
        if ctype == CHANNEL_MESSAGE:
            message = self._create_message(
                ix.channel_id, data, req.files, source="callback", ix=ix, msg_type=20
            )
        elif ctype == DEFERRED_CHANNEL_MESSAGE:
            flags = LOADING | ((data.get("flags") or 0) & EPHEMERAL)
            message = self._create_message(
                ix.channel_id, {}, {}, source="callback", ix=ix, flags=flags, msg_type=20
            )
        elif ctype in (DEFERRED_UPDATE, UPDATE_MESSAGE):
            # @original of a component interaction is the message the component is on.
            message = self.messages.get(ix.message_id) if ix.message_id else None
            if ctype == UPDATE_MESSAGE and message is not None:
                self._edit_message(message, data, req.files, "callback")
        # Recorded only now: a body refused above (_InvalidBody) leaves the interaction open.
        ix.callbacks.append(Callback(ctype, data, time.monotonic()))
        if message is not None:
            ix.original_id = message.id
        if req.query.get("with_response") not in ("1", "true", "True"):
            return _no_content()
        # discord.py >= 2.5 always asks with_response=1 and reads this (InteractionCallbackResponse):
        # interaction.id is required; response_message_id is where views of a reply get stored.
        answer: dict[str, Any] = {
            "interaction": {
                "id": str(ix.id),
                "type": ix.type,
                "response_message_loading": ctype == DEFERRED_CHANNEL_MESSAGE,
                "response_message_ephemeral": bool(message and message.ephemeral),
            },
            "resource": {"type": ctype},
        }
        if message is not None:
            answer["interaction"]["response_message_id"] = str(message.id)
            answer["resource"]["message"] = message.to_payload()
        return _json(answer)

    def _webhook_interaction(self, req: _Req) -> FakeInteraction | web.Response:
        if int(req.params["app"]) != self.app_id:
            return _error(404, 10015, "Unknown Webhook")
        ix = self._by_token.get(req.params["token"])
        if ix is None or ix.expired:
            return _error(401, 50027, "Invalid Webhook Token")
        if not ix.callbacks:
            return _error(404, 10015, "Unknown Webhook")  # follow-ups need a response first
        return ix

    async def _followup(self, req: _Req) -> web.Response:
        ix = self._webhook_interaction(req)
        if isinstance(ix, web.Response):
            return ix
        if problem := self._message_problem(req.body, req.files, creating=True):
            return problem
        original = ix.original
        if original is not None and original.loading:
            # A follow-up while the deferred response still shows "thinking..." resolves it: it
            # becomes that message, ephemeral or not as the defer said (discord-api-docs#2742).
            body = {**req.body, "flags": (req.body.get("flags") or 0) & ~EPHEMERAL}
            self._edit_message(original, body, req.files, "followup")
            msg = original
        else:
            msg = self._create_message(
                ix.channel_id, req.body, req.files, source="followup", ix=ix, msg_type=20
            )
        ix.followup_ids.append(msg.id)
        if req.query.get("wait") in ("1", "true", "True"):
            return _json(msg.to_payload())
        return _no_content()

    async def _webhook_message(self, req: _Req) -> web.Response:
        ix = self._webhook_interaction(req)
        if isinstance(ix, web.Response):
            return ix
        mid = ix.original_id if req.params["mid"] == "@original" else int(req.params["mid"])
        msg = self.messages.get(mid) if mid else None
        if msg is None or msg.deleted or (mid != ix.original_id and mid not in ix.followup_ids):
            return _error(404, 10008, "Unknown Message")
        if req.method == "DELETE":
            msg.deleted = True
            return _no_content()
        if req.method == "PATCH":
            if problem := self._message_problem(req.body, req.files, creating=False):
                return problem
            self._edit_message(msg, req.body, req.files, "webhook")
        return _json(msg.to_payload())

    # -- REST: channels, guilds, users, commands -----------------------------------------

    async def _channel_send(self, req: _Req) -> web.Response:
        cid = int(req.params["cid"])
        if cid not in self.channels:
            return _error(404, 10003, "Unknown Channel")
        if problem := self._message_problem(req.body, req.files, creating=True):
            return problem
        msg_type = 19 if req.body.get("message_reference") else 0
        msg = self._create_message(cid, req.body, req.files, source="channel", msg_type=msg_type)
        return _json(msg.to_payload())

    async def _channel_message(self, req: _Req) -> web.Response:
        msg = self.messages.get(int(req.params["mid"]))
        if msg is None or msg.deleted or msg.ephemeral or msg.channel_id != int(req.params["cid"]):
            return _error(404, 10008, "Unknown Message")
        if req.method == "DELETE":
            msg.deleted = True
            return _no_content()
        if req.method == "PATCH":
            if msg.author_id != self.bot_user_id:
                return _error(403, 50005, "Cannot edit a message authored by another user")
            if problem := self._message_problem(req.body, req.files, creating=False):
                return problem
            self._edit_message(msg, req.body, req.files, "channel")
        return _json(msg.to_payload())

    async def _typing(self, req: _Req) -> web.Response:
        return _no_content()

    async def _get_channel(self, req: _Req) -> web.Response:
        ch = self.channels.get(int(req.params["cid"]))
        return _json(ch) if ch else _error(404, 10003, "Unknown Channel")

    async def _create_dm(self, req: _Req) -> web.Response:
        uid = int(req.body["recipient_id"])
        if uid not in self._dm_channels:
            cid = self._dm_channels[uid] = self._snowflake()
            self.channels[cid] = {"id": str(cid), "type": 1, "recipients": [self.users[uid]]}
        return _json(self.channels[self._dm_channels[uid]])

    async def _get_guild(self, req: _Req) -> web.Response:
        gid = int(req.params["gid"])
        if gid not in self.guilds:
            return _error(404, 10004, "Unknown Guild")
        payload = self.guild_payload(gid)
        for key in ("channels", "members", "threads", "presences", "voice_states"):
            payload.pop(key)
        return _json(payload)

    async def _get_guild_channels(self, req: _Req) -> web.Response:
        guild = self.guilds.get(int(req.params["gid"]))
        if guild is None:
            return _error(404, 10004, "Unknown Guild")
        return _json([self.channels[c] for c in guild.channel_ids])

    async def _get_guild_roles(self, req: _Req) -> web.Response:
        guild = self.guilds.get(int(req.params["gid"]))
        return _json(list(guild.roles.values())) if guild else _error(404, 10004, "Unknown Guild")

    async def _get_member(self, req: _Req) -> web.Response:
        gid, uid = int(req.params["gid"]), int(req.params["uid"])
        if gid not in self.guilds or uid not in self.guilds[gid].members:
            return _error(404, 10007, "Unknown Member")
        return _json(self.member_payload(gid, uid))

    async def _get_me(self, req: _Req) -> web.Response:
        return _json({**self.users[self.bot_user_id], "verified": True, "mfa_enabled": False})

    async def _get_user(self, req: _Req) -> web.Response:
        user = self.users.get(int(req.params["uid"]))
        return _json(user) if user else _error(404, 10013, "Unknown User")

    async def _get_app(self, req: _Req) -> web.Response:
        return _json(self._app_payload())

    async def _get_gateway(self, req: _Req) -> web.Response:
        limit = {"total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1}
        return _json({"url": self.gateway_url, "shards": 1, "session_start_limit": limit})

    async def _commands(self, req: _Req) -> web.Response:
        if int(req.params["app"]) != self.app_id:
            return _error(403, 50001, "Missing Access")
        gid = _opt_int(req.params.get("gid"))
        if gid is not None and gid not in self.guilds:
            return _error(403, 50001, "Missing Access")
        current = self.guild_commands.get(gid, []) if gid else self.global_commands
        if req.method == "GET":
            return _json(current)
        if problems := _command_problems(req.body):
            return _invalid_form(problems)
        ids = {(c["name"], c.get("type", 1)): c["id"] for c in current}  # Discord keeps ids stable
        stored = []
        for c in req.body:
            ctype = c.get("type", 1)
            cmd = {
                "options": [],
                "default_member_permissions": None,
                "dm_permission": True,
                "nsfw": False,
                "contexts": None,
                "integration_types": [0],
                **c,
                "id": ids.get((c["name"], ctype)) or str(self._snowflake()),
                "application_id": str(self.app_id),
                "version": str(self._snowflake()),
                "type": ctype,
                "description": c.get("description") or "",
            }
            if gid:
                cmd["guild_id"] = str(gid)
            stored.append(cmd)
        if gid:
            self.guild_commands[gid] = stored
        else:
            self.global_commands = stored
        return _json(stored)


class _InvalidBody(Exception):
    """A request body Discord would refuse with 400/50035 (found deep in a handler)."""


@dataclass
class _Req:
    method: str
    path: str
    params: dict[str, Any]
    query: Any
    body: Any
    files: _Files


async def _read_body(request: web.Request) -> tuple[Any, _Files]:
    """JSON body, or a multipart ``payload_json`` + ``files[n]`` parts as discord.py sends."""
    files: _Files = {}
    if request.content_type == "multipart/form-data":
        payload: Any = {}
        async for part in await request.multipart():
            if part.name == "payload_json":
                payload = json.loads(await part.text())
            elif m := re.fullmatch(r"files\[(\d+)\]", part.name or ""):
                files[int(m[1])] = (part.filename or f"file{m[1]}", bytes(await part.read()), None)
        return payload, files
    raw = await request.read()
    return (json.loads(raw) if raw else {}), files


def _walk_components(components: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Depth-first over action rows, containers, sections (accessory) and labels (component)."""
    stack = list(reversed(components))
    while stack:
        c = stack.pop()
        yield c
        children = list(c.get("components") or [])
        for key in ("component", "accessory"):
            if c.get(key):
                children.append(c[key])
        stack.extend(reversed(children))


def _opt_int(value: Any) -> int | None:
    return int(value) if value is not None else None


def _default_fault_body(status: int, retry_after: float) -> dict[str, Any]:
    if status == 429:
        return {"message": "You are being rate limited.", "retry_after": retry_after, "global": False}
    known = {
        400: (50035, "Invalid Form Body"),
        401: (0, "401: Unauthorized"),
        403: (50013, "Missing Permissions"),
        404: (10000, "Unknown"),
        413: (40005, "Request entity too large"),
    }
    code, message = known.get(status, (0, f"{status}: fake failure"))
    return {"code": code, "message": message}


_CHAT_NAME = re.compile(r"^[-_\w]{1,32}$")


def _command_problems(commands: Any) -> list[str]:
    """The checks Discord applies on a bulk overwrite that a bot's code can fail."""
    if not isinstance(commands, list):
        return ["body: must be a list of commands"]
    problems, seen = [], set()
    for i, c in enumerate(commands):
        name, ctype = c.get("name") or "", c.get("type", 1)
        if (name, ctype) in seen:
            problems.append(f"{i}: duplicate command name {name!r}")
        seen.add((name, ctype))
        if ctype == 1:
            if not _CHAT_NAME.match(name) or name != name.lower():
                problems.append(f"{i}.name: {name!r} is not a valid command name")
            if not 1 <= len(c.get("description") or "") <= 100:
                problems.append(f"{i}.description: must be 1-100 characters")
            problems += _option_problems(f"{i}", c.get("options") or [])
        elif not 1 <= len(name) <= 32 or c.get("description"):
            problems.append(f"{i}: context menu needs a 1-32 character name and no description")
    return problems


def _option_problems(where: str, options: list[dict[str, Any]]) -> list[str]:
    problems = []
    if len(options) > 25:
        problems.append(f"{where}.options: must be 25 or fewer")
    optional_seen = False
    for j, o in enumerate(options):
        w = f"{where}.options.{j}"
        name = o.get("name") or ""
        if not _CHAT_NAME.match(name) or name != name.lower():
            problems.append(f"{w}.name: {name!r} is not a valid option name")
        if not 1 <= len(o.get("description") or "") <= 100:
            problems.append(f"{w}.description: must be 1-100 characters")
        if len(o.get("choices") or []) > 25:
            problems.append(f"{w}.choices: must be 25 or fewer")
        if o.get("type") in (1, 2):
            problems += _option_problems(w, o.get("options") or [])
        elif o.get("required"):
            if optional_seen:
                problems.append(f"{w}: required options must be placed before non-required options")
        else:
            optional_seen = True
    return problems


@contextlib.contextmanager
def point_discord_at(fake: FakeDiscord) -> Iterator[None]:
    """Point discord.py's REST base and default gateway at ``fake``; restores them on exit.
    Both are process-global class attributes, so clients must not outlive the block."""
    import discord.gateway
    import discord.http

    old_base, old_gateway = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    discord.http.Route.BASE = fake.api_url
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)
    try:
        yield
    finally:
        discord.http.Route.BASE = old_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gateway


class _ScaledAsyncio:
    """Stands in for the ``asyncio`` module inside discord.py's HTTP, webhook and client
    modules. Only ``sleep`` differs, and only when called from the retry/backoff code paths
    named in ``_SCALED_CALLERS``; e.g. ``WebhookMessage.delete(delay=...)`` keeps its delay."""

    def __init__(self, factor: float) -> None:
        self._factor = factor

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    def sleep(self, delay: float, result: Any = None) -> Any:
        if sys._getframe(1).f_code.co_name in _SCALED_CALLERS:
            delay *= self._factor
        return asyncio.sleep(delay, result)


# HTTPClient.request / AsyncWebhookAdapter.request (5xx and 429 retries), Ratelimit._refresh
# and AsyncDeferredLock.__aexit__ (bucket waits), Client.before_identify_hook (5 s before
# every re-IDENTIFY), Client.connect (reconnect backoff).
_SCALED_CALLERS = {"request", "_refresh", "__aexit__", "before_identify_hook", "connect"}


@contextlib.contextmanager
def fast_discord_sleeps(factor: float = 0.0) -> Iterator[None]:
    """Scale discord.py's retry and backoff waits (5xx: 1, 3, 5, 7, 9 s; 429: retry_after;
    5 s before a re-IDENTIFY; reconnect backoff) so such tests run in milliseconds."""
    import discord.client
    import discord.http
    import discord.webhook.async_

    modules = (discord.http, discord.webhook.async_, discord.client)
    saved = [m.asyncio for m in modules]
    for m in modules:
        m.asyncio = _ScaledAsyncio(factor)  # type: ignore[assignment]
    try:
        yield
    finally:
        for m, original in zip(modules, saved):
            m.asyncio = original  # type: ignore[assignment]
