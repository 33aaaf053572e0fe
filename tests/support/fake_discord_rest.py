"""The REST half of the fake Discord in ``fake_discord.py``: ``FakeDiscordRest``, a mixin that
``FakeDiscord`` inherits from. It holds the JSON payloads Discord serves (members, guilds, READY,
the application, an interaction's ``resolved`` options) and the /api/v10 route handlers:
plumbing (``_handle_api``, ``_take_fault``, ``_routes``, attachments), messages (validation,
create, edit), interaction callbacks and webhooks, and channels, guilds, users and command
registration. All state lives on the FakeDiscord instance (``FakeDiscord.__init__``).
"""

from __future__ import annotations

import json
import mimetypes
import re
import time
import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from support.fake_discord_records import (
    ALL_PERMISSIONS,
    APPLICATION_COMMAND,
    AUTOCOMPLETE,
    AUTOCOMPLETE_RESULT,
    CHANNEL_MESSAGE,
    DEFERRED_CHANNEL_MESSAGE,
    DEFERRED_UPDATE,
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
    FakeAttachment,
    FakeInteraction,
    FakeMessage,
    Fault,
    LoggedRequest,
    MessageEdit,
    _error,
    _Files,
    _invalid_form,
    _json,
    _no_content,
    _now_iso,
    _opt_int,
    _perm_str,
    _sid,
    _walk_components,
)

if TYPE_CHECKING:
    from support.fake_discord_gateway import GatewaySession


class FakeDiscordRest:
    """REST routes and payloads of ``FakeDiscord`` (a mixin: all state lives on the instance)."""


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
            "preferred_locale": self.guild_locales.get(guild_id, "en-US"),
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

    # -- REST: plumbing -----------------------------------------------------------------

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        method, path = request.method, "/" + request.match_info["tail"]
        fault: Fault | None = None
        response: web.Response | None = None
        try:
            body, files = await _read_body(request)  # read whole even if dropped: see _drop
            fault = self._take_fault(method, path)
            if fault is None or fault.after_processing:
                response = await self._route(request, method, path, body, files)
            elif not fault.drop:
                response = fault.response()
        except _InvalidBody as exc:
            response = _invalid_form([str(exc)])
        except Exception:
            self.internal_errors.append(f"{method} {path}\n{traceback.format_exc()}")
            # 400 rather than 5xx: discord.py would retry a 5xx for up to 25 s.
            response = _error(400, -1, "fake discord internal error (see fake.internal_errors)")
        dropped = fault is not None and fault.drop
        status = DROPPED if dropped or response is None else response.status
        self.request_log.append(LoggedRequest(method, path, status, time.monotonic()))
        self._notify()
        if dropped or response is None:  # None only for a drop before processing
            return _drop(request)
        return response

    def _take_fault(self, method: str, path: str) -> Fault | None:
        """The first fault matching the request, with the hit counted (and used up when its
        ``times`` are), or None."""
        for fault in self.faults:
            if fault.method in ("*", method) and fault.pattern.search(path):
                fault.hits += 1
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self.faults.remove(fault)
                return fault
        return None

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
        if original is not None and original.loading and not original.deleted:
            # A follow-up while the deferred response still shows "thinking..." resolves it: it
            # becomes that message, ephemeral or not as the defer said (discord-api-docs#2742). Once
            # that message is deleted, a follow-up is a message of its own, with its own flags.
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
        nonce = req.body.get("nonce") if req.body.get("enforce_nonce") else None
        if nonce is not None:
            # Discord answers a repeat of the same nonce (within a few minutes) with the first message.
            for earlier in self.messages.values():
                if earlier.channel_id == cid and earlier.nonce == nonce and earlier.source == "channel":
                    return _json(earlier.to_payload())
        msg_type = 19 if req.body.get("message_reference") else 0
        msg = self._create_message(cid, req.body, req.files, source="channel", msg_type=msg_type)
        msg.nonce = nonce
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


def _drop(request: web.Request) -> web.StreamResponse:
    """Close the request's TCP connection without answering (drop_next). The request body was
    read whole first, so the close is a clean FIN: the client's read of the status line hits EOF
    and aiohttp raises ServerDisconnectedError (closing with unread input would send a RST).
    aiohttp's server then fails to write the response returned here (ConnectionResetError,
    which it takes for a client gone away: a debug log, no traceback), stops serving that
    connection, and keeps serving new ones."""
    transport = request.transport
    if transport is not None:
        transport.close()
    return web.Response(status=204)


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
