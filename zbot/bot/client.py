"""The Discord client: slash commands, the Reroll context menu, persistent buttons, command sync."""

from __future__ import annotations

import logging

import discord
import yarl
from discord import app_commands

from ..config import Settings
from ..service import Service
from .actions import Actions
from .context import answer_error
from .delivery import Delivery
from .views import DeleteButton, RerollButton

log = logging.getLogger(__name__)


def point_at(settings: Settings) -> None:
    """Send REST and gateway traffic where the settings say (Discord itself, a proxy, or a test fake).
    discord.py builds every URL from these two class attributes."""
    discord.http.Route.BASE = settings.discord_api_url.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)


class ZBot(discord.Client):
    def __init__(self, settings: Settings, service: Service, **options):
        intents = discord.Intents.none()
        intents.guilds = True  # channels and roles for permission checks; no message content needed
        super().__init__(intents=intents, allowed_mentions=discord.AllowedMentions.none(), **options)
        self.settings = settings
        self.service = service
        self.delivery = Delivery(self, service)
        self.actions = Actions(settings, service, self.delivery)
        self.tree = app_commands.CommandTree(self)
        self.tree.on_error = answer_error
        self.synced = False

    async def setup_hook(self) -> None:
        self.add_dynamic_items(RerollButton, DeleteButton)
        register_commands(self.tree, self.actions, self.settings)
        if self.settings.guild_ids:
            for guild_id in self.settings.guild_ids:
                guild = discord.Object(guild_id)
                self.tree.copy_global_to(guild=guild)
                await self.tree.sync(guild=guild)
            log.info("commands synced to %d server(s)", len(self.settings.guild_ids))
        else:
            await self.tree.sync()
            log.info("commands synced globally (Discord may take up to an hour to show them everywhere)")
        self.synced = True

    async def on_ready(self) -> None:
        log.info("connected to Discord as %s (%s) in %d server(s)", self.user, self.user.id if self.user else "?",
                 len(self.guilds))


def register_commands(tree: app_commands.CommandTree, actions: Actions, settings: Settings) -> None:
    sizes = [app_commands.Choice(name=f"{name} ({w}×{h})", value=name)
             for name, (w, h) in list(settings.size_table.items())[:25]]

    @tree.command(name="draw", description="Draw an image from a prompt")
    @app_commands.describe(prompt="What to draw", size="The image's shape (default: square)",
                           seed="A number to repeat an image exactly (random when left out)")
    @app_commands.choices(size=sizes)
    async def draw(interaction: discord.Interaction, prompt: str, size: app_commands.Choice[str] | None = None,
                   seed: app_commands.Range[int, 0, 2**32 - 1] | None = None) -> None:
        await actions.draw(interaction, prompt, size.value if size else None, seed)

    @tree.command(name="reroll", description="Draw your latest image in this channel again with a new seed")
    async def reroll(interaction: discord.Interaction) -> None:
        await actions.reroll_latest(interaction)

    @tree.command(name="quota", description="How many images you may still draw, and your pending ones")
    async def quota(interaction: discord.Interaction) -> None:
        await actions.quota(interaction)

    @tree.command(name="stats", description="Usage statistics (admins)")
    @app_commands.describe(user="Only this user's usage")
    @app_commands.default_permissions(manage_guild=True)
    async def stats(interaction: discord.Interaction, user: discord.User | None = None) -> None:
        await actions.stats(interaction, user)

    @tree.context_menu(name="Reroll")
    async def reroll_message(interaction: discord.Interaction, message: discord.Message) -> None:
        await actions.reroll_message(interaction, message)
