"""Bans: who may not use zbot, in one server (guild_id) or in every one (None, bot owners only).

A ban stops a Discord user's requests at admission (Service.submit) with one short sentence; it has a
reason, and may expire (`expires_at`): past it, it no longer applies, with nothing to run. Bans are rows
of the database, so they outlast restarts, and `zbot ban` on the same file applies at once. Every ban
and unban is kept in `bans_audit` by triggers (migration 0010), as `settings_audit` keeps settings.

Who may: a bot owner anywhere; a manager of a server in that server (`Actor.manages`). Bot owners
themselves can't be banned. HTTP keys and the command line are not Discord users: bans don't apply there.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass

from zbot.core.jobs import BadInput, Refused, utc
from zbot.core.store import Store

MAX_DAYS = 3650
REASON_LIMIT = 200  # characters kept of a reason: it is shown in one line to the member and the admins
COMMAND_LINE = 0  # the actor id of `zbot ban`


@dataclass(frozen=True)
class Actor:
    """Who bans or unbans: a Discord user (or COMMAND_LINE), whether a bot owner, and the server they
    manage, if any (the server the command came from, when they have Manage Server there)."""

    user_id: int
    owner: bool = False
    manages: int | None = None

    def may_ban_in(self, guild_id: int | None) -> bool:
        return self.owner or (guild_id is not None and guild_id == self.manages)


@dataclass(frozen=True)
class Ban:
    guild_id: int | None  # None: every server
    user_id: int
    reason: str
    expires_at: float | None  # None: until it is lifted
    banned_by: int
    created_at: float


@dataclass(frozen=True)
class BanEvent:
    """One row of the audit: a ban given (again) or lifted."""

    at: float
    guild_id: int | None
    user_id: int
    action: str  # "ban" or "unban"
    reason: str
    expires_at: float | None
    actor_id: int


class Banned(Refused):
    """A request from a banned user; retry_at is when the ban ends (None: until it is lifted)."""

    kind = "banned"


def refusal(ban: Ban) -> Banned:
    """The one line a banned member is told; Discord adds when the ban ends (as "Try again in 3 days")."""
    ends = utc(ban.expires_at) if ban.expires_at is not None else None
    # The reason is someone's free text: isolated (Unicode FSI ... PDI), so that right-to-left text in it
    # can't turn the sentence around, and so that a translator never takes it for a sentence of its own.
    reason = f"\u2068{ban.reason}\u2069"
    if ban.guild_id is None:
        if ban.reason:
            return Banned("ban.everywhere.reason", {"reason": reason}, ends)
        return Banned("ban.everywhere", retry_at=ends)
    if ban.reason:
        return Banned("ban.here.reason", {"reason": reason}, ends)
    return Banned("ban.here", retry_at=ends)


_COLUMNS = "guild_id, user_id, reason, expires_at, banned_by, created_at"
_STANDING = "lifted_at IS NULL AND (expires_at IS NULL OR expires_at > ?)"


class Bans:
    def __init__(self, store: Store, *, owners: Collection[int] = (), clock=time.time):
        self.store = store
        self.owners = frozenset(owners)  # ZBOT_ADMIN_IDS: never banned
        self.clock = clock

    async def check(self, user_id: int, guild_id: int | None) -> None:
        """Raise Banned if a ban stops this user in this server (or everywhere)."""
        ban = await self.standing(user_id, guild_id)
        if ban is not None:
            raise refusal(ban)

    async def standing(self, user_id: int, guild_id: int | None) -> Ban | None:
        """The ban that applies to this user here: one for every server first, then the longest."""
        if user_id in self.owners:
            return None
        rows = await self.store.query(
            f"SELECT {_COLUMNS} FROM bans WHERE user_id = ? AND (guild_id IS NULL OR guild_id = ?) AND {_STANDING} "
            "ORDER BY guild_id IS NOT NULL, expires_at IS NOT NULL, expires_at DESC LIMIT 1",
            (user_id, guild_id, self.clock()))
        return Ban(*rows[0]) if rows else None

    async def ban(self, actor: Actor, user_id: int, guild_id: int | None, reason: str = "",
                  days: int | None = None, *, again: bool = True) -> Ban:
        """Ban `user_id` in `guild_id` (None: every server) for `days` (None: until lifted). A standing
        ban there is replaced (its reason and end), unless not `again`: then BadInput."""
        self._may(actor, guild_id)
        if user_id in self.owners:
            raise BadInput("ban.owner")
        if days is not None and not 1 <= days <= MAX_DAYS:
            raise BadInput("ban.days", {"most": MAX_DAYS})
        now = self.clock()
        reason = " ".join(reason.split())[:REASON_LIMIT]
        expires_at = now + days * 86400 if days is not None else None
        # One statement: the ban and, by trigger, its audit row; the conflict target is the unique index.
        # Not `again`: a ban standing there is left as it is (no row changes).
        only_if = "" if again else "WHERE bans.lifted_at IS NOT NULL OR bans.expires_at <= excluded.created_at"
        cursor = await self.store.write(
            f"INSERT INTO bans ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (user_id, ifnull(guild_id, 0)) DO UPDATE SET reason = excluded.reason, "
            "expires_at = excluded.expires_at, banned_by = excluded.banned_by, created_at = excluded.created_at, "
            f"lifted_by = NULL, lifted_at = NULL {only_if}",
            (guild_id, user_id, reason, expires_at, actor.user_id, now))
        if cursor.rowcount != 1:
            raise BadInput("ban.already")
        return Ban(guild_id, user_id, reason, expires_at, actor.user_id, now)

    async def unban(self, actor: Actor, user_id: int, guild_id: int | None) -> Ban:
        """Lift the ban of `user_id` in `guild_id` (None: the one for every server); the lifted ban."""
        self._may(actor, guild_id)
        now = self.clock()
        cursor = await self.store.write(
            f"UPDATE bans SET lifted_by = ?, lifted_at = ? WHERE user_id = ? AND ifnull(guild_id, 0) = ? "
            f"AND {_STANDING} RETURNING {_COLUMNS}", (actor.user_id, now, user_id, guild_id or 0, now))
        rows = await cursor.fetchall()
        if not rows:
            raise BadInput("ban.not_banned")
        return Ban(*rows[0])

    async def current(self, guild_id: int | None = None) -> list[Ban]:
        """The bans standing in a server, with those for every server; all of them for None."""
        where, params = ("", ()) if guild_id is None else ("(guild_id IS NULL OR guild_id = ?) AND ", (guild_id,))
        rows = await self.store.query(f"SELECT {_COLUMNS} FROM bans WHERE {where}{_STANDING} "
                                      "ORDER BY created_at DESC", (*params, self.clock()))
        return [Ban(*row) for row in rows]

    async def history(self, guild_id: int | None = None, limit: int = 10) -> list[BanEvent]:
        """The last bans and unbans, newest first: in a server (and for every server), or all for None."""
        where, params = ("", ()) if guild_id is None else ("WHERE guild_id IS NULL OR guild_id = ? ", (guild_id,))
        rows = await self.store.query(
            f"SELECT at, guild_id, user_id, action, coalesce(reason, ''), expires_at, actor_id FROM bans_audit "
            f"{where}ORDER BY id DESC LIMIT ?", (*params, limit))
        return [BanEvent(*row) for row in rows]

    def _may(self, actor: Actor, guild_id: int | None) -> None:
        if guild_id is None and not actor.owner:
            raise BadInput("ban.everywhere.owners")
        if not actor.may_ban_in(guild_id):
            raise BadInput("ban.managers")
