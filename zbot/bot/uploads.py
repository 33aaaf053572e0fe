"""Downloading the picture a member attaches to /draw (issue 28): refused by its declared size before a byte
is fetched, cut off while streaming past the cap (a declared size can lie) or past the timeout. What the
bytes are is the core's business (zbot.core.uploads.decode, in the Service)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiohttp
import discord

from zbot.bot.errors import answer_error
from zbot.bot.i18n import t
from zbot.core.jobs import BadInput
from zbot.core.uploads import DOWNLOAD_TIMEOUT_S, MAX_BYTES, check_declared_size, read_capped

CHUNK = 64 * 1024


async def download(attachment: discord.Attachment, *, max_bytes: int = MAX_BYTES,
                   timeout_s: float = DOWNLOAD_TIMEOUT_S) -> bytes:
    """The attachment's bytes, or BadInput in one sentence (too big, too slow, not downloadable)."""
    check_declared_size(attachment.size, max_bytes)
    try:
        # The connection's own limit as well: read_capped times the body only.
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s + 5)) as session:
            async with session.get(attachment.url) as response:
                response.raise_for_status()
                return await read_capped(response.content.iter_chunked(CHUNK), max_bytes, timeout_s)
    except TimeoutError:
        raise BadInput("upload.timeout", {"seconds": f"{timeout_s:g}"}) from None
    except aiohttp.ClientError:
        raise BadInput("upload.download") from None


def image_of(message: discord.Message) -> discord.Attachment:
    """The first picture attached to a message (by its content type, else its name), or one sentence."""
    for attachment in message.attachments:
        kind = (attachment.content_type or "").split(";")[0]
        if kind.startswith("image/") or attachment.filename.lower().endswith((".png", ".jpg", ".jpeg", ".webp", ".gif")):
            return attachment
    raise BadInput("upload.none")


class DrawFromImageForm(discord.ui.Modal, title="Draw from this image"):
    """Apps > Draw from this image: the prompt to draw the message's picture with; sent, it is /draw image:."""

    def __init__(self, attachment: discord.Attachment, max_chars: int,
                 draw: Callable[[discord.Interaction, str, discord.Attachment], Awaitable[None]], locale=None):
        super().__init__(timeout=30 * 60, title=t(locale, "Draw from this image"))
        self.attachment, self.draw = attachment, draw
        self.prompt = discord.ui.TextInput(label=t(locale, "Prompt"), style=discord.TextStyle.paragraph,
                                           custom_id="zbot:prompt", max_length=min(4000, max_chars))
        self.add_item(self.prompt)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await self.draw(interaction, self.prompt.value, self.attachment)

    async def on_error(self, interaction: discord.Interaction, error: Exception, /) -> None:
        await answer_error(interaction, error)
