"""Content safety: every image checked before anyone sees it, the Report flow, no broken images.

The policy tests use a checker whose verdict the test sets; the checkers themselves run for real: the
vit checker's code path on a random checkpoint of its architecture, NudeNet's detector on real photos."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from PIL import Image
from support.botkit import bot_settings, control, finished, posted_images, running_bot
from support.fake_discord import EPHEMERAL, FakeDiscord
from support.renderers import FakeRenderer
from test_http import KEY, OTHER_KEY, serving, with_keys

from zbot.app import open_core
from zbot.core.jobs import DrawRequest, RenderFailed
from zbot.engine.safety import Inspector, NudeNetChecker, ViTChecker

SAFE_PHOTOS = sorted((Path(__file__).parent / "data" / "safe").glob("*.jpg"))


class ScriptedChecker:
    """A checker whose score the test sets (0.9 flags at the default threshold, 0.1 passes)."""

    name = "scripted"

    def __init__(self, score: float = 0.1):
        self.next_score = score
        self.seen = 0

    def load(self) -> None:
        pass

    def score(self, image) -> float:
        self.seen += 1
        return self.next_score


async def rows(run) -> list[tuple]:
    return [tuple(r) for r in await run.core.store.query(
        "SELECT status, safety_score, message_id FROM generations ORDER BY id")]


# -- the policy, end to end -----------------------------------------------------------------------

async def test_a_flagged_image_is_withheld_in_a_normal_channel_and_its_user_told_privately(fake, tmp_path, tiny_model):
    checker = ScriptedChecker(0.93)
    async with running_bot(fake, bot_settings(tmp_path, tiny_model, rate_limits="5/minute"), checker) as run:
        ix = await fake.slash("draw", {"prompt": "something flagged", "size": "small"})
        [notice] = await ix.wait_followups(1, timeout=30)
        await fake.wait_for(lambda f: ix.original is None or ix.original.deleted)
        await run.settle()
        quota = await (await fake.slash("quota")).wait_response()
        recorded = await rows(run)
    assert notice.flags & EPHEMERAL and "safety check flagged it" in notice.content
    assert posted_images(fake) == [] and recorded == [("blocked", 0.93, None)]
    assert "4 of 5 left" in quota.data["content"]  # it counts: the GPU drew it
    assert not list((tmp_path / "zbot.sqlite3-drawn").iterdir())  # and nothing of it is kept


@pytest.mark.parametrize("mode", ["post", "spoiler"])
async def test_a_flagged_image_is_posted_in_an_age_restricted_channel(fake, tmp_path, tiny_model, mode):
    adult = fake.add_channel("after-dark", nsfw=True)
    settings = bot_settings(tmp_path, tiny_model, safety_nsfw_channels=mode)
    async with running_bot(fake, settings, ScriptedChecker(0.93)) as run:
        ix = await fake.slash("draw", {"prompt": "allowed here", "size": "small"}, channel_id=adult)
        message = await ix.wait_original(finished, timeout=30)
        await run.settle()
        recorded = await rows(run)
    assert message.channel_id == adult and recorded == [("posted", 0.93, message.id)]
    assert message.attachments[0].filename.startswith("SPOILER_") == (mode == "spoiler")


async def test_a_reroll_is_checked_too(fake, tmp_path, tiny_model):
    checker = ScriptedChecker(0.1)
    async with running_bot(fake, bot_settings(tmp_path, tiny_model), checker) as run:
        first = await (await fake.slash("draw", {"prompt": "fine at first", "size": "small"})).wait_original(finished)
        checker.next_score = 0.8
        click = await fake.click(first, first.custom_ids[0])
        [notice] = await click.wait_followups(1, timeout=30)
        await run.settle()
        recorded = await rows(run)
    assert "safety check flagged it" in notice.content and notice.flags & EPHEMERAL
    assert [r[0] for r in recorded] == ["posted", "blocked"] and len(posted_images(fake)) == 1


async def test_an_image_kept_over_a_restart_is_checked_before_it_is_posted(fake, tmp_path, tiny_model):
    from zbot.bot.recovery import resume_unfinished
    from zbot.core.drawn import DrawnImages, drawn_dir
    from zbot.core.store import Store

    settings = bot_settings(tmp_path, tiny_model)
    store = await Store.open(settings.database)
    job = await store.record(user_id=fake.user_id, guild_id=fake.guild_id, channel_id=fake.channel_id,
                             prompt="drawn before a restart", seed=1, size="small", width=64, height=64, steps=8,
                             status="drawn", owner=None)
    await store.close()
    kept = Image.linear_gradient("L").convert("RGB").resize((64, 64))
    kept.save(tmp_path / "kept.png")
    DrawnImages(drawn_dir(settings.database)).save(job, (tmp_path / "kept.png").read_bytes())
    checker = ScriptedChecker(0.9)  # this start's checker flags it
    async with running_bot(fake, settings, checker) as run:
        await resume_unfinished(run.bot)
        told = await fake.wait_for(lambda f: next((m for m in f.bot_messages if "flagged it" in m.content), None))
        await run.settle()
        recorded = await rows(run)
    assert checker.seen == 1 and posted_images(fake) == [] and recorded == [("blocked", None, None)]
    # No interaction any more: told in a direct message, where only they see it.
    assert told.channel_id != fake.channel_id and fake.channels[told.channel_id]["type"] == 1


async def test_http_refuses_a_flagged_image_unless_the_key_may_have_it(settings):
    settings = with_keys(settings, KEY, OTHER_KEY).model_copy(update={"api_keys_adult": [
        s for s in with_keys(settings, OTHER_KEY).api_keys]})
    async with open_core(settings, [FakeRenderer()], checker=ScriptedChecker(0.95)) as core, \
            serving(core) as client:
        refused = await client.draw({"prompt": "flagged"})
        allowed = await client.draw({"prompt": "flagged"}, key=OTHER_KEY)
        await core.service.drain()
        statuses = [r[0] for r in await core.store.query("SELECT status FROM generations ORDER BY id")]
    body = await refused.json()
    assert refused.status == 422 and body["code"] == "image_blocked" and "still counts" in body["error"]
    assert allowed.status == 200 and allowed.headers["X-Zbot-Flagged"] == "true"
    assert allowed.headers["X-Zbot-Safety-Score"] == "0.9500"
    assert statuses == ["blocked", "posted"]


# -- the Report button ----------------------------------------------------------------------------

async def test_a_report_reaches_the_admin_channel_and_an_admin_deletes_the_image_from_it(fake, tmp_path, tiny_model):
    admins = fake.add_channel("zbot-reports")
    bob = fake.add_member(name="bob")
    settings = bot_settings(tmp_path, tiny_model, report_channel_id=admins, admin_ids=[fake.owner_id])
    async with running_bot(fake, settings, ScriptedChecker(0.2)) as run:
        image = await (await fake.slash("draw", {"prompt": "a questionable fox", "size": "small"})).wait_original(
            finished)
        opened = await fake.click(image, control(image, "report"), user_id=bob)
        await opened.wait_response()
        submitted = await fake.submit_modal(opened, {"zbot:report-note": "not for this channel"})
        [thanks] = await submitted.wait_followups(1)  # deferred first: storing may wait on the database
        report = await fake.wait_for(lambda f: next((m for m in f.bot_messages if m.channel_id == admins), None))
        # A member can't delete from the report; an owner can, in one click.
        refused = await (await fake.click(report, report.custom_ids[0], user_id=bob)).wait_response()
        await fake.click(report, report.custom_ids[0], user_id=fake.owner_id)
        await fake.wait_for(lambda f: image.deleted and "deleted by" in report.content)
        await run.settle()
        stats = await fake.slash("stats", user_id=fake.owner_id)
        [stats_report] = await stats.wait_followups(1)
        stored = [tuple(r) for r in await run.core.store.query(
            "SELECT generation_id, reporter_id, note, resolved_by FROM reports")]
        recorded = await rows(run)
    assert thanks.flags & EPHEMERAL and "admins" in thanks.content
    fields = {f["name"]: f["value"] for f in report.embeds[0]["fields"]}
    assert "a questionable fox" in fields["Prompt"] and fields["Requester"] == f"<@{fake.user_id}>"
    assert fields["Reported by"] == f"<@{bob}>" and "not for this channel" in fields["Note"]
    assert str(image.id) in fields["Image"] and fields["Seed"].isdigit()
    assert report.pings == set()
    assert refused.data["flags"] & EPHEMERAL and "Only the bot's owners" in refused.data["content"]
    assert stored == [(1, bob, "not for this channel", fake.owner_id)] and recorded[0][0] == "deleted"
    safety = {f["name"]: f["value"] for f in stats_report.embeds[0]["fields"]}["Safety"]
    assert "1 reported" in safety


# -- broken output --------------------------------------------------------------------------------

async def test_a_render_with_nan_pixels_fails_instead_of_posting_a_black_image(settings, tiny_model):
    from zbot.engine.engine import Engine

    engine = Engine(str(tiny_model), device="cpu")
    async with open_core(settings.model_copy(update={"sizes": {"square": "64x64"}}), [engine]) as core:
        await core.executor.wait_ready()
        engine.pipe.vae.decoder.conv_out.bias.data.fill_(float("nan"))  # what fp16 overflow does to this model
        ticket = await core.service.submit(DrawRequest(user_id=1, prompt="a fox"))
        with pytest.raises(RenderFailed, match="not-a-number"):
            await ticket.result()
        await core.service.drain()
        [status] = [r[0] for r in await core.store.query("SELECT status FROM generations")]
    assert status == "failed"


async def test_a_flat_image_fails_instead_of_being_posted(settings):
    class Flat(FakeRenderer):
        def render(self, spec, on_step):
            super().render(spec, on_step)
            return Image.new("RGB", (spec.width, spec.height), (0, 0, 0))

    async with open_core(settings, [Flat()]) as core:
        ticket = await core.service.submit(DrawRequest(user_id=1, prompt="a fox"))
        with pytest.raises(RenderFailed, match="one flat colour"):
            await ticket.result()


# -- the checkers, for real -----------------------------------------------------------------------

def test_nudenet_lets_real_safe_photographs_through():
    checker = NudeNetChecker()
    checker.load()
    inspector = Inspector(checker, threshold=0.5)
    verdicts = {photo.name: inspector(Image.open(photo).convert("RGB")) for photo in SAFE_PHOTOS}
    assert len(verdicts) == 4 and not any(v.flagged for v in verdicts.values()), verdicts
    # It really looked: a face is found in the portrait (a class that doesn't flag).
    found = checker.detector.detect(__import__("numpy").asarray(
        Image.open(SAFE_PHOTOS[[p.name for p in SAFE_PHOTOS].index("grace_hopper.jpg")]).convert("RGBA")))
    assert any(d["class"].startswith("FACE_") for d in found)


def test_the_vit_checker_scores_real_photographs_through_its_real_code_path(tiny_checker):
    checker = ViTChecker(str(tiny_checker))
    checker.load()
    assert checker.flagged_labels == [1]  # "nsfw"; "normal" is safe
    scores = [checker.score(Image.open(photo)) for photo in SAFE_PHOTOS]
    big = checker.score(Image.open(SAFE_PHOTOS[0]).resize((1024, 1024)))
    assert all(0 < s < 1 for s in [*scores, big]) and len(set(scores)) > 1  # it looks at each image


async def test_the_bot_refuses_to_start_without_its_checker(tmp_path, tiny_model):
    from test_run_process import bot_env, start

    async with FakeDiscord() as fake:
        env = bot_env(fake, tmp_path, tiny_model, ZBOT_SAFETY="block")  # Falconsai's, not downloaded: offline
        process = await start(env, tmp_path)
        output, _ = await asyncio.wait_for(process.communicate(), 120)
        code, output = process.returncode, output.decode()
    assert code == 1 and "Traceback" not in output
    assert output.strip().splitlines()[-1].startswith("zbot: the safety checker Falconsai/nsfw_image_detection "
                                                      "is not downloaded")
    assert fake.bot_messages == []


async def test_metrics_and_health_say_what_the_check_did(settings):
    from test_http import samples

    from zbot.run import bot_health

    class Bot:
        ws = None

        def is_ready(self):
            return False

        def is_closed(self):
            return False

    checker = ScriptedChecker(0.1)
    async with open_core(with_keys(settings, KEY), [FakeRenderer()], checker=checker) as core, \
            serving(core, bot_health(core, Bot())) as client:
        await client.draw({"prompt": "fine"})
        checker.next_score = 0.99
        await client.draw({"prompt": "flagged"})
        health = await (await client.get("/healthz")).json()
        got = samples(await (await client.get("/metrics")).text())
    assert health["safety"] == "scripted" and "safety" not in health["missing"]
    assert got[("zbot_images_checked_total", (("verdict", "passed"),))] == 1
    assert got[("zbot_images_checked_total", (("verdict", "flagged"),))] == 1


async def test_a_checker_that_gives_no_real_score_fails_the_job_instead_of_passing_it(settings):
    async with open_core(settings, [FakeRenderer()], checker=ScriptedChecker(float("nan"))) as core:
        ticket = await core.service.submit(DrawRequest(user_id=1, prompt="a fox"))
        with pytest.raises(RenderFailed, match="the safety check failed"):
            await ticket.result()


async def test_reporting_the_same_image_twice_reaches_the_admins_once(fake, tmp_path, tiny_model):
    admins = fake.add_channel("zbot-reports")
    settings = bot_settings(tmp_path, tiny_model, report_channel_id=admins)
    async with running_bot(fake, settings, ScriptedChecker(0.2)) as run:
        image = await (await fake.slash("draw", {"prompt": "a fox", "size": "small"})).wait_original(finished)
        answers = []
        for _ in range(2):
            opened = await fake.click(image, control(image, "report"))
            await opened.wait_response()
            submitted = await fake.submit_modal(opened, {"zbot:report-note": "again"})
            [answer] = await submitted.wait_followups(1)
            answers.append(answer.content)
        await fake.wait_for(lambda f: any(m.channel_id == admins for m in f.bot_messages))
        await run.settle()
        count = (await run.core.store.query("SELECT count(*) FROM reports"))[0][0]
    assert "with the admins" in answers[0] and "already" in answers[1]
    assert count == 1 and len([m for m in fake.bot_messages if m.channel_id == admins]) == 1
