"""Downloading the picture a member attaches to /draw (issue 28): refused by its declared size before a byte
is fetched, cut off while streaming past the cap (a declared size can lie) or past the timeout. What the
bytes are is the core's business (zbot.core.uploads.decode, in the Service)."""

from __future__ import annotations

import aiohttp
import discord

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
