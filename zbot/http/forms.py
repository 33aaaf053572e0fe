"""A multipart/form-data body of POST /v1/images: its text fields and the picture's file part, read within
the upload's byte cap (zbot.core.uploads.read_capped) while it streams in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from zbot.core.uploads import read_capped


async def multipart(request: web.Request, max_bytes: int) -> tuple[dict[str, Any], bytes | None]:
    """A multipart/form-data body: its text fields (numbers as numbers) and its `image` file part, read
    within the upload's byte cap."""
    fields: dict[str, Any] = {}
    picture = None
    async for part in await request.multipart():
        if part.name == "image":
            picture = await read_capped(_chunks(part), max_bytes)
            continue
        value = await part.text()
        for name, kind in (("seed", int), ("count", int), ("strength", float)):
            if part.name == name:
                try:
                    value = kind(value)
                except ValueError:
                    pass  # the model says what is wrong with it
        fields[part.name or ""] = value
    return fields, picture


async def _chunks(part) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk():
        yield chunk
