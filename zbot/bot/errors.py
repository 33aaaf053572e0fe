"""The one place errors become replies, for commands (the tree's on_error) and buttons (`guarded`)."""

from __future__ import annotations

import functools
import logging
import secrets
from collections.abc import Awaitable, Callable

import discord

from zbot.bot import messages
from zbot.bot.discord_errors import DISCORD_ERRORS
from zbot.bot.i18n import tr
from zbot.catalogue import Text
from zbot.core.jobs import Refused

log = logging.getLogger(__name__)


async def say_privately(interaction: discord.Interaction, text: str) -> None:
    """A one-line answer only the caller sees, whether or not the interaction was answered yet."""
    text = tr(interaction.locale, text)  # in the user's language where the catalogue has the sentence
    if interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=True, allowed_mentions=discord.AllowedMentions.none())
    else:
        await interaction.response.send_message(text, ephemeral=True, allowed_mentions=discord.AllowedMentions.none())


async def answer_error(interaction: discord.Interaction, error: BaseException) -> None:
    """Refusals and failed checks say why; anything else is logged with a traceback and an id, and the
    user gets a short apology quoting that id."""
    if isinstance(error, discord.app_commands.CommandInvokeError):
        error = error.original
    if isinstance(error, Refused):
        text = messages.refusal(error, interaction.locale)
    elif isinstance(error, discord.app_commands.CheckFailure):
        # NotHere carries its sentence as a catalogue Text (str(error) would drop its key)
        said = next((arg for arg in error.args if isinstance(arg, Text)), None)
        text = said or str(error) or Text("error.check")
    else:
        error_id = secrets.token_hex(4)
        log.error("error %s while handling an interaction from user %s", error_id, interaction.user.id,
                  exc_info=error)
        text = messages.apology(error_id)
    try:
        await say_privately(interaction, text)
    except DISCORD_ERRORS as failure:
        log.warning("could not tell user %s about an error (%s)", interaction.user.id, failure)


Handler = Callable[..., Awaitable[None]]


def guarded(handler: Handler) -> Handler:
    """For button handlers: errors answered by `answer_error`, like the commands' (tree.on_error)."""

    @functools.wraps(handler)
    async def wrapper(*args, **kwargs) -> None:
        interaction = next(arg for arg in args if isinstance(arg, discord.Interaction))
        try:
            await handler(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 - answered, and logged when unexpected
            await answer_error(interaction, error)

    return wrapper
