"""Records and constants of the fake Discord in ``fake_discord.py``.

What the fake stores and a test asserts on: FakeMessage (with its MessageEdit history and
FakeAttachment files), FakeInteraction (with the Callback answers the bot gave), Fault (an
injected failure), FakeGuild, LoggedRequest (status DROPPED: connection closed, no answer);
Discord's flag, permission and interaction/callback type constants; and the small helpers these
and the REST routes share (JSON/error responses, snowflakes, id coercion, component walking).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from aiohttp import web

if TYPE_CHECKING:
    from support.fake_discord import FakeDiscord


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
    return datetime.now(UTC).isoformat()


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


# LoggedRequest.status (and Fault.status) of a request whose connection drop_next() closed
# instead of answering: the client got no HTTP status at all.
DROPPED = 0


class LoggedRequest(NamedTuple):
    method: str
    path: str  # relative to /api/v10, without the query
    status: int  # DROPPED (0): no answer, the connection was closed (drop_next)
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
    nonce: str | None = None  # a channel post's enforced nonce (Discord deduplicates on it)

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
    """An injected failure (fail_next, drop_next) for requests matching ``method`` and ``pattern``."""

    method: str  # "*" for any
    pattern: re.Pattern[str]  # searched in the path relative to /api/v10, without the query
    status: int  # DROPPED for drop faults
    body: Any
    headers: dict[str, str]
    remaining: int | None  # None: until clear_faults()
    hits: int = 0
    drop: bool = False  # close the connection instead of answering (drop_next)
    after_processing: bool = False  # drop only: apply the request first, then lose the answer

    def response(self) -> web.Response:
        """The answer of a fail_next fault (drop faults have none)."""
        if isinstance(self.body, (dict, list)):
            return _json(self.body, self.status, self.headers)
        return web.Response(status=self.status, text=str(self.body), headers=self.headers)


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
