"""End to end: the real discord.py client and the real core, against the fake Discord."""

from __future__ import annotations

from support.botkit import bot_settings, control, finished, image_controls, image_of, running_bot, seed_in


async def test_draw_posts_a_1024_png_with_its_seed_progress_and_buttons(fake, tmp_path, tiny_model):
    async with running_bot(fake, bot_settings(tmp_path, tiny_model)) as run:
        ix = await fake.slash("draw", {"prompt": "a red fox in the snow"})
        message = await ix.wait_original(finished, timeout=60)
        await run.settle()
        row = (await run.core.store.query("SELECT id, seed, message_id, status FROM generations"))[0]

    assert ix.response_type == 4 and ix.response.at - ix.created_at < 3
    assert image_of(message).size == (1024, 1024)
    assert message.attachments[0].filename.endswith(".png")
    assert seed_in(message) == row["seed"] and f"seed {row['seed']}" in message.content
    assert "a red fox in the snow" in message.content and "1024×1024" in message.content
    assert row["status"] == "posted" and row["message_id"] == message.id
    assert message.custom_ids == image_controls(row["id"])
    shown = [edit.payload.get("content", "") for edit in message.edits]
    assert any("Drawing" in text for text in shown)
    # Progress edits are throttled to at most one a second.
    times = [edit.at for edit in message.edits if "Drawing" in edit.payload.get("content", "")]
    assert all(b - a >= 0.95 for a, b in zip(times, times[1:]))


async def test_reroll_gives_a_new_seed_and_image_and_buttons_survive_a_restart(fake, tmp_path, tiny_model):
    settings = bot_settings(tmp_path, tiny_model)
    async with running_bot(fake, settings):
        first = await (await fake.slash("draw", {"prompt": "a lighthouse", "size": "small"})).wait_original(finished)
        click = await fake.click(first, first.custom_ids[0])
        second = await click.wait_original(finished)
        assert seed_in(second) != seed_in(first)
        assert image_of(second).tobytes() != image_of(first).tobytes()
        assert "a lighthouse" in second.content and "64×64" in second.content

    # A new process on the same database: the old message's button still works.
    async with running_bot(fake, settings) as run:
        click = await fake.click(first, first.custom_ids[0])
        third = await click.wait_original(finished)
        await run.settle()
        rows = await run.core.store.query("SELECT parent_id FROM generations ORDER BY id")
    assert seed_in(third) not in (seed_in(first), seed_in(second))
    assert [r["parent_id"] for r in rows] == [None, 1, 1]


async def test_reroll_command_and_message_menu(fake, tmp_path, tiny_model):
    async with running_bot(fake, bot_settings(tmp_path, tiny_model)):
        refusal = await (await fake.slash("reroll")).wait_response()
        assert refusal.data["flags"] & 64 and "no image in this channel" in refusal.data["content"]
        first = await (await fake.slash("draw", {"prompt": "a kite", "size": "small"})).wait_original(finished)
        again = await (await fake.slash("reroll")).wait_original(finished)
        assert "a kite" in again.content and seed_in(again) != seed_in(first)
        menu = await (await fake.context_menu("Reroll", first.id)).wait_original(finished)
        assert "a kite" in menu.content
        stranger = fake.add_message("not an image")
        answer = await (await fake.context_menu("Reroll", stranger.id)).wait_response()
        assert answer.data["flags"] & 64 and "isn't a zbot image" in answer.data["content"]


async def test_delete_is_for_the_requester_or_an_admin(fake, tmp_path, tiny_model):
    bob = fake.add_member(name="bob")
    async with running_bot(fake, bot_settings(tmp_path, tiny_model)):
        image = await (await fake.slash("draw", {"prompt": "a cat", "size": "small"})).wait_original(finished)
        refused = await (await fake.click(image, control(image, "delete"), user_id=bob)).wait_response()
        assert refused.data["flags"] & 64 and "Only the person who asked" in refused.data["content"]
        assert not image.deleted
        await fake.click(image, control(image, "delete"))
        await fake.wait_for(lambda f: image.deleted)


async def test_rate_limit_refusal_is_private_and_says_when(fake, tmp_path, tiny_model):
    async with running_bot(fake, bot_settings(tmp_path, tiny_model, rate_limits="1/minute")):
        await (await fake.slash("draw", {"prompt": "one", "size": "small"})).wait_original(finished)
        refusal = await (await fake.slash("draw", {"prompt": "two", "size": "small"})).wait_response()
    assert refusal.type == 4 and refusal.data["flags"] & 64
    assert "limit of 1 image per minute" in refusal.data["content"]
    assert "Try again <t:" in refusal.data["content"] and ":R>" in refusal.data["content"]


async def test_bad_input_is_refused_privately(fake, tmp_path, tiny_model):
    async with running_bot(fake, bot_settings(tmp_path, tiny_model, blocked_words=["gore"])) as run:
        blocked = await (await fake.slash("draw", {"prompt": "much gore"})).wait_response()
        long = await (await fake.slash("draw", {"prompt": "x" * 1500})).wait_response()
        assert run.core.executor.depth == 0
    assert blocked.data["flags"] & 64 and "blocked word" in blocked.data["content"]
    assert long.data["flags"] & 64 and "most allowed is 1000" in long.data["content"]


async def test_mentions_in_the_prompt_never_ping(fake, tmp_path, tiny_model):
    async with running_bot(fake, bot_settings(tmp_path, tiny_model)):
        prompt = f"@everyone @here <@{fake.owner_id}> <@&{fake.guild_id}> **bold**"
        ix = await fake.slash("draw", {"prompt": prompt, "size": "small"})
        message = await ix.wait_original(finished)
    assert message.pings == set()
    assert all(not m.pings for m in fake.bot_messages)


async def test_quota_shows_windows_and_pending(fake, tmp_path, tiny_model):
    async with running_bot(fake, bot_settings(tmp_path, tiny_model, rate_limits="5/minute,100/day")):
        await (await fake.slash("draw", {"prompt": "a", "size": "small"})).wait_original(finished)
        answer = await (await fake.slash("quota")).wait_response()
    assert answer.data["flags"] & 64
    assert "4 of 5 left (5/minute)" in answer.data["content"]
    assert "99 of 100 left (100/day)" in answer.data["content"]
    assert "0 of 5 requests pending" in answer.data["content"] and "everyone's limits" in answer.data["content"]


async def test_role_tier_applies_and_quota_names_it(fake, tmp_path, tiny_model):
    role = fake.add_role("Supporters")
    carol = fake.add_member(name="carol", roles=(role,))
    settings = bot_settings(tmp_path, tiny_model, rate_limits="1/minute",
                            role_rate_limits={str(role): "3/minute"})
    async with running_bot(fake, settings):
        for prompt in ("a", "b", "c"):
            await (await fake.slash("draw", {"prompt": prompt, "size": "small"}, user_id=carol)).wait_original(finished)
        refused = await (await fake.slash("draw", {"prompt": "d", "size": "small"}, user_id=carol)).wait_response()
        quota = await (await fake.slash("quota", user_id=carol)).wait_response()
    assert "limit of 3 images per minute" in refused.data["content"]
    assert "Supporters" in quota.data["content"] and "0 of 3 left" in quota.data["content"]


async def test_stats_for_owners_and_managers_only(fake, tmp_path, tiny_model):
    settings = bot_settings(tmp_path, tiny_model, admin_ids=[fake.owner_id])
    async with running_bot(fake, settings):
        await (await fake.slash("draw", {"prompt": "a", "size": "small"})).wait_original(finished)
        member = await (await fake.slash("stats")).wait_response()
        admin = await fake.slash("stats", user_id=fake.owner_id)
        [report] = await admin.wait_followups(1)
        one = await fake.slash("stats", {"user": fake.user_id}, user_id=fake.owner_id)
        [single] = await one.wait_followups(1)
    assert member.data["flags"] & 64 and "Only server managers and the bot's owners" in member.data["content"]
    assert report.ephemeral and report.embeds[0]["title"] == f"zbot usage in {fake.guilds[fake.guild_id].name}"
    fields = {f["name"]: f["value"] for f in report.embeds[0]["fields"]}
    assert "1 in all" in fields["Images"] and "Top users" in fields and "Queue now" in fields
    assert "Render (median / p95)" in fields and "Wait (median / p95)" in fields
    assert report.attachments[0].filename == "per-day.png"
    assert single.embeds[0]["title"].startswith("Usage of")


async def test_a_server_manager_sees_only_their_server_and_is_limited_like_everyone(fake, tmp_path, tiny_model):
    # A second server: anyone may add a public bot to theirs. Its manager is no admin of the bot.
    other = fake.add_guild("someone else's server", owner_id=fake.add_user("mallory"))
    mallory = fake.guilds[other].owner_id
    manager_role = fake.add_role("Mods", permissions=1 << 5)  # Manage Server, in the first server
    mod = fake.add_member(name="mod", roles=(manager_role,))
    async with running_bot(fake, bot_settings(tmp_path, tiny_model, rate_limits="1/minute")):
        await (await fake.slash("draw", {"prompt": "ours", "size": "small"})).wait_original(finished)
        channel = fake.guilds[other].channel_ids[0]
        first = await fake.slash("draw", {"prompt": "theirs", "size": "small"}, user_id=mallory,
                                 guild_id=other, channel_id=channel)
        await first.wait_original(finished)
        second = await (await fake.slash("draw", {"prompt": "more", "size": "small"}, user_id=mallory,
                                         guild_id=other, channel_id=channel)).wait_response()
        theirs = await fake.slash("stats", user_id=mallory, guild_id=other, channel_id=channel)
        [their_report] = await theirs.wait_followups(1)
        ours = await fake.slash("stats", user_id=mod)
        [our_report] = await ours.wait_followups(1)
    assert "limit of 1 image per minute" in second.data["content"]  # Manage Server there: still limited
    their_fields = {f["name"]: f["value"] for f in their_report.embeds[0]["fields"]}
    our_fields = {f["name"]: f["value"] for f in our_report.embeds[0]["fields"]}
    assert "1 in all" in their_fields["Images"] and f"<@{mallory}>" in their_fields["Top users"]
    assert f"<@{fake.user_id}>" not in their_fields["Top users"]  # nothing of the first server
    assert their_report.embeds[0]["title"] == "zbot usage in someone else's server"
    assert "1 in all" in our_fields["Images"] and f"<@{mallory}>" not in our_fields["Top users"]


async def test_other_servers_are_refused_when_the_bot_is_private_to_its_own(fake, tmp_path, tiny_model):
    other = fake.add_guild("someone else's server", owner_id=fake.add_user("mallory"))
    mallory = fake.guilds[other].owner_id
    channel = fake.guilds[other].channel_ids[0]
    settings = bot_settings(tmp_path, tiny_model, allowed_guild_ids=[fake.guild_id])
    async with running_bot(fake, settings) as run:
        refused = await (await fake.slash("draw", {"prompt": "free gpu", "size": "small"}, user_id=mallory,
                                          guild_id=other, channel_id=channel)).wait_response()
        ours = await (await fake.slash("draw", {"prompt": "ours", "size": "small"})).wait_original(finished)
        await run.settle()
        rows = await run.core.store.query("SELECT prompt FROM generations")
    assert refused.data["flags"] & 64 and "private to the servers it was set up for" in refused.data["content"]
    assert "ours" in ours.content and [r["prompt"] for r in rows] == ["ours"]


async def test_a_job_that_outlives_its_token_is_posted_in_the_channel(fake, tmp_path, tiny_model):
    async with running_bot(fake, bot_settings(tmp_path, tiny_model)) as run:
        run.engine.gate.clear()
        ix = await fake.slash("draw", {"prompt": "a slow fox", "size": "small"})
        await ix.wait_response()
        fake.expire_token(ix)  # the webhook now answers 401 with code 50027
        run.engine.gate.set()
        posted = await fake.wait_for(lambda f: next(
            (m for m in f.bot_messages if m.source == "channel" and m.attachments), None), timeout=30)
        await run.settle()
        row = (await run.core.store.query("SELECT message_id, status FROM generations"))[0]
    assert "a slow fox" in posted.content and posted.channel_id == fake.channel_id
    assert posted.pings == {f"user:{fake.user_id}"}  # the requester, and only them, is told
    assert row["message_id"] == posted.id and row["status"] == "posted"
    assert posted.custom_ids[0].startswith("zbot:reroll:")


async def test_commands_are_synced_with_size_choices(fake, tmp_path, tiny_model):
    async with running_bot(fake, bot_settings(tmp_path, tiny_model)):
        names = {c["name"] for c in fake.registered_commands}
        draw = fake.find_command("draw")
    assert {"draw", "reroll", "quota", "stats", "Reroll"} <= names
    size = next(o for o in draw["options"] if o["name"] == "size")
    assert [c["value"] for c in size["choices"]] == ["square", "small"]
