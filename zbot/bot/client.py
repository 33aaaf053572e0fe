"""The Discord client: its command groups (cogs), the one error handler, and the gate every
interaction passes (which servers the bot serves)."""

from __future__ import annotations

import logging

import discord
import yarl
from discord import app_commands
from discord.ext import commands

from zbot.bot import access
from zbot.bot.cogs.accounts import Accounts
from zbot.bot.cogs.admin import Admin
from zbot.bot.cogs.bans import BanCommands
from zbot.bot.cogs.drawing import Drawing
from zbot.bot.cogs.help import Help
from zbot.bot.cogs.privacy import Privacy
from zbot.bot.cogs.reports import Reports
from zbot.bot.delivery import Delivery
from zbot.bot.errors import answer_error
from zbot.bot.i18n import Translator
from zbot.bot.posting import Poster
from zbot.bot.refine import Refine
from zbot.bot.sync import sync_commands
from zbot.bot.views import (
    CANCEL,
    DELETE,
    EDIT,
    PANS,
    PICK,
    REPORT,
    REROLL,
    UPSCALE,
    VARY,
    VARY_ONE,
    VARY_SUBTLE,
    ZOOMS,
    Buttons,
    image_view,
    result_view,
)
from zbot.config import Settings
from zbot.core.service import Service

log = logging.getLogger(__name__)


def point_at(settings: Settings) -> None:
    """Send REST and gateway traffic where the settings say (Discord itself, a proxy, or a test fake).
    discord.py builds every URL from these two class attributes."""
    discord.http.Route.BASE = settings.discord_api_url.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)


class Tree(app_commands.CommandTree):
    """Commands answer only in the servers the bot serves; their errors go to `answer_error`."""

    settings: Settings

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        access.check_place(self.settings, interaction)  # raises NotHere, answered by on_error
        return True

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        await answer_error(interaction, error)


class ZBot(commands.Bot):
    def __init__(self, settings: Settings, service: Service, **options):
        intents = discord.Intents.none()
        intents.guilds = True  # channels and roles for permission checks; no message content needed
        # Slash commands only: mentions as the (unused) prefix keep discord.py from asking for message content.
        super().__init__(command_prefix=commands.when_mentioned, help_command=None, intents=intents,
                         allowed_mentions=discord.AllowedMentions.none(), tree_cls=Tree, **options)
        self.tree.settings = settings
        self.settings = settings
        self.service = service
        self.reports = Reports(self, settings, service)
        # The parts the cogs share, built once here. A button's handler is a cog's method, and the cogs
        # post through the Poster, whose views hold the buttons: the buttons come last, and the views
        # reach them when an image is posted.
        self.poster = Poster(self, service, lambda result, withheld: result_view(self.buttons, result, withheld),
                             give_up_s=settings.recovery_max_age)
        self.delivery = Delivery(service, self.poster, cancel_view=lambda job_id: self.buttons.view(job_id, CANCEL))
        self.refine = Refine(settings, service, self.delivery)
        self.drawing = Drawing(self, settings, service, poster=self.poster, delivery=self.delivery,
                               image_view=lambda job_id, width, height: image_view(self.buttons, job_id, width, height))
        self.buttons = Buttons(
            {REROLL: self.drawing.reroll_button, DELETE: self.drawing.delete_button,
             REPORT: self.reports.report_button, CANCEL: self.drawing.cancel_button,
             VARY: self.refine.vary_button, UPSCALE: self.refine.upscale_button, EDIT: self.refine.edit_button,
             VARY_SUBTLE: self.refine.vary_subtle_button,
             **{kind: self.refine.zoom_button(factor) for kind, factor in ZOOMS.items()},
             **{kind: self.refine.pan_button(direction) for kind, direction in PANS.items()}},
            indexed={PICK: self.drawing.pick_button, VARY_ONE: self.refine.vary_one_button},
            sizes=settings.size_table, size_handler=self.refine.size_chosen,
            # Discord allows five rows of five: the size menu takes the last row.
            image_kinds=((REROLL, VARY_SUBTLE, VARY, UPSCALE, EDIT), tuple(ZOOMS), tuple(PANS), (DELETE, REPORT)),
            grid_kinds=(REROLL, DELETE, REPORT))
        self.accounts = Accounts(settings, service)
        self.admin = Admin(settings, service)
        self.bans = BanCommands(settings, service)
        self.privacy = Privacy(service)  # /history and /forget
        self.help = Help(service)
        self.synced = False

    async def setup_hook(self) -> None:
        self.add_dynamic_items(*self.buttons.all_types)  # the buttons under images, after a restart too
        await self.add_cog(self.drawing)
        await self.add_cog(self.accounts)
        await self.add_cog(self.reports)
        await self.add_cog(self.admin)
        await self.add_cog(self.bans)
        await self.add_cog(self.privacy)
        await self.add_cog(self.help)
        await self.tree.set_translator(Translator())  # Chinese names and descriptions for Chinese clients
        await sync_commands(self.tree, self.service, self.settings.guild_ids)
        self.synced = True
        if not self.settings.served_guild_ids:
            log.warning("ZBOT_ALLOWED_GUILD_IDS and ZBOT_GUILD_IDS are empty: any server that adds the bot can "
                        "use it; set one, and turn Public Bot off in the Developer Portal (see the README)")

    async def on_ready(self) -> None:
        log.info("connected to Discord as %s (%s) in %d server(s)", self.user, self.user.id if self.user else "?",
                 len(self.guilds))
