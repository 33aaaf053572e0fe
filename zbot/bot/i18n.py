"""zbot in the reader's language on Discord. Sentences (refusals, answers, progress) live in
zbot.catalogue, keyed by id: `tr` says a catalogue Text in the reader's language. This file keeps what
discord.py and the views key by their English: command names and descriptions (the Translator), button
labels, and the Discord side's `t()` templates, Simplified Chinese (zh-CN) beside English, Traditional
(zh-TW) for the command names.

`t` templates: `{}` stands for a value, in order; the translation refers to them as `{0}`, `{1}`... in
whatever order Chinese wants them. Nothing finished is ever matched back: a value that is itself a
sentence is a Text and is rendered from its own key. Anything without an entry stays English.
"""

from __future__ import annotations

import discord
from discord import app_commands

from zbot.bot.i18n_zh_tw import ZH_TW as TRADITIONAL
from zbot.catalogue import Text

ZH_CN: dict[str, str] = {
    # -- commands: names (lowercase, no spaces, as Discord requires), descriptions, options ----------
    "draw": "画图",
    "Draw an image from a prompt": "根据提示词画一张图",
    "prompt": "提示词",
    "What to draw": "要画什么",
    "size": "尺寸",
    "The image's shape (default: the first one)": "图片的形状（默认：第一个）",
    "seed": "种子",
    "A number to repeat an image exactly (random when left out)": "用来精确重现一张图的数字（不填则随机）",
    "count": "数量",
    "How many images to choose from (seeds seed, seed+1, ...); each counts": "一次画几张供挑选（种子依次加一）；每张都计入额度",
    "style": "风格",
    "A look the bot offers, such as watercolor (default: this server's)": "机器人提供的画风，例如水彩（默认：本服务器的）",
    "image": "图片",
    "A picture of your own to draw from (PNG, JPEG, WebP or GIF)": "基于你自己的图片作画（PNG、JPEG、WebP 或 GIF）",
    "strength": "强度",
    "With an image: how much of it is redrawn, 0.1-1 (default: Vary's)": "有图片时：重画多少，0.1-1（默认：与变体相同）",
    "Draw from this image": "以这张图片作画",
    "reroll": "重画",
    "Draw your latest image in this channel again with a new seed": "用新种子重画你在本频道的最近一张图",
    "Reroll": "重画",
    "quota": "额度",
    "How many images you may still draw, and your pending ones": "你还能画几张，以及排队中的请求",
    "stats": "统计",
    "Usage statistics (admins)": "使用统计（管理员）",
    "user": "用户",
    "Only this user's usage": "只看这位用户的使用情况",
    "settings": "设置",
    "zbot's settings in this server (admins)": "zbot 在本服务器的设置（管理员）",
    "view": "查看",
    "Every setting here, and whether this server set it": "本服务器的每项设置，以及是否由本服务器设定",
    "set": "修改",
    "Change a setting in this server": "修改本服务器的一项设置",
    "name": "名称",
    "value": "值",
    "The setting": "设置项",
    "Its value, written as in the bot's environment (.env)": "新的值，写法与机器人的环境变量（.env）相同",
    "reset": "恢复默认",
    "Put a setting back to the bot's default in this server": "把本服务器的一项设置恢复为机器人的默认值",
    "history": "历史",
    "The last changes to the settings in this server": "本服务器最近的设置改动",
    "queue": "队列",
    "The requests waiting and being drawn in this server (admins)": "本服务器正在排队和正在画的请求（管理员）",
    "bans": "封禁名单",
    "Who may not use zbot in this server (admins)": "谁不能在本服务器使用 zbot（管理员）",
    "ban": "封禁",
    "Stop a member from using zbot in this server": "禁止一位成员在本服务器使用 zbot",
    "The member": "成员",
    "reason": "原因",
    "Why (they are told when they ask for an image)": "原因（对方请求图片时会看到）",
    "days": "天数",
    "For how many days (left out: until it is lifted)": "封禁几天（不填：直到被解除）",
    "everywhere": "所有服务器",
    "In every server, not only this one (bot owners only)": "在所有服务器，而不只是本服务器（仅限机器人所有者）",
    "unban": "解封",
    "Let a member use zbot in this server again": "允许一位成员重新在本服务器使用 zbot",
    "Lift their ban from every server (bot owners only)": "解除其在所有服务器的封禁（仅限机器人所有者）",
    "list": "列表",
    "Who is banned from zbot here, and the last bans and unbans": "谁在这里被禁止使用 zbot，以及最近的封禁和解封",
    # -- buttons, menus and forms --------------------------------------------------------------------------
    "Vary": "变体",
    "Vary (Strong)": "变体（强）",
    "Vary (Subtle)": "变体（轻微）",
    "Zoom Out 2x": "缩小 2 倍",
    "Zoom Out 1.5x": "缩小 1.5 倍",
    "Pan": "平移",
    "from own pictures": "基于自己的图片",
    "zoomed out": "缩小",
    "panned": "平移",
    "Upscale": "放大",
    "Edit prompt": "改写提示词",
    "Delete": "删除",
    "Report": "举报",
    "Cancel": "取消",
    "Delete the image": "删除图片",
    "Another size…": "换个尺寸…",
    "Edit the prompt": "改写提示词",
    "Prompt": "提示词",
    "Report this image": "举报这张图片",
    "What is wrong with it? (optional)": "它有什么问题？（可选）",
    "Cancel a waiting request…": "取消一个排队中的请求…",
    "Ban from zbot": "禁止使用 zbot",
    # -- progress, captions ---------------------------------------------------------------------------------
    "{} s": "{0} 秒",
    "seed {}": "种子 {0}",
    "seeds {}": "种子 {0}",
    "for {}": "给 {0}",
    "image {} of the grid": "网格中的第 {0} 张",
    "style {}": "风格 {0}",
    "By style": "按风格",
    # -- answers and refusals (Discord side) ------------------------------------------------------------
    "Cancelled the request of {}; they are told.": "已取消 {0} 的请求；已通知对方。",
    "Nothing is waiting or being drawn in this server.": "本服务器没有排队或正在画的请求。",
    "No setting was changed in this server yet.": "本服务器还没有改动过任何设置。",
    "{} is now {} in this server (it was {}); the next request uses it.": "{0} 在本服务器现在是 {1}（原来是 {2}）；下一个请求就会使用它。",
    "{} is back to the default here: {} (it was {}).": "{0} 已恢复为默认值：{1}（原来是 {2}）。",
    "the default": "默认值",
    "default": "默认",
    "drawing now": "正在画",
    "held by another zbot": "由另一个 zbot 处理",
    "waiting": "排队中",
    "{} s ago": "{0} 秒前",
    "{} min ago": "{0} 分钟前",
    "{} h ago": "{0} 小时前",
    # -- bans (zbot.core.bans, zbot/bot/cogs/bans.py) ---------------------------------------------------------------
    "in this server": "在本服务器",
    "in every server": "在所有服务器",
    "until it is lifted": "直到被解除",
    "until {}": "直到 {0}",
    "{} is banned from zbot {} {}; reason: {}.": "{0} 已被禁止{1}使用 zbot，{2}；原因：{3}。",
    "none given": "未说明",
    "the command line": "命令行",
    "{} may use zbot {} again.": "{0} 又可以{1}使用 zbot 了。",
    "**Banned from zbot here**: {}": "**在这里被禁止使用 zbot 的人**：{0}",
    "No one is banned from zbot here.": "这里没有人被禁止使用 zbot。",
    "banned by {}": "由 {0} 封禁",
    "**Last bans and unbans**, newest first": "**最近的封禁和解封**，最新的在前",
    "{} banned {} {}": "{0} {2}封禁了 {1}",
    "{} lifted the ban of {} {}": "{0} {2}解封了 {1}",
    "banned": "被封禁",  # a reason in /stats' refused requests by member
    # -- refusals from the core (zbot.core.validation, zbot.core.limits, zbot.core.refining, zbot.core.service...) ------------
    "**zbot in this server** (server: set here with /settings set; default: the bot's own)":
        "**zbot 在本服务器的设置**（本服务器：用 /settings set 设定；默认：机器人自己的）",
    "• {} = {} (server)": "• {0} = {1}（本服务器）",
    "• {} = {} (default)": "• {0} = {1}（默认）",
    "• {} = {} (server: {} is held back by the bot owner's settings)": "• {0} = {1}（本服务器设的 {2} 超出机器人所有者的设定，暂不生效）",
    "**Settings changes here**, newest first": "**本服务器的设置改动**，最新的在前",
    "**The queue in this server**: {} request ({} in the whole queue)": "**本服务器的队列**：{0} 个请求（整个队列共 {1} 个）",
    "**The queue in this server**: {} requests ({} in the whole queue)": "**本服务器的队列**：{0} 个请求（整个队列共 {1} 个）",
    # -- /quota and /stats -------------------------------------------------------------------------------
    "**Your limits** ({})": "**你的额度**（{0}）",
    "no per-user limits apply to you": "你不受个人额度限制",
    "• {} of {} left ({})": "• 还剩 {0}/{1}（{2}）",
    "• {} of {} left ({}), next one frees up {}": "• 还剩 {0}/{1}（{2}），下一个额度{3}恢复",
    "• no rate limits": "• 没有频率限制",
    "• {} of {} requests pending": "• {0}/{1} 个请求排队中",
    "An upscale counts as {} images (it is that much work), as does anything drawn at an upscale's size; a "
    "variation, an edit or another size as one.":
        "一次放大算作 {0} 张图（它的工作量就是这么大），以放大尺寸画的图也一样；变体、改写提示词或换尺寸算一张。",
    "zbot usage in {}": "zbot 在 {0} 的使用情况",
    "Usage of {} in {}": "{0} 在 {1} 的使用情况",
    "Images": "图片",
    "{} in all\n{} in 24 h\n{} in 7 days": "共 {0} 张\n24 小时内 {1} 张\n7 天内 {2} 张",
    "Wait (median / p95)": "等待（中位数 / p95）",
    "Render (median / p95)": "绘制（中位数 / p95）",
    "Failures": "失败",
    "{} failed\n{} refused": "{0} 个失败\n{1} 个被拒绝",
    "Safety": "安全",
    "{} withheld\n{} reported": "{0} 张被拦下\n{1} 张被举报",
    "Queue now": "当前队列",
    "{} unfinished": "{0} 个未完成",
    "Made by": "来源",
    "Top users": "最活跃用户",
    "Flagged, by member": "被安全检查标记的结果（按成员）",
    "Refused, by member": "被拒绝的请求（按成员）",
    "over a rate limit": "超出频率限制",
    "too many pending": "排队请求过多",
    "queue full": "队列已满",
    "input not allowed": "输入不被允许",
    "not ready": "尚未就绪",
    "drawn": "画图",
    "rerolled": "重画",
    "picked from a grid": "从网格挑选",
    "variations": "变体",
    "upscales": "放大",
    "prompt edits": "改写提示词",
    "other sizes": "换尺寸",
    # -- /history, /forget, /help (zbot/bot/cogs/privacy.py, help.py) ------------------------------------
    "Your images in this server, newest first": "你在本服务器的图片，最新的在前",
    "forget": "删除我的数据",
    "Delete what zbot keeps about you in this server": "删除 zbot 在本服务器保存的关于你的内容",
    "help": "帮助",
    "What zbot does, and how to use it here": "zbot 能做什么，以及在这里怎么用",
    "Previous": "上一页",
    "Next": "下一页",
    "Forget me": "删除我的数据",
    "Forget me and delete my images' messages": "删除我的数据和带有我的图片的消息",
    "Keep everything": "全部保留",
    "{} images": "{0} 张",
}

# Traditional Chinese: the command names and descriptions people see in their client's menus. Replies
# fall back to Simplified Chinese, which Traditional readers can follow, until a translator adds them.
ZH_TW: dict[str, str] = {
    "draw": "畫圖",
    "Draw an image from a prompt": "根據提示詞畫一張圖",
    "prompt": "提示詞",
    "What to draw": "要畫什麼",
    "size": "尺寸",
    "The image's shape (default: the first one)": "圖片的形狀（預設：第一個）",
    "seed": "種子",
    "A number to repeat an image exactly (random when left out)": "用來精確重現一張圖的數字（不填則隨機）",
    "count": "數量",
    "How many images to choose from (seeds seed, seed+1, ...); each counts": "一次畫幾張供挑選（種子依次加一）；每張都計入額度",
    "reroll": "重畫",
    "Draw your latest image in this channel again with a new seed": "用新種子重畫你在本頻道的最近一張圖",
    "Reroll": "重畫",
    "quota": "額度",
    "How many images you may still draw, and your pending ones": "你還能畫幾張，以及排隊中的請求",
    "stats": "統計",
    "Usage statistics (admins)": "使用統計（管理員）",
    "user": "使用者",
    "Only this user's usage": "只看這位使用者的使用情況",
    "settings": "設定",
    "zbot's settings in this server (admins)": "zbot 在本伺服器的設定（管理員）",
    "view": "查看",
    "Every setting here, and whether this server set it": "本伺服器的每項設定，以及是否由本伺服器設定",
    "set": "修改",
    "Change a setting in this server": "修改本伺服器的一項設定",
    "name": "名稱",
    "value": "值",
    "The setting": "設定項",
    "Its value, written as in the bot's environment (.env)": "新的值，寫法與機器人的環境變數（.env）相同",
    "reset": "恢復預設",
    "Put a setting back to the bot's default in this server": "把本伺服器的一項設定恢復為機器人的預設值",
    "history": "歷史",
    "The last changes to the settings in this server": "本伺服器最近的設定變更",
    "queue": "佇列",
    "The requests waiting and being drawn in this server (admins)": "本伺服器正在排隊和正在畫的請求（管理員）",
}

# Traditional for everything else: zbot/bot/i18n_zh_tw.py; a template added without it falls back to Simplified.
CATALOGUES = {"zh-CN": ZH_CN, "zh-TW": {**ZH_CN, **TRADITIONAL, **ZH_TW}}


def language(locale) -> str | None:
    """The catalogue for a Discord locale (discord.Locale or its value), or None for English."""
    value = getattr(locale, "value", locale)
    return value if value in CATALOGUES else None


def t(locale, template: str, *values) -> str:
    """`template` with `values`, in the locale's language when it has the template; a value that is a
    catalogue Text is said in that language too."""
    lang = language(locale)
    translated = CATALOGUES[lang].get(template) if lang else None
    values = tuple(tr(locale, value) for value in values)
    return (translated or template).format(*values)


def tr(locale, text):
    """A catalogue Text in the locale's language (rendered from its key and values); anything else as
    it is. Never matches finished English back against templates."""
    if isinstance(text, Text):
        return text.in_language(language(locale))
    return text


def localize_view(view, locale):
    """A view's button labels and menu placeholders in the reader's language (custom ids unchanged)."""
    if view is None or language(locale) is None:
        return view
    for child in view.children:
        target = getattr(child, "item", child)  # a DynamicItem wraps its button or menu
        if getattr(target, "label", None):
            target.label = t(locale, target.label)
        if getattr(target, "placeholder", None):
            target.placeholder = t(locale, target.placeholder)
    return view


class Translator(app_commands.Translator):
    """Command names, descriptions, option names and the Reroll menu for zh-CN and zh-TW clients."""

    async def translate(self, string: app_commands.locale_str, locale: discord.Locale,
                        context: app_commands.TranslationContext) -> str | None:
        lang = language(locale)
        if lang is None:
            return None
        return CATALOGUES[lang].get(string.message)
