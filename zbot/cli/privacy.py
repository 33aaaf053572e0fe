"""`zbot forget USER_ID`: a bot owner forgets a Discord user in every server, for a request that reached
them another way than /forget (zbot.core.privacy does the work; the messages stay on Discord)."""

from __future__ import annotations

import argparse

from zbot.config import Settings


def add_parser(commands, row_id) -> None:
    forget = commands.add_parser(
        "forget", help="forget a Discord user's prompts and kept images in every server",
        description="As a bot owner, for a deletion request that came by mail or elsewhere: blank USER_ID's "
                    "prompts, seeds and report notes and remove their kept images in every server. The rate "
                    "limits keep counting their images (time and cost only) until the longest window passes. "
                    "Their messages on Discord stay: they (or a server's admins) delete those, or use /forget.")
    forget.add_argument("user", type=row_id, metavar="USER_ID")


async def forget(settings: Settings, args: argparse.Namespace) -> int:
    import time

    from zbot.core import privacy
    from zbot.core.drawn import DrawnImages, drawn_dir
    from zbot.core.store import Store

    store = await Store.open(settings.database)
    try:
        done = await privacy.forget(store, DrawnImages(drawn_dir(settings.database)), args.user, privacy.EVERYWHERE,
                                    now=time.time(), keep_s=privacy.longest_window_s(settings))
    finally:
        await store.close()
    print(f"forgot user {args.user} in every server: {done.images} images ({done.files} kept files removed); "
          "the limits count their recent ones, without content, until their windows pass")
    return 0
