"""What a call to Discord can raise, and how to tell the answers apart: one taxonomy for every module
that talks to Discord (posting, delivery, the error funnel, reports, command registration)."""

from __future__ import annotations

import asyncio

import aiohttp
import discord

# What a call to Discord can raise besides a clean HTTP answer: discord.py hands on aiohttp's
# connection errors (ServerDisconnectedError, ClientOSError...) and timeouts as they are.
NETWORK_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, OSError)
DISCORD_ERRORS = (discord.HTTPException, *NETWORK_ERRORS)


def token_expired(error: discord.HTTPException) -> bool:
    return error.status == 401 or error.code == 50027


def expired(error: BaseException) -> bool:
    """An interaction's token Discord no longer takes."""
    return isinstance(error, discord.HTTPException) and token_expired(error)


def invalid_body(error: BaseException) -> bool:
    """Discord refused the message's content (400, code 50035 "Invalid Form Body")."""
    return isinstance(error, discord.HTTPException) and error.status == 400 and error.code == 50035


def refused_for_good(error: BaseException) -> bool:
    """Discord's answer won't change by asking again soon: no access to the channel, no such channel,
    a file too large. (Network trouble, 5xx and 429 pass.)"""
    return isinstance(error, discord.HTTPException) and 400 <= error.status < 500 and error.status != 429


def describe(error: BaseException) -> str:
    """A failure in a few characters for a log line: Discord's status and code, or the error's type."""
    if isinstance(error, discord.HTTPException):
        return f"{error.status}" + (f"/{error.code}" if error.code else "")
    return type(error).__name__
