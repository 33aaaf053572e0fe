"""Who is asking: turning an interaction into the plain values the core takes, and answering errors."""

from __future__ import annotations

import logging
import secrets

import discord

from ..config import Settings, Window
from ..jobs import DrawRequest, Refused
from ..limits import pick_tier
from . import messages

log = logging.getLogger(__name__)


def is_admin(settings: Settings, interaction: discord.Interaction) -> bool:
    """Listed in ZBOT_ADMIN_IDS, or allowed to manage this server. Checked by the bot itself: Discord's
    command visibility can be changed by any server owner."""
    if interaction.user.id in settings.admin_ids:
        return True
    permissions = getattr(interaction, "permissions", None)
    return bool(interaction.guild_id and permissions and permissions.manage_guild)


def role_ids(interaction: discord.Interaction) -> list[int]:
    roles = getattr(interaction.user, "roles", None) or []
    return [role.id for role in roles]


def tier(settings: Settings, interaction: discord.Interaction) -> tuple[int | None, tuple[Window, ...]]:
    return pick_tier(role_ids(interaction), settings.role_rate_limits, settings.rate_limits)


def tier_name(interaction: discord.Interaction, role_id: int | None) -> str:
    if role_id is None:
        return "everyone's limits"
    role = interaction.guild.get_role(role_id) if interaction.guild else None
    return f"the {role.name} role's limits" if role else f"the <@&{role_id}> role's limits"


def draw_request(settings: Settings, interaction: discord.Interaction, prompt: str, *, size: str | None = None,
                 seed: int | None = None, steps: int | None = None, parent_id: int | None = None) -> DrawRequest:
    _, windows = tier(settings, interaction)
    return DrawRequest(user_id=interaction.user.id, prompt=prompt, size=size, seed=seed, steps=steps,
                       source="discord", guild_id=interaction.guild_id, channel_id=interaction.channel_id,
                       interaction_id=interaction.id, parent_id=parent_id,
                       is_admin=is_admin(settings, interaction), rate_limits=windows)


async def say_privately(interaction: discord.Interaction, text: str) -> None:
    """A one-line answer only the caller sees, whether or not the interaction was answered yet."""
    if interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=True)
    else:
        await interaction.response.send_message(text, ephemeral=True)


async def answer_error(interaction: discord.Interaction, error: BaseException) -> None:
    """The one place errors become replies: refusals say why; anything else is logged with a
    traceback and an id, and the user gets a short apology quoting that id."""
    if isinstance(error, discord.app_commands.CommandInvokeError):
        error = error.original
    if isinstance(error, Refused):
        text = error.sentence(messages.when)
    elif isinstance(error, discord.app_commands.CheckFailure):
        text = str(error) or "You can't use this command here."
    else:
        error_id = secrets.token_hex(4)
        log.error("error %s while handling an interaction from user %s", error_id, interaction.user.id,
                  exc_info=error)
        text = messages.APOLOGY.format(error_id=error_id)
    try:
        await say_privately(interaction, text)
    except discord.HTTPException:
        log.warning("could not tell user %s about an error", interaction.user.id)
