"""zbot in Chinese: localized commands, replies in the user's language, the server's language for what
goes to the channel, and a catalogue that covers every sentence the bot can say."""

from __future__ import annotations

import ast
import re
import string
from pathlib import Path

import pytest

from support.botkit import bot_settings, finished, running_bot
from zbot.bot.i18n import CATALOGUES, ZH_CN, ZH_TW, t, tr

ROOT = Path(__file__).resolve().parent.parent
REFUSALS = {"BadInput", "RateLimited", "TooManyPending", "QueueFull", "NotReady", "NotHere", "Refused", "Banned"}


def english_sentences() -> set[str]:
    """Every sentence the bot can say, as a template ({} for each value): the refusals raised anywhere
    in zbot, the module-level texts and the t() templates of the Discord side."""
    found: set[str] = set()

    def template(node) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.JoinedStr):
            return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = template(node.left), template(node.right)
            return None if left is None or right is None else left + right
        return None

    for path in (ROOT / "zbot").rglob("*.py"):
        if path.name in ("i18n.py", "maintenance.py", "cli.py"):  # the command line speaks English
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and node.args:
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                if name in REFUSALS or (name == "t" and len(node.args) >= 2):
                    text = template(node.args[1] if name == "t" else node.args[0])
                    if text and " " in text:  # a sentence, not a name
                        found.add(text)
        if path.parent.name == "bot" and path.name == "messages.py" or path.name == "service.py":
            for node in tree.body:  # APOLOGY, WITHHELD, CANCELLED, STAYS_QUEUED...
                if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) \
                        and node.targets[0].id.isupper():
                    text = template(node.value)
                    if text and " " in text and text[0].isupper():
                        found.add(text.replace("{error_id}", "{}"))
    return found


def placeholders(text: str, translated: bool) -> list[str]:
    fields = [field for _, field, _, _ in string.Formatter().parse(text) if field is not None]
    return sorted(fields) if translated else fields


def test_every_english_sentence_has_a_chinese_entry_with_the_same_placeholders():
    sentences = english_sentences()
    assert len(sentences) > 80  # the scan sees the refusals and the messages
    missing = sorted(s for s in sentences if s not in ZH_CN)
    assert missing == [], "add these to zbot/bot/i18n.py:\n" + "\n".join(missing)
    for catalogue in CATALOGUES.values():
        for english, translated in catalogue.items():
            wanted = [str(i) for i in range(english.count("{}"))]
            assert placeholders(translated, True) == wanted, (english, translated)
            assert not re.search(r"[\u4e00-\u9fff]", english)
    assert set(ZH_TW) <= set(ZH_CN)  # Traditional: a subset, the rest falls back to Simplified


def test_finished_sentences_are_matched_and_their_values_translated_too():
    sentence = "You may draw only 2 more images right now (5 images per minute): ask for 2 or fewer, or for 4 later."
    assert tr("zh-CN", sentence) == "你现在只能再画 2 张（每分钟 5 张）：请求 2 张或更少，或稍后再请求 4 张。"
    assert tr("en-US", sentence) == sentence and tr("zh-CN", "nothing like it") == "nothing like it"
    assert t("zh-CN", "seed {}", 42) == "种子 42" and t("fr", "seed {}", 42) == "seed 42"


@pytest.fixture
def chinese(fake):
    """A user whose Discord client is in Simplified Chinese, beside the English default user."""
    user = fake.add_member(name="小明")
    fake.user_locales[user] = "zh-CN"
    return user


async def test_commands_carry_chinese_names_and_descriptions(fake, tmp_path, tiny_model):
    async with running_bot(fake, bot_settings(tmp_path, tiny_model)):
        draw = fake.find_command("draw")
        menu = fake.find_command("Reroll", type=3)
        settings = fake.find_command("settings")
    assert draw["name_localizations"]["zh-CN"] == "画图" and draw["name_localizations"]["zh-TW"] == "畫圖"
    assert draw["description_localizations"]["zh-CN"] == "根据提示词画一张图"
    prompt = next(option for option in draw["options"] if option["name"] == "prompt")
    assert prompt["name_localizations"]["zh-CN"] == "提示词"
    assert menu["name_localizations"]["zh-CN"] == "重画"
    assert {o["name_localizations"]["zh-CN"] for o in settings["options"]} >= {"查看", "修改", "恢复默认", "历史"}


async def test_a_chinese_user_gets_chinese_and_an_english_user_english_in_the_same_server(fake, tmp_path, tiny_model,
                                                                                        chinese):
    async with running_bot(fake, bot_settings(tmp_path, tiny_model, rate_limits="1/minute")):
        theirs = await (await fake.slash("draw", {"prompt": "一只红狐狸", "size": "small", "seed": 3},
                                         user_id=chinese)).wait_original(finished, timeout=60)
        refused = (await (await fake.slash("draw", {"prompt": "再来一张", "size": "small"}, user_id=chinese)
                          ).wait_response()).data["content"]
        quota = (await (await fake.slash("quota", user_id=chinese)).wait_response()).data["content"]
        ours = await (await fake.slash("draw", {"prompt": "a red fox", "size": "small", "seed": 3})
                      ).wait_original(finished, timeout=60)
        english_refusal = (await (await fake.slash("draw", {"prompt": "again", "size": "small"})
                                  ).wait_response()).data["content"]
        english_quota = (await (await fake.slash("quota")).wait_response()).data["content"]
    assert "种子 3" in theirs.content and "给 <@" in theirs.content and "秒" in theirs.content
    labels = {cid.split(":")[1]: theirs.component(cid).get("label") for cid in theirs.custom_ids}
    assert (labels["reroll"], labels["vary"], labels["upscale"], labels["delete"]) == ("重画", "变体", "放大", "删除")
    assert ours.component(ours.custom_ids[1]).get("label") == "Vary"
    assert "你已达到额度上限：每分钟 1 张。" in refused and "再试" in refused
    assert "**你的额度**（所有人的额度）" in quota and "还剩 0/1" in quota
    assert "seed 3" in ours.content and "for <@" in ours.content
    assert "You've reached your limit of 1 image per minute." in english_refusal
    assert "**Your limits** (everyone's limits)" in english_quota


async def test_what_is_posted_in_the_channel_after_a_restart_is_in_the_servers_language(fake, tmp_path, tiny_model):
    from zbot.bot.recovery import resume_unfinished
    from zbot.core.store import Store

    fake.guild_locales[fake.guild_id] = "zh-CN"
    settings = bot_settings(tmp_path, tiny_model)
    store = await Store.open(settings.database)
    await store.record(user_id=fake.user_id, guild_id=fake.guild_id, channel_id=fake.channel_id, prompt="灯塔",
                       seed=5, size="small", width=64, height=64, steps=8, status="queued", owner=None)
    await store.close()
    async with running_bot(fake, settings) as run:
        await resume_unfinished(run.bot)
        await fake.wait_for(lambda f: any(m.attachments for m in f.bot_messages), timeout=60)
        await run.settle()
    [posted] = [m for m in fake.bot_messages if m.attachments]
    assert "种子 5" in posted.content  # no interaction any more: the server's language
