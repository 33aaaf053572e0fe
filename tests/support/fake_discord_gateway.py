"""The gateway (websocket) half of the fake Discord in ``fake_discord.py``.

It speaks just enough of Discord's gateway v10 for an unmodified discord.py client:
HELLO -> IDENTIFY -> READY + GUILD_CREATE, heartbeats, dispatches with sequence numbers, and
RESUME (replaying what the client missed, then RESUMED) or INVALID_SESSION when the session
was dropped as not resumable. Everything is plain JSON text frames; discord.py asks for
``compress=zlib-stream`` but only decompresses binary frames, so text is fine.

The payloads themselves (READY, guilds, members) come from callables handed in by
``FakeDiscord``, so this module knows the protocol and nothing about the fake's state.
It also builds the ``data`` of INTERACTION_CREATE events from registered command schemas
(``chat_input_data``) and modal layouts (``modal_submit_data``).
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

# Gateway opcodes (https://discord.com/developers/docs/topics/opcodes-and-status-codes)
DISPATCH = 0
HEARTBEAT = 1
IDENTIFY = 2
PRESENCE_UPDATE = 3
RESUME = 6
RECONNECT = 7
REQUEST_GUILD_MEMBERS = 8
INVALID_SESSION = 9
HELLO = 10
HEARTBEAT_ACK = 11

# Close code discord.py treats as "reconnect and RESUME" (anything but 1000 and 4004, 4010-4014).
CLOSE_RESUMABLE = 4000
CLOSE_AUTH_FAILED = 4004


@dataclass
class GatewaySession:
    """One identified session; survives dropped connections until invalidated."""

    id: str
    intents: int | None
    shard: list[int] | None
    seq: int = 0
    # Every dispatch of this session, so a RESUME can replay what the client missed.
    sent: list[dict[str, Any]] = field(default_factory=list)
    resumable: bool = True


class FakeGateway:
    """Serves ``/gateway`` websockets; one live connection (one shard) at a time."""

    def __init__(
        self,
        *,
        token: str,
        ready_payload: Callable[[GatewaySession], dict[str, Any]],
        guild_payloads: Callable[[], list[dict[str, Any]]],
        member_payloads: Callable[[int], list[dict[str, Any]]],
        on_change: Callable[[], None],
        heartbeat_interval_ms: int = 41_250,
    ) -> None:
        self.token = token
        self._ready_payload = ready_payload
        self._guild_payloads = guild_payloads
        self._member_payloads = member_payloads
        self._on_change = on_change
        self.heartbeat_interval_ms = heartbeat_interval_ms

        self.session: GatewaySession | None = None
        self.identify_count = 0
        self.resume_count = 0
        self.connection_count = 0
        self.received: list[dict[str, Any]] = []  # every payload the client sent, in order
        self._ws: web.WebSocketResponse | None = None  # socket bound to the session, if any
        self._open: set[web.WebSocketResponse] = set()
        self._live = asyncio.Event()  # set once READY+GUILD_CREATE or RESUMED went out
        self._lock = asyncio.Lock()  # keeps seq order == wire order

    @property
    def connected(self) -> bool:
        """True while a client is identified (or resumed) on a live socket."""
        return self._live.is_set()

    async def wait_connected(self, timeout: float = 10) -> None:
        try:
            await asyncio.wait_for(self._live.wait(), timeout)
        except TimeoutError:
            raise TimeoutError(
                f"no client identified on the fake gateway within {timeout}s "
                f"(connections={self.connection_count}, received ops="
                f"{[p.get('op') for p in self.received[-10:]]})"
            ) from None

    async def dispatch(self, event: str, data: dict[str, Any]) -> int:
        """Send an op-0 event; while disconnected it is kept for replay on RESUME."""
        async with self._lock:
            return await self._dispatch_locked(event, data)

    async def _dispatch_locked(self, event: str, data: dict[str, Any]) -> int:
        session = self.session
        if session is None:
            raise RuntimeError(f"cannot dispatch {event}: no client has identified yet")
        session.seq += 1
        frame = {"op": DISPATCH, "t": event, "s": session.seq, "d": data}
        session.sent.append(frame)
        if self._ws is not None and not self._ws.closed:
            try:
                await self._ws.send_str(json.dumps(frame))
            except ConnectionResetError:
                pass  # the client just went away; a RESUME replays this frame
        return session.seq

    async def drop(self, *, resumable: bool = True, code: int = CLOSE_RESUMABLE) -> None:
        """Close the live socket. discord.py reconnects at once and sends RESUME; if the
        session is not resumable it gets INVALID_SESSION and identifies afresh."""
        ws, self._ws = self._ws, None
        self._live.clear()
        if self.session is not None and not resumable:
            self.session.resumable = False
        if ws is not None and not ws.closed:
            await ws.close(code=code, message=b"dropped by fake")
        self._on_change()

    async def close_all(self) -> None:
        self._ws = None
        self._live.clear()
        for ws in list(self._open):
            if not ws.closed:
                await ws.close(code=1001, message=b"fake discord stopping")

    # -- the protocol -----------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=0, timeout=2.0)
        await ws.prepare(request)
        self.connection_count += 1
        self._open.add(ws)
        try:
            await self._send(ws, {"op": HELLO, "d": {"heartbeat_interval": self.heartbeat_interval_ms}})
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                payload = json.loads(msg.data)
                self.received.append(payload)
                await self._on_payload(ws, payload)
        finally:
            self._open.discard(ws)
            if self._ws is ws:
                self._ws = None
                self._live.clear()
            self._on_change()
        return ws

    async def _on_payload(self, ws: web.WebSocketResponse, payload: dict[str, Any]) -> None:
        op, d = payload.get("op"), payload.get("d")
        if op == HEARTBEAT:
            await self._send(ws, {"op": HEARTBEAT_ACK})
        elif op == IDENTIFY:
            await self._identify(ws, d)
        elif op == RESUME:
            await self._resume(ws, d)
        elif op == REQUEST_GUILD_MEMBERS:
            # Only sent when the client has the members intent and chunks at startup.
            members = self._member_payloads(int(d["guild_id"]))
            chunk = {
                "guild_id": str(d["guild_id"]),
                "members": members,
                "chunk_index": 0,
                "chunk_count": 1,
                "not_found": [],
                "presences": [],
            }
            if d.get("nonce") is not None:
                chunk["nonce"] = d["nonce"]
            await self.dispatch("GUILD_MEMBERS_CHUNK", chunk)
        # PRESENCE_UPDATE, voice state and anything else: accepted and ignored.
        self._on_change()

    async def _identify(self, ws: web.WebSocketResponse, d: dict[str, Any]) -> None:
        if d.get("token") != self.token:
            await ws.close(code=CLOSE_AUTH_FAILED, message=b"Authentication failed.")
            return
        async with self._lock:
            self.session = GatewaySession(
                id=secrets.token_hex(16), intents=d.get("intents"), shard=d.get("shard")
            )
            self._ws = ws
            self.identify_count += 1
            await self._dispatch_locked("READY", self._ready_payload(self.session))
            for guild in self._guild_payloads():
                await self._dispatch_locked("GUILD_CREATE", guild)
            self._live.set()

    async def _resume(self, ws: web.WebSocketResponse, d: dict[str, Any]) -> None:
        session = self.session
        if (
            session is None
            or not session.resumable
            or d.get("session_id") != session.id
            or d.get("token") != self.token
        ):
            # d=false: "not resumable"; discord.py closes and identifies from scratch.
            await self._send(ws, {"op": INVALID_SESSION, "d": False})
            return
        async with self._lock:
            self._ws = ws
            self.resume_count += 1
            last_seen = d.get("seq") or 0
            for frame in session.sent:
                if frame["s"] > last_seen:
                    await ws.send_str(json.dumps(frame))
            await self._dispatch_locked("RESUMED", {})
            self._live.set()

    @staticmethod
    async def _send(ws: web.WebSocketResponse, payload: dict[str, Any]) -> None:
        if not ws.closed:
            await ws.send_str(json.dumps(payload))


# -- INTERACTION_CREATE data ---------------------------------------------------------------

SUBCOMMAND, SUBCOMMAND_GROUP = 1, 2
STRING, INTEGER, BOOLEAN, NUMBER = 3, 4, 5, 10

# resolve(option_type, value, resolved) -> the option's wire value; fills ``resolved``.
Resolver = Callable[[int, Any, dict[str, Any]], str]


def chat_input_data(
    cmd: dict[str, Any],
    values: dict[str, Any],
    *,
    subcommand: str | None = None,
    resolve: Resolver | None = None,
    focused: str | None = None,
) -> dict[str, Any]:
    """``data`` of a CHAT_INPUT interaction for the registered command ``cmd``, options typed
    and checked against its schema the way the Discord client would. With ``focused`` it is
    an autocomplete: values go as typed, unchecked, and ``focused`` is flagged."""
    where = f"/{cmd['name']}"
    schema, path = cmd.get("options") or [], []
    for part in (subcommand or "").split():
        subs = [o for o in schema if o["name"] == part and o["type"] in (SUBCOMMAND, SUBCOMMAND_GROUP)]
        sub = subs[0] if subs else None
        if sub is None:
            raise ValueError(f"{where} has no subcommand (group) {part!r}")
        path.append(sub)
        schema = sub.get("options") or []
    if any(o["type"] in (SUBCOMMAND, SUBCOMMAND_GROUP) for o in schema):
        raise ValueError(f"{where} needs subcommand=...: {[o['name'] for o in schema]}")

    by_name = {o["name"]: o for o in schema}
    unknown = set(values) - set(by_name)
    if unknown:
        raise ValueError(f"{where} has no option(s) {sorted(unknown)}; it has {list(by_name)}")
    resolved: dict[str, Any] = {}
    if focused is not None:
        options = [
            {"type": by_name[k]["type"], "name": k, "value": v, **({"focused": True} if k == focused else {})}
            for k, v in values.items()
        ]
    else:
        missing = [o["name"] for o in schema if o.get("required") and values.get(o["name"]) is None]
        if missing:
            raise ValueError(f"{where}: required option(s) {missing} missing")
        options = []
        for opt in schema:  # in schema order, as the Discord client sends them
            value = values.get(opt["name"])
            if value is None:
                continue
            if opt["type"] in (STRING, INTEGER, NUMBER, BOOLEAN):
                value = _scalar_option(f"{where} {opt['name']}", opt, value)
            elif resolve is None:
                raise ValueError(f"{where} {opt['name']}: option type {opt['type']} needs a resolver")
            else:
                value = resolve(opt["type"], value, resolved)
            options.append({"type": opt["type"], "name": opt["name"], "value": value})
    for sub in reversed(path):
        options = [{"type": sub["type"], "name": sub["name"], "options": options}]

    data: dict[str, Any] = {"id": cmd["id"], "name": cmd["name"], "type": 1, "options": options}
    if resolved:
        data["resolved"] = resolved
    if cmd.get("guild_id"):
        data["guild_id"] = cmd["guild_id"]  # discord.py looks guild commands up by it
    return data


def _scalar_option(where: str, opt: dict[str, Any], value: Any) -> Any:
    if opt["type"] == BOOLEAN:
        return bool(value)
    value = {STRING: str, INTEGER: int, NUMBER: float}[opt["type"]](value)
    choices = [c["value"] for c in opt.get("choices") or []]
    if choices and value not in choices:
        raise ValueError(f"{where}: {value!r} is not one of the choices {choices}")
    if opt["type"] == STRING:
        size, lo, hi = len(value), opt.get("min_length"), opt.get("max_length")
    else:
        size, lo, hi = value, opt.get("min_value"), opt.get("max_value")
    if (lo is not None and size < lo) or (hi is not None and size > hi):
        raise ValueError(f"{where}: {value!r} outside [{lo}, {hi}]")
    return value


def modal_submit_data(modal: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """``data`` of a MODAL_SUBMIT for the modal the bot sent (callback type 9): same layout
    (action rows or labels), text inputs get ``value``, selects (list values) ``values``."""

    def answer(c: dict[str, Any]) -> dict[str, Any]:
        if c.get("type") == 1:  # action row
            return {"type": 1, "components": [answer(x) for x in c.get("components", [])]}
        if c.get("type") == 18:  # label wrapping one input
            return {"type": 18, "component": answer(c["component"])}
        value = values.get(c.get("custom_id", ""), c.get("value", ""))
        key = "values" if isinstance(value, list) else "value"
        return {"type": c["type"], "custom_id": c.get("custom_id"), key: value}

    return {"custom_id": modal["custom_id"], "components": [answer(c) for c in modal.get("components", [])]}
