"""Several images at a time: a grid of candidates to pick from, rerolled whole, cancelled while queued,
and every button still working after a restart. End to end through the fake Discord, tiny model."""

from __future__ import annotations

import asyncio
import base64
import io
import re
import time

from PIL import Image
from support.botkit import bot_settings, control, finished, grid_controls, image_controls, running_bot
from support.fake_discord import EPHEMERAL
from support.renderers import FakeRenderer
from test_http import KEY, serving, with_keys

from zbot.app import open_core
from zbot.core.usage import usage_report


def seeds_in(message) -> list[int]:
    """The seeds a message names ("seed 123", a grid's "· seed 123" for each image)."""
    return [int(s) for s in re.findall(r"seed (\d+)", message.content)]


async def test_count_4_is_one_message_with_a_numbered_grid_and_four_seeds(fake, tmp_path, tiny_model):
    async with running_bot(fake, bot_settings(tmp_path, tiny_model, rate_limits="5/minute")) as run:
        ix = await fake.slash("draw", {"prompt": "four foxes", "size": "small", "seed": 100, "count": 4})
        grid = await ix.wait_original(finished, timeout=60)
        await run.settle()
        quota = await (await fake.slash("quota")).wait_response()
        [row] = await run.core.store.query("SELECT id, seed, count, status, message_id FROM generations")
        usage = await usage_report(run.core.store, now=time.time())
    assert seeds_in(grid) == [100, 101, 102, 103] and "four foxes" in grid.content
    [attachment] = grid.attachments
    assert attachment.filename == "zbot-100-grid.png"
    assert Image.open(io.BytesIO(attachment.data)).size == (2 * 64 + 3 * 6, 2 * 64 + 3 * 6)  # 2x2, tiles as drawn
    job = row["id"]
    assert grid.custom_ids == grid_controls(job, 4)
    assert (row["count"], row["status"], row["message_id"]) == (4, "posted", grid.id)
    assert "1 of 5 left" in quota.data["content"]  # four images counted
    assert usage.images == usage.images_24h == 4 and usage.per_day[0][1] == 4 and usage.top_users[0].done == 4


async def test_button_3_posts_image_3_byte_identical_to_drawing_its_seed_alone(fake, tmp_path, tiny_model):
    async with running_bot(fake, bot_settings(tmp_path, tiny_model)) as run:
        grid = await (await fake.slash("draw", {"prompt": "a lighthouse", "size": "small", "seed": 7,
                                                "count": 4})).wait_original(finished, timeout=60)
        [picked] = await (await fake.click(grid, grid.custom_ids[2])).wait_followups(1)
        alone = await (await fake.slash("draw", {"prompt": "a lighthouse", "size": "small", "seed": 9})
                       ).wait_original(finished)
        await run.settle()
        rows = await run.core.store.query("SELECT operation, parent_id, count, seed, status FROM generations ORDER BY id")
        costs = [r[0] for r in await run.core.store.query("SELECT cost FROM generations ORDER BY id")]
    assert seeds_in(picked) == [9] and "image 3 of the grid" in picked.content
    assert picked.attachments[0].data == alone.attachments[0].data
    pick_id = 2
    assert picked.custom_ids == image_controls(pick_id)
    assert [tuple(r) for r in rows][:2] == [("draw", None, 4, 7, "posted"), ("pick", 1, 0, 9, "posted")]
    assert costs[:2] == [4, 0]  # a pick posts an image its grid drew: it costs nothing more


async def test_a_pick_is_for_the_requester_and_a_kept_image_gone_is_drawn_again(fake, tmp_path, tiny_model):
    bob = fake.add_member(name="bob")
    async with running_bot(fake, bot_settings(tmp_path, tiny_model)) as run:
        grid = await (await fake.slash("draw", {"prompt": "a boat", "size": "small", "seed": 1, "count": 2})
                      ).wait_original(finished, timeout=60)
        refused = await (await fake.click(grid, grid.custom_ids[1], user_id=bob)).wait_response()
        [first] = await (await fake.click(grid, grid.custom_ids[1])).wait_followups(1)
        run.core.lifecycle.images.remove(1)  # the kept images are gone (pruned)
        again = await (await fake.click(grid, grid.custom_ids[1])).wait_original(finished, timeout=60)
        await run.settle()
        last = (await run.core.store.query("SELECT operation, count, seed FROM generations ORDER BY id DESC"))[0]
    assert refused.data["flags"] & EPHEMERAL and "Only the person who asked" in refused.data["content"]
    assert again.attachments[0].data == first.attachments[0].data  # drawn again from its seed: the same
    assert tuple(last) == ("pick", 1, 2)  # this time drawn, and counted


async def test_reroll_on_a_grid_gives_as_many_new_seeds(fake, tmp_path, tiny_model):
    async with running_bot(fake, bot_settings(tmp_path, tiny_model)):
        grid = await (await fake.slash("draw", {"prompt": "a kite", "size": "small", "count": 4})
                      ).wait_original(finished, timeout=60)
        click = await fake.click(grid, control(grid, "reroll"))
        rerolled = await click.wait_original(finished, timeout=60)
        again = await (await fake.slash("reroll")).wait_original(finished, timeout=60)
    assert len(seeds_in(rerolled)) == 4 and not set(seeds_in(rerolled)) & set(seeds_in(grid))
    assert len(seeds_in(again)) == 4 and rerolled.attachments[0].filename.endswith("-grid.png")


async def test_cancel_takes_a_queued_job_out_and_frees_its_images(fake, tmp_path, tiny_model):
    bob = fake.add_member(name="bob")
    async with running_bot(fake, bot_settings(tmp_path, tiny_model, rate_limits="5/minute")) as run:
        run.engine.gate.clear()
        first = await fake.slash("draw", {"prompt": "running", "size": "small"})
        await first.wait_response()
        await asyncio.to_thread(run.engine.started.wait, 10)
        waiting = await fake.slash("draw", {"prompt": "waiting", "size": "small", "count": 3})
        queued = await waiting.wait_original(lambda m: m.custom_ids)
        assert queued.custom_ids == ["zbot:cancel:2"] and "Queued" in queued.content
        refused = await (await fake.click(queued, queued.custom_ids[0], user_id=bob)).wait_response()
        await fake.click(queued, queued.custom_ids[0])
        cancelled = await waiting.wait_original(lambda m: "Cancelled" in m.content)
        run.engine.gate.set()
        await first.wait_original(finished)
        await run.settle()
        quota = await (await fake.slash("quota")).wait_response()
        statuses = [r[0] for r in await run.core.store.query("SELECT status FROM generations ORDER BY id")]
    assert refused.data["flags"] & EPHEMERAL and "Only the person who asked" in refused.data["content"]
    assert cancelled.custom_ids == [] and not cancelled.attachments
    assert statuses == ["posted", "cancelled"] and "4 of 5 left" in quota.data["content"]


async def test_a_count_over_what_is_left_is_refused_with_the_allowance(fake, tmp_path, tiny_model):
    async with running_bot(fake, bot_settings(tmp_path, tiny_model, rate_limits="5/minute")):
        await (await fake.slash("draw", {"prompt": "a", "size": "small", "count": 4})).wait_original(finished)
        refused = await (await fake.slash("draw", {"prompt": "b", "size": "small", "count": 4})).wait_response()
        too_many = await (await fake.slash("draw", {"prompt": "b", "size": "small", "count": 1})).wait_original(
            finished)
    assert refused.data["flags"] & EPHEMERAL
    assert "You may draw only 1 more image right now (5 images per minute): ask for 1 or fewer" in \
        refused.data["content"]
    assert "<t:" in refused.data["content"] and seeds_in(too_many)


async def test_progress_says_which_image_is_being_drawn(fake, tmp_path, tiny_model):
    async with running_bot(fake, bot_settings(tmp_path, tiny_model)) as run:
        # Each image held after its first step until its progress is shown (was: 1024x1024, seconds each).
        run.engine.hold_after_first_step = True
        ix = await fake.slash("draw", {"prompt": "slow", "size": "small", "count": 2})
        for image in (1, 2):
            await ix.wait_original(lambda m, image=image: f"image {image} of 2 · step" in m.content, timeout=30)
            run.engine.go_on.release()
        grid = await ix.wait_original(finished, timeout=30)
    shown = [edit.payload.get("content", "") for edit in grid.edits]
    assert any("image 2 of 2 · step" in text for text in shown), shown


async def test_the_grid_buttons_work_after_a_restart(fake, tmp_path, tiny_model):
    settings = bot_settings(tmp_path, tiny_model)
    async with running_bot(fake, settings):
        grid = await (await fake.slash("draw", {"prompt": "a harbour", "size": "small", "seed": 50, "count": 2})
                      ).wait_original(finished, timeout=60)
    async with running_bot(fake, settings) as run:
        [picked] = await (await fake.click(grid, grid.custom_ids[1])).wait_followups(1)
        rerolled = await (await fake.click(grid, control(grid, "reroll"))).wait_original(finished, timeout=60)
        await run.settle()
    assert seeds_in(picked) == [51] and len(seeds_in(rerolled)) == 2


async def test_http_count_answers_json_with_each_image_and_its_seed(settings):
    async with open_core(with_keys(settings, KEY), [FakeRenderer()]) as core, serving(core) as client:
        many = await client.draw({"prompt": "a fox", "seed": 10, "count": 3})
        body = await many.json()
        one = await client.draw({"prompt": "a fox", "seed": 11})
        one_png = await one.read()
        too_many = await client.draw({"prompt": "a fox", "count": 5})
    assert many.status == 200 and many.content_type == "application/json"
    assert [image["seed"] for image in body["images"]] == [10, 11, 12]
    assert all(base64.b64decode(image["png"]).startswith(b"\x89PNG") for image in body["images"])
    assert base64.b64decode(body["images"][1]["png"]) == one_png  # the same seed alone: the same image
    assert too_many.status == 422 and "1 to 4 images" in (await too_many.json())["error"]


def test_zbot_draw_count_writes_one_file_per_image(tiny_model, tmp_path, zbot_here):
    # In this process (`zbot draw` as a process, its output and exit status: tests/test_cli.py).
    code, out, err = zbot_here("draw", "two foxes", "--seed", "5", "--count", "2", "--out", "fox.png",
                               ZBOT_MODEL=str(tiny_model), ZBOT_SIZES='{"square": "64x64"}', ZBOT_SAFETY="off")
    assert code == 0, err
    assert (tmp_path / "fox-5.png").is_file() and (tmp_path / "fox-6.png").is_file()
    assert "seed 5" in out and "seed 6" in out


async def test_a_count_no_window_ever_allows_is_refused_without_a_time_to_wait(fake, tmp_path, tiny_model):
    async with running_bot(fake, bot_settings(tmp_path, tiny_model, rate_limits="3/hour")):
        refused = await (await fake.slash("draw", {"prompt": "b", "size": "small", "count": 4})).wait_response()
    assert "at most 3 images per hour, and this counts as 4; ask for 3 or fewer" in refused.data["content"]
    assert "<t:" not in refused.data["content"]


async def test_the_default_count_is_for_discord_other_tools_get_one_image_unless_they_ask(settings):
    settings = with_keys(settings, KEY).model_copy(update={"default_count": 4})
    async with open_core(settings, [FakeRenderer()]) as core, serving(core) as client:
        one = await client.draw({"prompt": "a fox"})
    assert one.status == 200 and one.content_type == "image/png"


async def test_a_member_banned_after_drawing_a_grid_cant_pick_from_it(fake, tmp_path, tiny_model):
    """A pick posts an image: the ban that refuses their draws refuses it too, privately, with nothing
    recorded but the refusal (picks went around admission, and so around bans)."""
    from zbot.core.bans import Actor

    async with running_bot(fake, bot_settings(tmp_path, tiny_model)) as run:
        grid = await (await fake.slash("draw", {"prompt": "a gull", "size": "small", "seed": 3, "count": 2})
                      ).wait_original(finished, timeout=60)
        await run.settle()
        await run.core.service.ban(Actor(1, owner=True), fake.user_id, fake.guild_id, "spam")
        refused = await (await fake.click(grid, control(grid, "pick"))).wait_response()
        await run.settle()
        rows = await run.core.store.query("SELECT operation FROM generations ORDER BY id")
        counted = await run.core.store.query("SELECT reason, count FROM refusals")
    assert refused.data["flags"] & EPHEMERAL and "can't use zbot in this server" in refused.data["content"]
    assert [r[0] for r in rows] == ["draw"]  # no pick recorded, none posted
    assert [tuple(r) for r in counted] == [("banned", 1)]


async def test_a_pick_the_database_cant_record_is_refused_privately_not_an_error(fake, tmp_path, tiny_model):
    """A full disk when a pick is recorded: the same short refusal as a draw's, with a time to try again
    (it was an unexpected error: an apology with an id and a traceback in the logs)."""
    from test_disk_full import fill_up

    async with running_bot(fake, bot_settings(tmp_path, tiny_model)) as run:
        grid = await (await fake.slash("draw", {"prompt": "a heron", "size": "small", "seed": 5, "count": 2})
                      ).wait_original(finished, timeout=60)
        await run.settle()
        fake.fail_on_logged_errors = False  # the Store logs the refused writes once, at ERROR
        await fill_up(run.core.store)
        fake.take_logged_errors()
        click = await fake.click(grid, control(grid, "pick"))
        [refused] = await click.wait_followups(1, timeout=30)
        logged = fake.take_logged_errors()
        fake.fail_on_logged_errors = True
        picks = await run.core.store.query("SELECT id FROM generations WHERE operation = 'pick'")
    assert refused.flags & EPHEMERAL and "my database won't save them" in refused.content
    assert "Try again" in refused.content and "error `" not in refused.content
    assert not [record for record in logged if record.exc_info]  # no traceback: nothing unexpected
    assert picks == []
