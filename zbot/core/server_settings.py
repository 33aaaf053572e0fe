"""Per-server settings: what a server's admins change from Discord (/settings) or an owner from the
command line (`zbot settings`), on top of the environment's settings, which stay every server's default.

A value is stored as the text one would put in the environment (`5/minute,100/day`) and checked by
the same validators as ZBOT_* variables, so it is refused with the same sentence. A server manager
stays within the owner's ceilings: rate limits (and role tiers) no more generous than
ZBOT_MAX_SERVER_RATE_LIMITS (by default the environment's own ZBOT_RATE_LIMITS: managers may only
tighten them), at most ZBOT_MAX_COUNT images a request; blocked words add to the environment's, never
remove any. Every change is kept in `settings_audit`.

The ceilings also hold for what a manager stored before the owner tightened them: such a value is kept
but held back, and what applies is within the ceiling (see `within_ceilings`), so loosening the ceiling
brings it back. A value a bot owner stored (in Discord, or `zbot settings`) is theirs to keep.

The effective settings of each server are built once per change and cached: a request costs no read
of its own. A running bot reads them all again every minute (Service.housekeeping, from zbot.bot.recovery), for changes made by
`zbot settings` or another zbot on the same database.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass

from pydantic import ValidationError

from zbot.catalogue import Text, items
from zbot.config import Settings, Window, env_value
from zbot.core.jobs import BadInput
from zbot.core.limits import rate
from zbot.core.store import Store

log = logging.getLogger(__name__)

# The settings a server may change, and what each is, for /settings and its autocomplete.
SERVER_SETTINGS: dict[str, str] = {
    "rate_limits": "Images per user in this server, e.g. 5/minute,100/day (empty: no limit, owners only)",
    "role_rate_limits": 'Role tiers, JSON {"ROLE_ID": "20/minute,500/day"}',
    "channel_ids": "Channels the bot draws in, comma-separated ids (empty: every channel)",
    "blocked_words": "Words a prompt may not contain, comma-separated (added to the bot's own list)",
    "default_count": "Images a /draw makes when it doesn't say (1-4)",
    "max_count": "The most images one request may ask for (1-4)",
    "default_size": "The size a /draw uses when it doesn't say",
    "safety_nsfw_channels": "In age-restricted channels, flagged images are posted as they are (post) or as "
                            "spoilers (spoiler)",
    "styles": "The styles /draw offers here, comma-separated names among the bot's (empty: none)",
    "default_style": "The style a /draw uses when it names none, one this server offers (empty: none)",
}


@dataclass(frozen=True)
class Change:
    name: str
    old: str | None  # the server's value before; None: it had the default
    new: str | None  # None: back to the default
    applies: str = ""  # what applies in the server after the change, written as in the environment


@dataclass(frozen=True)
class SettingEvent:
    """One change of a server's settings, from settings_audit."""

    at: float
    actor_id: int  # 0: the command line
    name: str
    old: str | None  # None: the default
    new: str | None


def shown(settings: Settings, name: str) -> str:
    """A setting's value as it would be written in the environment."""
    value = getattr(settings, name)
    if name == "rate_limits":
        return ",".join(str(window) for window in value)
    if name == "styles":
        return ",".join(value)
    if name == "role_rate_limits":
        return env_value({role: ",".join(str(w) for w in windows) for role, windows in value.items()})
    return env_value(value)


def most_in(windows: tuple[Window, ...], seconds: int) -> float:
    """The most images `windows` let one user draw within `seconds`."""
    if not windows or any(w.seconds < 1 or w.limit < 0 for w in windows):
        return math.inf  # no limit at all (or windows only code could make): never within a ceiling
    return min(w.limit * math.ceil(seconds / w.seconds) if w.seconds < seconds else w.limit for w in windows)


def within(windows: tuple[Window, ...], ceiling: tuple[Window, ...]) -> bool:
    return all(most_in(windows, c.seconds) <= c.limit for c in ceiling)


def capped(windows: tuple[Window, ...], ceiling: tuple[Window, ...]) -> tuple[Window, ...]:
    """`windows` with each ceiling window they exceed added (all of them count, so the result is within
    the ceiling), less the windows a stricter one makes moot (as long or longer, as few or fewer)."""
    added = tuple(c for c in ceiling if most_in(windows, c.seconds) > c.limit)
    if not added:
        return windows
    every = (*windows, *added)

    def moot(i: int, w: Window) -> bool:  # of two alike, the first stays
        return any(v.seconds >= w.seconds and v.limit <= w.limit and (j < i or (v.seconds, v.limit) != (w.seconds, w.limit))
                   for j, v in enumerate(every) if j != i)

    return tuple(w for i, w in enumerate(every) if not moot(i, w))


def within_ceilings(settings: Settings, base: Settings, names: set[str]) -> set[str]:
    """Bring the server's values of `names` in `settings` within the owner's ceilings in `base`, in
    place; returns those it changed. Channels: the server's among the owner's (the owner's where none
    is); rate limits and role tiers: no more generous than ZBOT_MAX_SERVER_RATE_LIMITS; counts: at most
    ZBOT_MAX_COUNT; flagged images as spoilers where the owner says so."""
    ceiling = base.max_server_rate_limits or base.rate_limits
    fields = settings.__dict__  # plain values of the fields' types: no validator to run between them
    held = set()

    def hold(name: str, value) -> None:
        if value != fields[name]:
            fields[name] = value
            held.add(name)

    if "rate_limits" in names:
        hold("rate_limits", capped(settings.rate_limits, ceiling))
    if "role_rate_limits" in names:
        hold("role_rate_limits", {role: capped(w, ceiling) for role, w in settings.role_rate_limits.items()})
    if "max_count" in names:
        hold("max_count", min(settings.max_count, base.max_count))
    if "default_count" in names:
        hold("default_count", min(settings.default_count, settings.max_count))
    if "channel_ids" in names and base.channel_ids:
        hold("channel_ids", [c for c in settings.channel_ids if c in base.channel_ids] or list(base.channel_ids))
    if "safety_nsfw_channels" in names and base.safety_nsfw_channels == "spoiler":
        hold("safety_nsfw_channels", "spoiler")
    return held

# Applied first (the most allowed, the styles offered) and last (the default style, among those offered).
_FIRST = {"max_count": 0, "styles": 0, "default_style": 2}


class ServerSettings:
    def __init__(self, base: Settings, store: Store, *, clock=time.time):
        self.base = base
        self.store = store
        self.clock = clock
        self._values: dict[int, dict[str, str]] = {}
        self._owners: dict[int, set[str]] = {}  # the names whose value a bot owner set: no ceiling applies
        self._held: dict[int, set[str]] = {}  # the names whose stored value does not apply as it is
        self._effective: dict[int, Settings] = {}
        self._lock = asyncio.Lock()  # a change (check, write, cache) or a reload at a time

    async def load(self) -> None:
        """Read every server's values (at start, then every minute). A value the environment now makes
        invalid (a size that is gone) is skipped with the default in its place, and logged."""
        async with self._lock:
            await self._load()

    async def _load(self) -> None:
        rows = await self.store.query("SELECT guild_id, name, value, updated_by FROM server_settings "
                                      "WHERE value IS NOT NULL ORDER BY guild_id, name")
        values: dict[int, dict[str, str]] = {}
        owners: dict[int, set[str]] = {}
        for guild_id, name, value, actor_id in rows:
            values.setdefault(guild_id, {})[name] = value
            if self._is_owner(actor_id):
                owners.setdefault(guild_id, set()).add(name)
        self._values, self._owners = values, owners
        self._effective, self._held = {}, {}
        for guild_id, own in values.items():
            self._effective[guild_id], self._held[guild_id] = self._build(own, owners.get(guild_id, set()),
                                                                          lenient=True)

    def _is_owner(self, actor_id: int) -> bool:
        """Whether a value's author is a bot owner now (0: `zbot settings` on the command line)."""
        return actor_id == 0 or actor_id in self.base.admin_ids

    def effective(self, guild_id: int | None) -> Settings:
        """The settings that apply in a server (the environment's where it changed nothing)."""
        if guild_id is None:
            return self.base
        return self._effective.get(guild_id, self.base)

    def values(self, guild_id: int) -> dict[str, str]:
        return dict(self._values.get(guild_id, {}))

    def all_values(self) -> dict[int, dict[str, str]]:
        return {guild: dict(values) for guild, values in self._values.items()}

    def held(self, guild_id: int) -> dict[str, str]:
        """The server's stored values that don't apply as they are (past a ceiling, or no longer valid):
        name -> stored value; `effective` has what applies instead."""
        own = self._values.get(guild_id, {})
        return {name: own[name] for name in sorted(self._held.get(guild_id, ())) if name in own}

    def _build(self, values: dict[str, str], owners: set[str], *, lenient: bool = False,
               unclamped: str | None = None) -> tuple[Settings, set[str]]:
        """The settings with the server's `values` on the environment's, within the ceilings except for
        the `owners`' values and `unclamped`; and the names whose value does not apply as it is."""
        held = set()
        settings = self.base.model_copy(deep=True)
        # The most allowed before the default, so that a default within it is checked against it.
        for name in sorted(values, key=lambda name: _FIRST.get(name, 1)):
            before = getattr(settings, name)
            try:
                if not self._apply(settings, name, values[name], lenient=lenient):
                    held.add(name)  # applied in part: styles the owner no longer offers are left out
            except (BadInput, ValidationError):
                if not lenient:
                    raise
                # pydantic has set the field before a check across fields refused it: put it back.
                settings.__dict__[name] = before
                held.add(name)
                log.warning("a server's %s=%r no longer fits the settings; the default applies", name, values[name])
        clamped = within_ceilings(settings, self.base, set(values) - owners - held - {unclamped})
        return settings, held | clamped

    def _apply(self, settings: Settings, name: str, raw: str, *, lenient: bool = False) -> bool:
        """Set `name` to `raw` in `settings`; False when only a part of it could apply (`lenient`)."""
        if name in ("styles", "default_style"):
            return self._apply_style(settings, name, raw, lenient=lenient)
        if name == "default_size":
            if raw not in settings.sizes:
                raise BadInput("size.unknown", {"size": raw[:40], "sizes": items(settings.sizes)})
            settings.sizes = {raw: settings.sizes[raw], **{k: v for k, v in settings.sizes.items() if k != raw}}
            return True
        Settings.__pydantic_validator__.validate_assignment(settings, name, raw)
        if name == "blocked_words":  # the server's words come on top of the bot's own
            settings.blocked_words = list(dict.fromkeys([*self.base.blocked_words, *settings.blocked_words]))
        return True

    def _apply_style(self, settings: Settings, name: str, raw: str, *, lenient: bool) -> bool:
        """A server's styles: among those the bot owner configured (ZBOT_STYLES), with its default among
        them. Set without pydantic: its checks across fields would see the styles and their default
        change one at a time."""
        fields = settings.__dict__
        if name == "default_style":
            style = raw.strip() or None
            if style is not None and style not in settings.styles:
                if settings.styles:
                    raise BadInput("settings.default_style", {"styles": items(settings.styles)})
                raise BadInput("settings.no_styles")
            fields["default_style"] = style
            return True
        names = list(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
        unknown = [style for style in names if style not in self.base.styles]
        if unknown and not lenient:
            if not self.base.styles:
                raise BadInput("settings.no_styles")
            raise BadInput("settings.style_unknown", {"style": unknown[0][:40], "styles": items(self.base.styles)})
        fields["styles"] = {style: self.base.styles[style] for style in names if style in self.base.styles}
        if settings.default_style not in fields["styles"]:
            fields["default_style"] = None  # the bot's default is not offered here
        return not unknown

    def check(self, guild_id: int, name: str, raw: str, *, owner: bool) -> Settings:
        """The server's settings with `name` set to `raw`, or BadInput saying why not."""
        return self._check(guild_id, name, raw, owner=owner)[0]

    def _check(self, guild_id: int, name: str, raw: str, *, owner: bool) -> tuple[Settings, set[str], set[str]]:
        """check's settings, the names held back in them, and the names an owner set."""
        if name not in SERVER_SETTINGS:
            raise BadInput("settings.unknown", {"name": name[:40], "names": items(SERVER_SETTINGS)})
        raw = raw.strip()
        owners = self._owners.get(guild_id, set()) - {name} | ({name} if owner else set())
        try:
            # The new value is checked against the ceilings as given (a refusal says why), the rest clamped.
            settings, held = self._build({**self._values.get(guild_id, {}), name: raw}, owners, unclamped=name)
        except ValidationError as error:
            first = error.errors()[0]
            message = first["msg"].removeprefix("Value error, ")
            said = first.get("ctx", {}).get("error")  # a sentence of the catalogue (config's), said by key
            detail = said.args[0] if isinstance(said, ValueError) and isinstance(said.args[0], Text)                 else f"{message}.".replace("..", ".")[:-1]
            raise BadInput("settings.invalid", {"name": name, "detail": detail}) from None
        if not owner:
            self._check_ceilings(settings, name)
            held |= within_ceilings(settings, self.base, {name})
            if name == "default_count" and name in held:  # more than the server's stored max_count, held back
                raise BadInput("settings.max_count", {"most": settings.max_count})
        return settings, held, owners

    def _check_ceilings(self, settings: Settings, name: str) -> None:
        ceiling = self.base.max_server_rate_limits or self.base.rate_limits
        if name == "rate_limits" and not within(settings.rate_limits, ceiling):
            raise BadInput("settings.rate_ceiling", {"ceiling": items(map(rate, ceiling))})
        if name == "role_rate_limits":
            for role, windows in settings.role_rate_limits.items():
                if not within(windows, ceiling):
                    raise BadInput("settings.role_ceiling", {"role": role, "ceiling": items(map(rate, ceiling))})
        if name == "max_count" and settings.max_count > self.base.max_count:
            raise BadInput("settings.max_count", {"most": self.base.max_count})
        if name == "channel_ids" and self.base.channel_ids and (
                not settings.channel_ids or not set(settings.channel_ids) <= set(self.base.channel_ids)):
            raise BadInput("settings.channels")
        if name == "safety_nsfw_channels" and self.base.safety_nsfw_channels == "spoiler" \
                and settings.safety_nsfw_channels != "spoiler":
            raise BadInput("settings.spoilers")

    async def set(self, guild_id: int, name: str, raw: str, actor_id: int, *, owner: bool) -> Change:
        async with self._lock:
            return await self._set(guild_id, name, raw, actor_id, owner=owner)

    async def _set(self, guild_id: int, name: str, raw: str, actor_id: int, *, owner: bool) -> Change:
        settings, held, owners = self._check(guild_id, name, raw, owner=owner)
        old = self._values.get(guild_id, {}).get(name)
        raw = raw.strip()
        # One statement; the audit row is written by a trigger in the same transaction (migration 0007).
        await self.store.write(
            "INSERT INTO server_settings (guild_id, name, value, updated_at, updated_by) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (guild_id, name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, "
            "updated_by = excluded.updated_by", (guild_id, name, raw, self.clock(), actor_id))
        self._values.setdefault(guild_id, {})[name] = raw
        self._owners[guild_id], self._held[guild_id], self._effective[guild_id] = owners, held, settings
        return Change(name, old, raw)

    async def reset(self, guild_id: int, name: str, actor_id: int) -> Change:
        async with self._lock:
            return await self._reset(guild_id, name, actor_id)

    async def _reset(self, guild_id: int, name: str, actor_id: int) -> Change:
        if name not in SERVER_SETTINGS:
            raise BadInput("settings.unknown", {"name": name[:40], "names": items(SERVER_SETTINGS)})
        old = self._values.get(guild_id, {}).get(name)
        if old is None:
            raise BadInput("settings.default_already", {"name": name})
        # Back to the default: the row stays with no value, so that the trigger records who reset it.
        await self.store.write("UPDATE server_settings SET value = NULL, updated_at = ?, updated_by = ? "
                               "WHERE guild_id = ? AND name = ?", (self.clock(), actor_id, guild_id, name))
        values = self._values.get(guild_id, {})
        values.pop(name, None)
        owners = self._owners.setdefault(guild_id, set())
        owners.discard(name)
        self._effective[guild_id], self._held[guild_id] = self._build(values, owners, lenient=True)
        return Change(name, old, None)

    def describe(self, guild_id: int) -> list[tuple[str, str, bool]]:
        """(name, effective value, set by the server) for every server setting."""
        settings, own = self.effective(guild_id), self._values.get(guild_id, {})
        return [(name, own[name] if name == "blocked_words" and name in own else
                 (settings.default_size if name == "default_size" else shown(settings, name)), name in own)
                for name in SERVER_SETTINGS]

    async def history(self, guild_id: int, limit: int = 10) -> list[SettingEvent]:
        """The last changes in a server, newest first."""
        rows = await self.store.query(
            "SELECT at, actor_id, name, old_value, new_value FROM settings_audit WHERE guild_id = ? "
            "ORDER BY id DESC LIMIT ?", (guild_id, limit))
        return [SettingEvent(*row) for row in rows]
