"""/history, /forget and /help end to end through the fake Discord: 25 images paged and linked, a forget
that removes prompts (the file's bytes and its -wal read directly), kept images and, when chosen, the
messages, while the limits still hold; /help in English, Simplified and Traditional Chinese."""

from __future__ import annotations

import re
from pathlib import Path

from support.botkit import bot_settings, finished, running_bot

from zbot.core.drawn import drawn_dir

PROMPT = "zebra unicorn {}"


def texts(database: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (database, Path(f"{database}-wal")) if p.exists())


async def test_history_pages_25_images_and_forget_takes_them_and_their_messages(fake, tmp_path, tiny_model):
    settings = bot_settings(tmp_path, tiny_model, rate_limits="25/hour", sizes={"small": "64x64"})
    async with running_bot(fake, settings) as running:
        store = running.core.store
        drawn = [await (await fake.slash("draw", {"prompt": PROMPT.format(n)})).wait_original(finished, timeout=60)
                 for n in range(2)]
        await running.settle()
        guild, channel = fake.guild_id, fake.channel_id
        for n in range(2, 25):  # the rest as a draw records them, without drawing each
            await store.record(user_id=fake.user_id, guild_id=guild, channel_id=channel, message_id=9000 + n,
                               prompt=PROMPT.format(n), seed=n, status="posted", size="small", width=64, height=64)
        answer = await (await fake.slash("history")).wait_original()
        assert answer.ephemeral and "page 1 of 3, 25 in all" in answer.content
        seen = re.findall(r"zebra unicorn (\d+)", answer.content)
        for _ in range(2):
            click = await fake.click(answer.id, answer.buttons[1]["custom_id"])  # Next
            await click.wait_response()
            answer = fake.messages[answer.id]
            seen += re.findall(r"zebra unicorn (\d+)", answer.content)
        assert seen == [str(n) for n in range(24, -1, -1)]  # newest first, every one once
        assert answer.buttons[1].get("disabled")  # the last page
        links = re.findall(r"https://discord.com/channels/\d+/\d+/(\d+)", fake.messages[answer.id].content)
        assert links == [str(9000 + n) for n in range(4, 1, -1)] + [str(drawn[1].id), str(drawn[0].id)]

        usage = (await (await fake.slash("quota")).wait_response()).data["content"]
        confirm = await (await fake.slash("forget")).wait_original()
        assert confirm.ephemeral and len(confirm.buttons) == 3
        done = await fake.click(confirm.id, confirm.buttons[1]["custom_id"])  # forget and delete the messages
        [said] = await done.wait_followups()
        assert "deleted 25 of my messages" in said.content and said.ephemeral
        assert all(fake.messages[m.id].deleted for m in drawn)
        assert b"zebra unicorn" not in texts(settings.database)
        assert list(drawn_dir(settings.database).iterdir()) == []
        after = (await (await fake.slash("quota")).wait_response()).data["content"]
        assert after == usage and "0 of 25 left" in after  # the limits hold until the window passes
        refused = (await (await fake.slash("draw", {"prompt": "one more"})).wait_response()).data["content"]
        assert "You've reached your limit of 25 images per hour" in refused
    async with running_bot(fake, settings):  # after a restart, nothing comes back
        empty = await (await fake.slash("history")).wait_original()
        assert "You have no images in this server yet" in empty.content
    assert b"zebra unicorn" not in texts(settings.database)


async def test_help_says_the_limits_sizes_and_commands_in_each_language(fake, tmp_path, tiny_model):
    simplified, traditional = fake.add_member(name="小明"), fake.add_member(name="小華")
    fake.user_locales[simplified], fake.user_locales[traditional] = "zh-CN", "zh-TW"
    settings = bot_settings(tmp_path, tiny_model, rate_limits="5/minute,100/day", max_pending_per_user=3)
    async with running_bot(fake, settings):
        english = (await (await fake.slash("help")).wait_response()).data
        chinese = (await (await fake.slash("help", user_id=simplified)).wait_response()).data["content"]
        taiwan = (await (await fake.slash("help", user_id=traditional)).wait_response()).data["content"]
        command = fake.find_command("help")
    assert english["flags"] & 64  # private
    english = english["content"]
    assert "5/minute, 100/day" in english and "at most 3 requests" in english and "square, small" in english
    assert "/history" in english and "/forget" in english and "**Report**" in english
    assert "**你在这里的额度**：5 张/分钟、100 张/天" in chinese and "举报" in chinese
    assert "**你在這裡的額度**：5 張/分鐘、100 張/天" in taiwan and "舉報" in taiwan and "这" not in taiwan
    assert command["name_localizations"] == {"zh-CN": "帮助", "zh-TW": "說明"}
