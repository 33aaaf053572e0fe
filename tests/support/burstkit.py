"""A burst of /draw from many users through the fake Discord, and a check that the database tells
exactly what happened. Used by a test (small) and by bench/burst.py (300 requests from 100 users)."""

from __future__ import annotations

import asyncio
import random
import statistics
import time

from support.botkit import bot_settings, running_bot
from support.fake_discord import FakeDiscord


async def burst(tmp_path, tiny_model, *, requests: int, users: int, within_s: float, size: str = "small",
                seed: int = 1, **settings_changes) -> dict:
    rng = random.Random(seed)
    async with FakeDiscord(watch_loggers=("discord", "zbot")) as fake:
        members = [fake.add_member(name=f"user{i}") for i in range(users)]
        settings = bot_settings(tmp_path, tiny_model, **settings_changes)
        async with running_bot(fake, settings) as run:
            started = time.monotonic()
            interactions = []
            for i in range(requests):
                # Spread the sends over the window, as people clicking at once would.
                await asyncio.sleep(max(0.0, started + within_s * i / requests - time.monotonic()))
                user = rng.choice(members)
                interactions.append(await fake.slash("draw", {"prompt": f"burst {i}", "size": size}, user_id=user))
            sent_s = time.monotonic() - started
            await fake.wait_for(lambda f: all(ix.callbacks for ix in interactions), timeout=60)
            acks = [ix.callbacks[0].at - ix.created_at for ix in interactions]
            refused = [ix for ix in interactions if ix.callbacks[0].data.get("flags", 0) & 64]
            admitted = [ix for ix in interactions if ix not in refused]

            def posted(ix) -> bool:
                return ix.original is not None and bool(ix.original.attachments)

            await fake.wait_for(lambda f: all(posted(ix) for ix in admitted), timeout=600)
            drained_s = time.monotonic() - started
            await run.settle()
            rows = await run.core.store.query("SELECT status, message_id, interaction_id FROM generations")
            counted = await run.core.store.scalar(run.core.store.connection,
                                                  "SELECT coalesce(sum(count), 0) FROM refusals")
    by_status: dict[str, int] = {}
    for row in rows:
        by_status[row["status"]] = by_status.get(row["status"], 0) + 1
    posted_ids = {ix.original.id for ix in admitted}
    acks_sorted = sorted(acks)
    return {
        "requests": requests,
        "users": users,
        "sent_within_s": round(sent_s, 3),
        "acknowledged": sum(1 for ix in interactions if ix.callbacks),
        "admitted": len(admitted),
        "refused_with_reason": sum(1 for ix in refused if ix.callbacks[0].data.get("content")),
        "refused": len(refused),
        "ack_ms_median": round(1000 * statistics.median(acks), 1),
        "ack_ms_p99": round(1000 * acks_sorted[min(len(acks) - 1, int(0.99 * len(acks)))], 1),
        "ack_ms_max": round(1000 * acks_sorted[-1], 1),
        "all_posted_after_s": round(drained_s, 2),
        "rows": len(rows),
        "rows_by_status": by_status,
        "refusals_counted": counted,
        # A row per admitted request; refused ones are counted (table refusals), not kept as rows.
        "rows_match": (len(rows) == len(admitted)
                       and by_status.get("posted", 0) == len(admitted)
                       and counted == len(refused)
                       and {r["message_id"] for r in rows if r["status"] == "posted"} == posted_ids
                       and {r["interaction_id"] for r in rows} == {ix.id for ix in admitted}),
    }
