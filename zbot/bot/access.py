"""Who is asking, and what they may do: turning an interaction into the plain values the core takes.

Two kinds of admin. Bot owners (ZBOT_ADMIN_IDS) run the bot: no per-user limits, usage across every
server, any image deleted. Server managers (Manage Server in the server the interaction comes from)
look after their own server: its usage, its images; limits apply to them unless
ZBOT_EXEMPT_MANAGERS says otherwise. Both are checked by the bot itself: Discord's command visibility
can be changed by any server's owner.
"""

from __future__ import annotations

import discord
from discord import app_commands

from zbot.catalogue import Text, text
from zbot.config import Settings, Window
from zbot.core.jobs import DrawRequest, Generation
from zbot.core.limits import pick_tier


class NotHere(app_commands.CheckFailure):
    """An interaction from a server (or a DM) the bot does not serve; the message is for the user."""


def is_owner(settings: Settings, interaction: discord.Interaction) -> bool:
    return interaction.user.id in settings.admin_ids


def is_manager(interaction: discord.Interaction) -> bool:
    """Allowed to manage the server this interaction comes from (never true in a DM)."""
    permissions = getattr(interaction, "permissions", None)
    return bool(interaction.guild_id and permissions and permissions.manage_guild)


def is_exempt(settings: Settings, interaction: discord.Interaction) -> bool:
    """Free of per-user limits (the queue's bound still applies)."""
    return is_owner(settings, interaction) or (settings.exempt_managers and is_manager(interaction))


def may_remove(settings: Settings, interaction: discord.Interaction, generation: Generation | None) -> bool:
    """The requester, a manager of the server the image was drawn in, or an owner."""
    if is_owner(settings, interaction):
        return True
    if generation is None:
        return False
    if interaction.user.id == generation.user_id:
        return True
    return is_manager(interaction) and generation.guild_id == interaction.guild_id


def check_place(settings: Settings, interaction: discord.Interaction) -> None:
    """Raise NotHere for an interaction from a server the bot was not set up for, or from a DM."""
    if is_owner(settings, interaction):
        return
    if interaction.guild_id is None:
        raise NotHere(text("here.dm"))
    allowed = settings.served_guild_ids
    if allowed and interaction.guild_id not in allowed:
        raise NotHere(text("here.private"))


def role_ids(interaction: discord.Interaction) -> list[int]:
    roles = getattr(interaction.user, "roles", None) or []
    return [role.id for role in roles]


def tier(settings: Settings, interaction: discord.Interaction) -> tuple[int | None, tuple[Window, ...]]:
    return pick_tier(role_ids(interaction), settings.role_rate_limits, settings.rate_limits)


def tier_name(interaction: discord.Interaction, role_id: int | None) -> Text:
    if role_id is None:
        return text("tier.everyone")
    role = interaction.guild.get_role(role_id) if interaction.guild else None
    return text("tier.role", role=role.name if role else f"<@&{role_id}>")


def draw_request(settings: Settings, interaction: discord.Interaction, prompt: str, *, size: str | None = None,
                 seed: int | None = None, steps: int | None = None, parent_id: int | None = None,
                 count: int | None = None, operation: str | None = None, image: int = 0,
                 style: str | None = None) -> DrawRequest:
    _, windows = tier(settings, interaction)
    return DrawRequest(user_id=interaction.user.id, prompt=prompt, size=size, seed=seed, steps=steps,
                       source="discord", guild_id=interaction.guild_id, channel_id=interaction.channel_id,
                       interaction_id=interaction.id, parent_id=parent_id, count=count, operation=operation, image=image,
                       style=style,
                       is_admin=is_exempt(settings, interaction), rate_limits=windows)
