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
from zbot.catalogue import EN, MESSAGES, items, render, text
from zbot.catalogue import ZH_CN as ZH
from zbot.config import parse_windows
from zbot.core.jobs import BadInput, RateLimited

ROOT = Path(__file__).resolve().parent.parent
REFUSALS = {"BadInput", "RateLimited", "TooManyPending", "QueueFull", "NotReady", "NotHere", "Refused", "Banned"}
MAKERS = REFUSALS | {"Text", "text"}  # what takes a catalogue key as its first argument
ENGLISH_ONLY = {"maintenance.py"}  # the command line's own refusals (backups, purges) speak English


def _template(node) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _template(node.left), _template(node.right)
        return None if left is None or right is None else left + right
    return None


def scan() -> tuple[set[str], set[str], set[str]]:
    """Over zbot/: the catalogue keys used, the English sentences passed where a key belongs (a refusal
    raised with finished English), and the t() templates of the Discord side."""
    keys, english, templates = set(), set(), set()
    for path in (ROOT / "zbot").rglob("*.py"):
        if path.name in ENGLISH_ONLY | {"i18n.py", "catalogue.py"} or "cli" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and node.args):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name == "t" and len(node.args) >= 2:
                found = _template(node.args[1])
                if found and " " in found:
                    templates.add(found)
            elif name in MAKERS:
                found = _template(node.args[0])
                if found is None:
                    continue
                if " " not in found:  # a key, or one built from parts (f"span.{name}"): some key must fit
                    pattern = re.escape(found).replace(r"\{\}", "[a-z_]+")
                    assert any(re.fullmatch(pattern, key) for key in MESSAGES), f"{path}: no key {found}"
                    keys.add(found)
                else:
                    english.add(f"{path.relative_to(ROOT)}: {found}")
        if "core" in path.parts or path.name == "messages.py":  # sentences kept as constants (REPORTED = ...)
            for node in ast.parse(path.read_text()).body:
                if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) \
                        and node.targets[0].id.isupper():
                    found = _template(node.value)
                    if found and " " in found and found[0].isupper() and found.rstrip()[-1] in ".!?":
                        english.add(f"{path.relative_to(ROOT)}: {found}")
    return keys, english, templates


def fields(template: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(template) if field is not None}


def test_every_catalogue_sentence_has_chinese_with_the_same_placeholders():
    for key, entry in MESSAGES.items():
        assert ZH in entry, f"{key} has no zh-CN"
        assert fields(entry[ZH]) == fields(entry[EN]), (key, entry)
        assert not re.search(r"[\u4e00-\u9fff]", entry[EN]), key
        for lang, translated in entry.items():  # a zh-TW column, once there, is held to the same rule
            assert fields(translated) == fields(entry[EN]), (key, lang)


# Characters that exist only in Simplified Chinese: a zh-TW sentence holding one was not converted.
SIMPLIFIED_ONLY = set("这们个说图张时发删请为设务应让还没会对从过导认钟间门问题记录种类额队数据项择级预检键画")


def test_every_sentence_has_traditional_chinese_with_the_same_placeholders():
    """zh-TW members get Traditional replies: every catalogue key and every Discord template has a zh-TW
    text (zbot/catalogue_zh_tw.py, zbot/bot/i18n_zh_tw.py), with no Simplified-only character in it."""
    missing = sorted(key for key, entry in MESSAGES.items() if "zh-TW" not in entry)
    assert missing == [], "add these to zbot/catalogue_zh_tw.py:\n" + "\n".join(missing)
    for key, entry in MESSAGES.items():
        assert fields(entry["zh-TW"]) == fields(entry[EN]), key
        assert not SIMPLIFIED_ONLY & set(entry["zh-TW"]), (key, entry["zh-TW"])
    traditional = CATALOGUES["zh-TW"]
    untranslated = sorted(english for english, simplified in ZH_CN.items() if traditional[english] == simplified
                          and SIMPLIFIED_ONLY & set(simplified))
    assert untranslated == [], "add these to zbot/bot/i18n_zh_tw.py:\n" + "\n".join(untranslated)
    assert not any(SIMPLIFIED_ONLY & set(said) for said in traditional.values())
    assert render("forget.done", {"images": 3}, "zh-TW") == "完成：我已刪除你在本伺服器的提示詞和圖片（記錄中共 3 條）。"
    assert t("zh-TW", "Forget me") == "刪除我的資料" and t("zh-CN", "Forget me") == "删除我的数据"


def test_refusals_are_raised_by_key_and_every_key_exists():
    keys, english, _ = scan()
    assert len(keys) > 60  # the scan sees the core's refusals and the Discord side's sentences
    assert english == set(), "raise these by a key of zbot/catalogue.py:\n" + "\n".join(sorted(english))


def test_every_discord_template_has_a_chinese_entry_with_the_same_placeholders():
    _, _, templates = scan()
    missing = sorted(s for s in templates if s not in ZH_CN)
    assert missing == [], "add these to zbot/bot/i18n.py:\n" + "\n".join(missing)
    for catalogue in CATALOGUES.values():
        for english, translated in catalogue.items():
            wanted = [str(i) for i in range(english.count("{}"))]
            assert sorted(fields(translated)) == wanted, (english, translated)
            assert not re.search(r"[\u4e00-\u9fff]", english)
    assert set(ZH_TW) <= set(ZH_CN)  # Traditional: a subset, the rest falls back to Simplified


def test_a_refusal_is_english_for_http_and_chinese_from_its_key_with_its_values_rendered_too():
    [window] = parse_windows("5/minute")
    from zbot.core.limits import _per
    refusal = RateLimited("limit.left.many", {"left": 2, "window": _per(window), "wanted": 4})
    english = "You may draw only 2 more images right now (5 images per minute): ask for 2 or fewer, or for 4 later."
    assert refusal.message == english and type(refusal.message) is str
    assert tr("zh-CN", refusal.text) == "你现在只能再画 2 张（每分钟 5 张）：请求 2 张或更少，或稍后再请求 4 张。"
    assert tr("zh-TW", refusal.text) == "你現在只能再畫 2 張（每分鐘 5 張）：請求 2 張或更少，或稍後再請求 4 張。"
    assert tr("en-US", refusal.text) == english
    # Finished English is never matched back: a plain sentence stays as it is.
    assert tr("zh-CN", english) == english
    assert render("size.unknown", {"size": "x", "sizes": items(["a", "b"])}, "zh-CN") == "未知尺寸 'x'；请从这些中选择：a、b。"
    assert t("zh-CN", "seed {}", 42) == "种子 42" and t("fr", "seed {}", 42) == "seed 42"
    assert BadInput(text("pick.withheld")).text.key == "pick.withheld"


async def test_a_role_named_like_a_word_of_the_catalogue_is_not_translated(fake, tmp_path, tiny_model):
    """Matching English back translated names inside sentences: a role called "minute" became 分钟."""
    role = fake.add_role("minute")
    user = fake.add_member(name="小红", roles=(role,))
    fake.user_locales[user] = "zh-CN"
    async with running_bot(fake, bot_settings(tmp_path, tiny_model, role_rate_limits={str(role): "3/minute"})):
        quota = (await (await fake.slash("quota", user_id=user)).wait_response()).data["content"]
    assert "**你的额度**（minute 角色的额度）" in quota, quota
    assert "3 张/分钟" in quota


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
    assert (labels["reroll"], labels["vary"], labels["upscale"], labels["delete"]) == ("重画", "变体（强）", "放大", "删除")
    assert ours.component(ours.custom_ids[2]).get("label") == "Vary (Strong)"
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
