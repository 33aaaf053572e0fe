"""A fake Discord (REST + gateway) on 127.0.0.1 for end-to-end tests of a discord.py bot.

The real, unmodified discord.py client logs in to it, syncs commands, receives interactions the
test sends "as a user", and everything the bot does lands in plain records the test can assert on::

    async with FakeDiscord() as fake, fake.running(bot):      # bot built with guild_ready_timeout=0
        ix = await fake.slash("draw", {"prompt": "a cat"})
        [result] = await ix.wait_followups(1)
        click = await fake.click(result, result.custom_ids[0])
        await click.wait_response()

What is where:
  fake_discord.py          FakeDiscord: lifecycle and ``running(client)``; ``wait_for`` and
                           logged-error capture; world building (users, guilds, channels, roles,
                           members); fault injection (fail_next: an HTTP error answer;
                           drop_next: the TCP connection closed instead of an answer, before or
                           after the request is applied; expire_token; drop_gateway); acting as
                           a user (slash, autocomplete, context_menu, user_command, click,
                           select, submit_modal); helpers point_discord_at (Route.BASE +
                           DEFAULT_GATEWAY) and fast_discord_sleeps
  fake_discord_records.py  records FakeMessage, FakeAttachment, MessageEdit, FakeInteraction,
                           Callback, Fault, FakeGuild, LoggedRequest; constants (flags,
                           permissions, interaction and callback types); shared small helpers
  fake_discord_rest.py     FakeDiscordRest (mixin of FakeDiscord): JSON payloads (members,
                           guilds, READY, resolved options) and the REST routes
  fake_discord_gateway.py  the websocket protocol and INTERACTION_CREATE ``data`` builders
Every public name of the records module is re-exported here: import from ``fake_discord``.

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
import logging
import re
import secrets
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import yarl
from aiohttp import web

from support.fake_discord_gateway import (
    FakeGateway,
    GatewaySession,
    chat_input_data,
    modal_submit_data,
)

# Re-exported: tests import the records and constants from here.
from support.fake_discord_records import (
    ADMINISTRATOR,
    ALL_PERMISSIONS,
    APPLICATION_COMMAND,
    AUTOCOMPLETE,
    AUTOCOMPLETE_RESULT,
    CHANNEL_MESSAGE,
    DEFAULT_APP_PERMISSIONS,
    DEFAULT_EVERYONE_PERMISSIONS,
    DEFERRED_CHANNEL_MESSAGE,
    DEFERRED_UPDATE,
    DISCORD_EPOCH_MS,
    DROPPED,
    EPHEMERAL,
    LOADING,
    MESSAGE_COMPONENT,
    MODAL,
    MODAL_SUBMIT,
    PING,
    PONG,
    UPDATE_MESSAGE,
    Callback,
    DiscordLoggedError,
    FakeAttachment,
    FakeGuild,
    FakeInteraction,
    FakeMessage,
    Fault,
    LoggedRequest,
    MessageEdit,
    _default_fault_body,
    _ErrorCollector,
    _now_iso,
    _opt_int,
    _perm_str,
    _sid,
    _Snowflakes,
)
from support.fake_discord_rest import FakeDiscordRest


class FakeDiscord(FakeDiscordRest):
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
        self.user_locales: dict[int, str] = {}  # each user's client language (default en-US)
        self.guild_locales: dict[int, str] = {}  # each server's preferred locale (default en-US)
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

    def add_channel(self, name: str, *, guild_id: int | None = None, channel_id: int | None = None,
                    nsfw: bool = False) -> int:
        """A text channel; ``nsfw=True`` makes it age-restricted."""
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
            "nsfw": nsfw,
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

    def drop_next(
        self, method: str, path_regex: str, times: int | None = 1, *, after_processing: bool = False
    ) -> Fault:
        """Close the TCP connection instead of answering the next ``times`` requests matched as
        by fail_next (``times=None``: until clear_faults()). The client's aiohttp raises
        ``ServerDisconnectedError`` (a ``ClientConnectionError``), which discord.py lets through
        to the caller: it retries only OSErrors with errno 54/10054 (resets on macOS/Windows).
        ``after_processing=False``: the request is not applied. ``True``: it is (the message is
        created, edited, deleted...) and only the answer is lost, as when Discord did the work
        but the response never arrived. Logged in ``request_log`` with status DROPPED (0).

        aiohttp's client itself retries an idempotent request (GET, PUT, DELETE, HEAD, OPTIONS)
        once after a dropped connection: to make one fail, use ``times=2``; with
        ``after_processing=True`` its retry sees the applied state (a DELETE's retry gets 404).
        POST and PATCH are never retried."""
        fault = Fault(
            method.upper(), re.compile(path_regex), DROPPED, None, {}, times,
            drop=True, after_processing=after_processing,
        )
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
            "guild": {"id": str(gid), "locale": self.guild_locales.get(gid, "en-US"), "features": []},
            "channel_id": str(cid),
            "channel": {**self.channels[cid], "permissions": _perm_str(perms)},
            "member": self.member_payload(gid, uid, roles=roles, permissions=perms),
            "token": token,
            "version": 1,
            "app_permissions": str(self.app_permissions),
            "locale": self.user_locales.get(uid, "en-US"),
            "guild_locale": self.guild_locales.get(gid, "en-US"),
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
