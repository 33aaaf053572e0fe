"""Reliability: bursts, faults and hostile input, end to end through the fake Discord."""

from __future__ import annotations

import logging

import pytest
from support.botkit import bot_settings, finished, running_bot, seed_in
from support.burstkit import burst
from support.fake_discord import FakeDiscord, fast_discord_sleeps
from support.renderers import FakeRenderer


async def test_a_burst_is_acknowledged_and_the_database_matches_what_happened(tmp_path, tiny_model):
    figures = await burst(tmp_path, tiny_model, requests=60, users=20, within_s=1.0,
                          rate_limits="2/minute", max_pending_per_user=2)
    assert figures["acknowledged"] == 60
    assert figures["admitted"] + figures["refused"] == 60
    assert figures["refused_with_reason"] == figures["refused"] > 0
    assert figures["admitted"] <= 40  # 2 a minute for each of 20 users
    assert figures["rows_match"], figures
    assert figures["ack_ms_max"] < 3000  # never "The application did not respond"


async def test_a_failing_render_tells_its_user_and_the_next_job_renders(fake, tmp_path, tiny_model):
    async with running_bot(fake, bot_settings(tmp_path, tiny_model)) as run:
        original_render = run.engine.render

        def render(spec, on_step):
            if spec.prompt == "explode":
                raise RuntimeError("CUDA error: an illegal memory access was encountered")
            return original_render(spec, on_step)

        run.engine.render = render
        fake.fail_on_logged_errors = False  # the failure is logged with its traceback, as it should be
        bad = await fake.slash("draw", {"prompt": "explode", "size": "small"})
        good = await fake.slash("draw", {"prompt": "a calm lake", "size": "small"})
        failed = await bad.wait_original(lambda m: "could not be drawn" in m.content)
        fine = await good.wait_original(finished)
        await run.settle()
        rows = await run.core.store.query("SELECT status, error FROM generations ORDER BY id")
        logged = [record.getMessage() for record in fake.take_logged_errors()]
    assert "the renderer failed (RuntimeError)" in failed.content and "did not count" in failed.content
    assert "CUDA error" not in failed.content  # no internals shown to users
    assert "a calm lake" in fine.content
    assert [r["status"] for r in rows] == ["failed", "posted"]
    assert logged == ["job 1 failed to render"]


@pytest.mark.parametrize("status", [500, 502])
async def test_server_errors_on_the_upload_are_retried_then_posted(fake, tmp_path, tiny_model, status):
    with fast_discord_sleeps():
        async with running_bot(fake, bot_settings(tmp_path, tiny_model)) as run:
            fault = fake.fail_next("PATCH", r"/webhooks/\d+/[^/]+/messages/@original", status, times=3)
            message = await (await fake.slash("draw", {"prompt": "retry me", "size": "small"})).wait_original(finished)
            await run.settle()
    assert fault.hits == 3 and "retry me" in message.content
    assert len([m for m in fake.bot_messages if m.attachments]) == 1  # posted once


async def test_when_the_webhook_keeps_failing_the_image_goes_to_the_channel(fake, tmp_path, tiny_model):
    with fast_discord_sleeps():
        async with running_bot(fake, bot_settings(tmp_path, tiny_model)) as run:
            ix = await fake.slash("draw", {"prompt": "stubborn", "size": "small"})
            await ix.wait_response()
            fake.fail_next("PATCH", r"/webhooks/", 502, times=None)
            posted = await fake.wait_for(lambda f: next(
                (m for m in f.bot_messages if m.source == "channel" and m.attachments), None), timeout=30)
            fake.clear_faults()
            fake.take_logged_errors()
            await run.settle()
    assert "stubborn" in posted.content and len([m for m in fake.bot_messages if m.attachments]) == 1


async def test_rate_limits_from_discord_are_honoured(fake, tmp_path, tiny_model):
    with fast_discord_sleeps(1.0):
        async with running_bot(fake, bot_settings(tmp_path, tiny_model)) as run:
            fault = fake.fail_next("PATCH", r"/messages/@original", 429, times=2, retry_after=0.2)
            message = await (await fake.slash("draw", {"prompt": "patience", "size": "small"})).wait_original(finished)
            await run.settle()
    assert fault.hits == 2 and "patience" in message.content
    patches = [r for r in fake.request_log if r.method == "PATCH" and "@original" in r.path]
    limited = [r for r in patches if r.status == 429]
    after = next(r for r in patches if r.time > limited[-1].time)
    assert after.time - limited[-1].time >= 0.19  # waited as told


@pytest.mark.parametrize("resumable", [True, False])
async def test_a_dropped_gateway_loses_no_job_and_posts_none_twice(fake, tmp_path, tiny_model, resumable):
    with fast_discord_sleeps():
        async with running_bot(fake, bot_settings(tmp_path, tiny_model)) as run:
            run.engine.gate.clear()
            ix = await fake.slash("draw", {"prompt": "through the storm", "size": "small"})
            await ix.wait_response()
            await fake.drop_gateway(resumable=resumable)
            await fake.wait_connected(timeout=30)
            run.engine.gate.set()
            message = await ix.wait_original(finished, timeout=30)
            after = await (await fake.slash("draw", {"prompt": "after the storm", "size": "small"})).wait_original(finished)
            await run.settle()
            rows = await run.core.store.query("SELECT status FROM generations")
    assert "through the storm" in message.content and "after the storm" in after.content
    assert len([m for m in fake.bot_messages if m.attachments]) == 2
    assert [r["status"] for r in rows] == ["posted", "posted"]
    assert (fake.gateway.resume_count if resumable else fake.gateway.identify_count) >= 1 + (not resumable)


HOSTILE = [
    "@everyone @here look",
    "<@1400000000000000001> and <@&1200000000000000001> and <@!1400000000000000002>",
    "**bold** __under__ ~~strike~~ `code` ||spoiler|| > quote [link](https://example.com)",
    "zero\u200bwidth\u200d joiner\ufeff",
    "right-to-left \u202eoverride\u202c here",
    "'; DROP TABLE generations; --",
    "Robert'); DELETE FROM generations WHERE ('1'='1",
    "🦊🔥 emoji 👩‍👩‍👧",
    "一只红狐狸在雪地里奔跑",
]


@pytest.mark.parametrize("prompt", HOSTILE)
async def test_hostile_prompts_are_drawn_as_is_and_never_ping(fake, tmp_path, tiny_model, prompt):
    seen = []
    async with running_bot(fake, bot_settings(tmp_path, tiny_model)) as run:
        original_render = run.engine.render
        run.engine.render = lambda spec, on_step: (seen.append(spec.prompt), original_render(spec, on_step))[1]
        message = await (await fake.slash("draw", {"prompt": prompt, "size": "small"})).wait_original(finished)
        await run.settle()
        rows = await run.core.store.query("SELECT prompt, status FROM generations")
        assert (await run.core.store.query("PRAGMA integrity_check"))[0][0] == "ok"
    assert seen == [prompt]  # reaches the model intact (CJK included)
    assert [(r["prompt"], r["status"]) for r in rows] == [(prompt, "posted")]
    assert all(not m.pings for m in fake.bot_messages)
    assert seed_in(message) >= 0


@pytest.mark.parametrize("prompt, reason", [("x" * 10_000, "most allowed is 1000"),
                                            ("bell\x07 and null\x00", "control characters")])
async def test_hostile_prompts_that_are_refused_say_why(fake, tmp_path, tiny_model, prompt, reason):
    async with running_bot(fake, bot_settings(tmp_path, tiny_model)) as run:
        answer = await (await fake.slash("draw", {"prompt": prompt})).wait_response()
        assert run.core.executor.depth == 0
    assert answer.data["flags"] & 64 and reason in answer.data["content"]


async def test_thirty_reroll_clicks_in_a_second_are_bound_by_the_limits(fake, tmp_path, tiny_model):
    async with running_bot(fake, bot_settings(tmp_path, tiny_model, rate_limits="5/minute",
                                              max_pending_per_user=5)) as run:
        image = await (await fake.slash("draw", {"prompt": "spam", "size": "small"})).wait_original(finished)
        clicks = [await fake.click(image, image.custom_ids[0]) for _ in range(30)]
        await fake.wait_for(lambda f: all(c.callbacks for c in clicks))
        admitted = [c for c in clicks if not c.callbacks[0].data.get("flags", 0) & 64]
        await fake.wait_for(lambda f: all(c.original and c.original.attachments for c in admitted), timeout=60)
        await run.settle()
        counted = (await run.core.store.query(
            "SELECT count(*) FROM generations WHERE status IN ('posted', 'drawn', 'queued', 'running')"))[0][0]
    assert len(admitted) == 4 and counted == 5  # 5 a minute, the first /draw included
    refusals = [c.callbacks[0].data["content"] for c in clicks if c not in admitted]
    assert all("limit of 5 images per minute" in text for text in refusals)


async def test_the_token_never_appears_in_logs_errors_or_the_database(tmp_path, tiny_model, caplog):
    caplog.set_level(logging.DEBUG)
    token = "fake-bot-token-" + "s3cr3t" * 4
    async with FakeDiscord(token=token, watch_loggers=()) as fake:
        # A failing login: a wrong token is refused...
        import discord

        from zbot.bot.client import ZBot

        settings = bot_settings(tmp_path, tiny_model)
        from support.fake_discord import point_discord_at

        from zbot.app import open_core

        # (A stand-in renderer: a model still loading in a leftover thread would race the next test's.)
        async with open_core(settings, [FakeRenderer()]) as core:
            bot = ZBot(settings, core.service)
            with point_discord_at(fake), pytest.raises(discord.LoginFailure):
                await bot.login(token + "-wrong")
            await bot.close()
        # ... and a failing request while serving.
        with fast_discord_sleeps():
            async with running_bot(fake, settings) as run:
                fake.fail_next("PATCH", r"/webhooks/", 500, times=None)
                ix = await fake.slash("draw", {"prompt": "secret keeper", "size": "small"})
                await fake.wait_for(lambda f: any(m.source == "channel" and m.attachments for m in f.bot_messages),
                                    timeout=30)
                fake.clear_faults()
                await run.settle()
                dump = "\n".join(str(tuple(r)) for r in await run.core.store.query("SELECT * FROM generations"))
    logged = "\n".join(record.getMessage() + str(record.exc_text or "") for record in caplog.records)
    assert ix.callbacks and logged
    assert token not in logged and token not in dump
    assert token not in caplog.text


async def test_an_interaction_that_cannot_be_answered_still_gets_its_image_posted(fake, tmp_path, tiny_model):
    async with running_bot(fake, bot_settings(tmp_path, tiny_model)) as run:
        fake.fail_next("POST", r"/interactions/\d+/[^/]+/callback", 404,
                       json_body={"code": 10062, "message": "Unknown interaction"})
        await fake.slash("draw", {"prompt": "answered late", "size": "small"})
        posted = await fake.wait_for(lambda f: next(
            (m for m in f.bot_messages if m.source == "channel" and m.attachments), None), timeout=30)
        await run.settle()
        row = (await run.core.store.query("SELECT status, message_id FROM generations"))[0]
    assert "answered late" in posted.content and posted.pings == {f"user:{fake.user_id}"}
    assert (row["status"], row["message_id"]) == ("posted", posted.id)
