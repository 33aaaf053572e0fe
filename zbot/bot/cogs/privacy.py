"""A member's own records: /history (their images here, a page at a time) and /forget (what zbot keeps
about them here deleted, after a confirmation). Both answer privately; the work is Service's
(zbot.core.privacy). The buttons live on ephemeral answers only, so plain views do: after a restart the
member runs the command again."""

from __future__ import annotations

import logging

import discord
from discord import app_commands
from discord.ext import commands

from zbot.bot.discord_errors import DISCORD_ERRORS
from zbot.bot.errors import answer_error, say_privately
from zbot.bot.i18n import localize_view, t, tr
from zbot.bot.messages import message_link, quote_prompt
from zbot.catalogue import MESSAGES, text
from zbot.core.jobs import Status
from zbot.core.privacy import HistoryEntry, HistoryPage
from zbot.core.service import Service

log = logging.getLogger(__name__)

VIEW_TIMEOUT_S = 10 * 60  # the answer is looked at for a while; its buttons go quiet after
PROMPT_CHARS = 120  # of each prompt in /history: ten lines must fit a message


class Privacy(commands.Cog):
    def __init__(self, service: Service):
        self.service = service

    @app_commands.command(name="history", description="Your images in this server, newest first")
    @app_commands.guild_only()
    async def history(self, interaction: discord.Interaction) -> None:
        page = await self.service.history(interaction.user.id, interaction.guild_id)
        await interaction.response.send_message(
            history_text(page, interaction.guild_id, interaction.locale), ephemeral=True,
            view=Pages(self.service, page, interaction.locale) if page.pages > 1 else discord.utils.MISSING,
            allowed_mentions=discord.AllowedMentions.none())

    @app_commands.command(name="forget", description="Delete what zbot keeps about you in this server")
    @app_commands.guild_only()
    async def forget(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(tr(interaction.locale, text("forget.confirm")), ephemeral=True,
                                                view=Confirm(self, interaction.locale))

    async def forget_now(self, interaction: discord.Interaction, delete_messages: bool) -> None:
        """The confirmation's click: forget, then delete the messages posted for them when chosen."""
        await interaction.response.edit_message(content=tr(interaction.locale, text("forget.working")), view=None)
        done = await self.service.forget(interaction.user.id, interaction.guild_id, delete_messages=delete_messages)
        left = 0
        for channel_id, message_id in done.messages:
            try:
                await interaction.client.get_partial_messageable(channel_id).get_partial_message(message_id).delete()
            except discord.NotFound:
                pass  # deleted already
            except DISCORD_ERRORS as error:  # no permission there any more, Discord down: they are told
                log.warning("could not delete message %s of a forgotten user (%s)", message_id, error)
                left += 1
        said = text("forget.done", images=done.images)
        if delete_messages:
            said = text("forget.done_messages", images=done.images, deleted=len(done.messages) - left)
        await say_privately(interaction, said)
        if left:
            await say_privately(interaction, text("forget.messages_left", left=left))


def history_text(page: HistoryPage, guild_id: int | None, locale) -> str:
    if not page.total:
        return tr(locale, text("history.empty"))
    lines = [tr(locale, text("history.title", page=page.page + 1, pages=page.pages, total=page.total))]
    lines += [_line(entry, guild_id, locale) for entry in page.entries]
    return "\n".join(lines)


def _line(entry: HistoryEntry, guild_id: int | None, locale) -> str:
    """One image: its prompt, inert as in captions, then what else it was asked with, when, and where."""
    parts = [t(locale, "seed {}", entry.seed)] if entry.seed is not None else []
    if entry.size:
        parts.append(f"{entry.size} {entry.width}×{entry.height}" if entry.width else entry.size)
    if entry.count > 1:
        parts.append(t(locale, "{} images", entry.count))
    if entry.style:
        parts.append(t(locale, "style {}", quote_prompt(entry.style, 40)))
    if entry.operation != "draw":  # a reroll, a variation...: named as under the images
        key = f"origin.{entry.operation}.bare"
        parts.append(tr(locale, text(key)) if key in MESSAGES else entry.operation)
    parts.append(f"<t:{int(entry.created_at)}:R>")
    if entry.posted:
        parts.append(message_link(guild_id, entry.channel_id, entry.message_id))
    else:
        parts.append(tr(locale, text({Status.DELETED: "history.deleted", Status.BLOCKED: "history.withheld"}
                                     .get(entry.status, "history.not_posted"))))
    return f"• **{quote_prompt(entry.prompt, PROMPT_CHARS)}** · " + " · ".join(parts)


class Pages(discord.ui.View):
    """Previous and Next under /history's answer (only its member sees it)."""

    def __init__(self, service: Service, page: HistoryPage, locale):
        super().__init__(timeout=VIEW_TIMEOUT_S)
        self.service, self.page = service, page.page
        self.previous.disabled = page.page == 0
        self.next.disabled = page.page >= page.pages - 1
        localize_view(self, locale)

    @discord.ui.button(label="Previous", style=discord.ButtonStyle.secondary)
    async def previous(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await self._show(interaction, self.page - 1)

    @discord.ui.button(label="Next", style=discord.ButtonStyle.secondary)
    async def next(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await self._show(interaction, self.page + 1)

    async def _show(self, interaction: discord.Interaction, number: int) -> None:
        try:
            page = await self.service.history(interaction.user.id, interaction.guild_id, number)
            await interaction.response.edit_message(content=history_text(page, interaction.guild_id, interaction.locale),
                                                    view=Pages(self.service, page, interaction.locale))
        except Exception as error:  # noqa: BLE001 - answered, and logged when unexpected
            await answer_error(interaction, error)


class Confirm(discord.ui.View):
    """/forget's confirmation: forget, forget and delete the messages too, or keep everything."""

    def __init__(self, cog: Privacy, locale):
        super().__init__(timeout=VIEW_TIMEOUT_S)
        self.cog = cog
        localize_view(self, locale)

    @discord.ui.button(label="Forget me", style=discord.ButtonStyle.danger)
    async def forget(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await self._go(interaction, False)

    @discord.ui.button(label="Forget me and delete my images' messages", style=discord.ButtonStyle.danger)
    async def forget_all(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await self._go(interaction, True)

    @discord.ui.button(label="Keep everything", style=discord.ButtonStyle.secondary)
    async def keep(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await interaction.response.edit_message(content=tr(interaction.locale, text("forget.kept")), view=None)

    async def _go(self, interaction: discord.Interaction, delete_messages: bool) -> None:
        self.stop()
        try:
            await self.cog.forget_now(interaction, delete_messages)
        except Exception as error:  # noqa: BLE001 - answered, and logged when unexpected
            await answer_error(interaction, error)
