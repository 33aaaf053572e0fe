"""zbot in the reader's language: Simplified Chinese (zh-CN) beside English, Traditional (zh-TW) for the
command names and descriptions. A plain mapping from each English text to its translation: translators
edit one file, developers write English where they always did, and a test checks that every English
sentence the bot can say has an entry with the same placeholders.

English texts are templates: `{}` stands for a value (a number, a time, a name), in order; the
translation refers to them as `{0}`, `{1}`... in whatever order Chinese wants them. `tr` translates a
finished English sentence (a refusal from the core, say) by matching it against the templates, and
translates the values it captured too (so "5 images per minute" inside a refusal is translated as well);
`t` formats a template directly. Anything without an entry stays English.
"""

from __future__ import annotations

import re
from functools import cache

import discord
from discord import app_commands

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
    "Warming up: the model is loading. You're #{} in the queue.": "正在预热：模型加载中。你排在第 {0} 位。",
    "Starting…": "即将开始…",
    "Queued: you're next, about {}.": "排队中：下一个就是你，大约 {0}。",
    "Queued: you're #{} in the queue, about {}.": "排队中：你排在第 {0} 位，大约 {1}。",
    "Drawing… {} step {}/{}": "正在画… {0} 第 {1}/{2} 步",
    "Drawing… {} image {} of {} · step {}/{}": "正在画… {0} 第 {1}/{2} 张 · 第 {3}/{4} 步",
    "a moment": "片刻",
    "{} s": "{0} 秒",
    "{} min": "{0} 分钟",
    "seed {}": "种子 {0}",
    "seeds {}": "种子 {0}",
    "for {}": "给 {0}",
    "image {} of the grid": "网格中的第 {0} 张",
    "variation of {}": "变体，来自 {0}",
    "upscale of {}": "放大，来自 {0}",
    "edited from {}": "改写提示词，来自 {0}",
    "resized from {}": "换尺寸，来自 {0}",
    "reroll of {}": "重画，来自 {0}",
    "variation": "变体",
    "upscale": "放大",
    "edited": "改写提示词",
    "resized": "换尺寸",
    # -- answers and refusals (Discord side) ------------------------------------------------------------
    "Try again {}.": "请{0}再试。",
    "Sorry, something went wrong on my side (error `{}`); the admins can find it in the logs.":
        "抱歉，我这边出了问题（错误 `{0}`）；管理员可以在日志中查到。",
    "Sorry, this image could not be drawn: {}. It did not count against your limits.":
        "抱歉，这张图没能画出来：{0}。它没有计入你的额度。",
    "Cancelled: it left the queue, and it did not count against your limits.": "已取消：它已离开队列，没有计入你的额度。",
    "An admin took this request out of the queue; it did not count against your limits.":
        "管理员把这个请求移出了队列；它没有计入你的额度。",
    "It's being drawn already, so it can't be cancelled now.": "它已经在画了，现在无法取消。",
    "The bot is restarting; your image stays in the queue and will be posted here when it's back.":
        "机器人正在重启；你的图片仍在队列中，恢复后会发到这里。",
    "zbot is restarting.": "zbot 正在重启。",
    "Sorry, I can't take requests right now: my database won't save them (the admins can see why).":
        "抱歉，我现在无法接受请求：我的数据库无法保存它们（管理员可以看到原因）。",
    "Your image wasn't posted: the safety check flagged it as adult content, which is only shown in "
    "age-restricted channels. It still counts against your limits.":
        "你的图片没有发出：安全检查把它标记为成人内容，这类内容只在年龄限制频道中显示。它仍然计入你的额度。",
    "This image wasn't posted.": "这张图片没有发出。",
    "Sorry, your image was drawn but Discord wouldn't let me post it here (missing permissions?); it did not "
    "count against your limits.": "抱歉，你的图片已经画好，但 Discord 不让我在这里发出（缺少权限？）；它没有计入你的额度。",
    "your image couldn't be posted here (and your direct messages are closed to me).":
        "你的图片无法在这里发出（而你的私信也没有对我开放）。",
    "sorry, your image for “{}” was lost when the bot restarted; please /draw it again. It did not count "
    "against your limits.": "抱歉，你的图片“{0}”在机器人重启时丢失了；请再用 /draw 画一次。它没有计入你的额度。",
    "That image was withheld by the safety check: it is only shown in age-restricted channels.":
        "这张图片被安全检查拦下了：它只在年龄限制频道中显示。",
    "Thanks: the report is with the admins.": "谢谢：举报已交给管理员。",
    "You have reported this image already; the admins have it.": "你已经举报过这张图片了；管理员已收到。",
    "I only draw in servers; use me in a channel of your server.": "我只在服务器里画图；请在你的服务器频道里使用我。",
    "This bot is private to the servers it was set up for; it doesn't draw here.":
        "这个机器人只为设置它的服务器服务；它不在这里画图。",
    "Only server managers and the bot's owners can see usage statistics.": "只有服务器管理者和机器人的所有者能查看使用统计。",
    "Only server managers (Manage Server) and the bot's owners can do that.":
        "只有服务器管理者（管理服务器权限）和机器人的所有者能这样做。",
    "That request isn't in this server's queue.": "这个请求不在本服务器的队列中。",
    "That request has started (or finished) already, so it can't be cancelled.": "这个请求已经开始（或已完成），无法取消。",
    "You have no image in this channel to reroll yet; use /draw first.": "你在本频道还没有可以重画的图片；请先使用 /draw。",
    "That message isn't a zbot image; Reroll works on images I posted.": "那条消息不是 zbot 的图片；重画只适用于我发的图片。",
    "That image is no longer in my records, so it can't be rerolled; use /draw.":
        "那张图片已不在我的记录中，无法重画；请使用 /draw。",
    "That grid is no longer on show, so its images can't be picked; use /draw.":
        "那个网格已不再展示，无法挑选其中的图片；请使用 /draw。",
    "Only the person who asked for these images (or an admin) can pick one.": "只有请求这些图片的人（或管理员）能挑选。",
    "Only the person who asked for this image, or an admin, can cancel it.": "只有请求这张图片的人或管理员能取消它。",
    "That button doesn't belong to this message.": "那个按钮不属于这条消息。",
    "Only the person who asked for this image, a server manager or a bot owner can delete it.":
        "只有请求这张图片的人、服务器管理者或机器人所有者能删除它。",
    "That image was deleted, so it can't be rerolled; use /draw.": "那张图片已被删除，无法重画；请使用 /draw。",
    "That image is no longer in my records, so I can't work from it; use /draw.":
        "那张图片已不在我的记录中，我无法基于它作画；请使用 /draw。",
    "That image is no longer in my records.": "那张图片已不在我的记录中。",
    "That report's image is no longer in my records.": "那条举报对应的图片已不在我的记录中。",
    "Only the bot's owners, or managers of the server the image is in, can delete it.":
        "只有机器人的所有者，或图片所在服务器的管理者，能删除它。",
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
    "You can't use zbot (reason: {}).": "你不能使用 zbot（原因：{0}）。",
    "You can't use zbot.": "你不能使用 zbot。",
    "You can't use zbot in this server (reason: {}).": "你不能在本服务器使用 zbot（原因：{0}）。",
    "You can't use zbot in this server.": "你不能在本服务器使用 zbot。",
    "The bot's owners can't be banned.": "机器人的所有者不能被封禁。",
    "A ban lasts 1 to {} days; leave the days out for one until it is lifted.":
        "封禁时长为 1 到 {0} 天；不填天数则封禁直到被解除。",
    "That user is banned from zbot there already.": "该用户已经在那里被禁止使用 zbot 了。",
    "That user isn't banned from zbot there.": "该用户没有在那里被禁止使用 zbot。",
    "Only the bot's owners can ban someone from zbot in every server.": "只有机器人的所有者能在所有服务器禁止某人使用 zbot。",
    "Only managers of that server (Manage Server) and the bot's owners can ban or unban there.":
        "只有该服务器的管理者（管理服务器权限）和机器人的所有者能在那里封禁或解封。",
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
    "I don't draw in this channel; try {}.": "我不在这个频道画图；请试试 {0}。",
    "Describe the image you want: the prompt is empty.": "请描述你想要的图片：提示词是空的。",
    "Your prompt is {} characters long; the most allowed is {}.": "你的提示词有 {0} 个字符；最多允许 {1} 个。",
    "Your prompt contains control characters; remove them and try again.": "你的提示词包含控制字符；请删除后再试。",
    "Your prompt contains broken characters (lone surrogates); remove them and try again.":
        "你的提示词包含损坏的字符（孤立代理项）；请删除后再试。",
    "Your prompt contains a blocked word ({}); please rephrase it.": "你的提示词包含屏蔽词（{0}）；请换个说法。",
    "The seed must be a whole number from 0 to {}.": "种子必须是 0 到 {0} 之间的整数。",
    "Unknown size {}; choose one of: {}.": "未知尺寸 {0}；请从这些中选择：{1}。",
    "Steps must be between {} and {}.": "步数必须在 {0} 到 {1} 之间。",
    "Ask for 1 to {} images at a time.": "每次请求 1 到 {0} 张图片。",
    "This bot draws one image at a time.": "这个机器人每次只画一张图。",
    "The queue is too busy right now.": "队列现在太忙了。",
    "The queue is full ({} requests waiting).": "队列已满（{0} 个请求在等待）。",
    "You already have {} {} in the queue, the most allowed at once; send another when one is finished.":
        "你已经有 {0} {1}在队列中，已达同时允许的上限；等其中一个完成后再发吧。",
    "request": "个请求",
    "requests": "个请求",
    "You may draw at most {}, and this counts as {}; ask for {} or fewer (an upscale counts as several).":
        "你最多可以画 {0}，而这次算作 {1} 张；请求 {2} 张或更少（放大会算作多张）。",
    "You may draw only {} more {} right now ({}): ask for {} or fewer, or for {} later.":
        "你现在只能再画 {0} {1}（{2}）：请求 {3} 张或更少，或稍后再请求 {4} 张。",
    "image": "张",
    "images": "张",
    "You've reached your limit of {}.": "你已达到额度上限：{0}。",
    "{} image per {}": "每{1} {0} 张",
    "{} images per {}": "每{1} {0} 张",
    "minute": "分钟",
    "hour": "小时",
    "day": "天",
    "week": "周",
    "second": "秒",
    "{} minutes": "{0} 分钟",
    "{} hours": "{0} 小时",
    "{} days": "{0} 天",
    "{} weeks": "{0} 周",
    "{} seconds": "{0} 秒",
    "{}/minute": "{0} 张/分钟",
    "{}/hour": "{0} 张/小时",
    "{}/day": "{0} 张/天",
    "{}/week": "{0} 张/周",
    "**zbot in this server** (server: set here with /settings set; default: the bot's own)":
        "**zbot 在本服务器的设置**（本服务器：用 /settings set 设定；默认：机器人自己的）",
    "• {} = {} (server)": "• {0} = {1}（本服务器）",
    "• {} = {} (default)": "• {0} = {1}（默认）",
    "• {} = {} (server: {} is held back by the bot owner's settings)": "• {0} = {1}（本服务器设的 {2} 超出机器人所有者的设定，暂不生效）",
    "**Settings changes here**, newest first": "**本服务器的设置改动**，最新的在前",
    "**The queue in this server**: {} request ({} in the whole queue)": "**本服务器的队列**：{0} 个请求（整个队列共 {1} 个）",
    "**The queue in this server**: {} requests ({} in the whole queue)": "**本服务器的队列**：{0} 个请求（整个队列共 {1} 个）",
    "That image is no longer in my records (or was deleted), so I can't work from it; use /draw.":
        "那张图片已不在我的记录中（或已被删除），我无法基于它作画；请使用 /draw。",
    "Unknown operation {}.": "未知操作 {0}。",
    "That image is as large as I draw ({} pixels on its longer side); it can't be upscaled again.":
        "那张图片已是我能画的最大尺寸（长边 {0} 像素）；无法再放大。",
    "Choose one of the sizes: {}.": "请从这些尺寸中选择：{0}。",
    "That image is that size already; choose another.": "那张图片已经是这个尺寸了；请选择别的尺寸。",
    "That grid has {} images; choose one of 1 to {}.": "那个网格有 {0} 张图片；请在 1 到 {1} 中选择。",
    "The image this starts from was deleted, so I can't work from it; use /draw.":
        "它所基于的图片已被删除，我无法基于它作画；请使用 /draw。",
    "The image this starts from is no longer kept, so I can't work from it; use /draw.":
        "它所基于的图片已不再保存，我无法基于它作画；请使用 /draw。",
    "The strength must be more than 0 and at most 1.": "强度必须大于 0 且不超过 1。",
    "That file is not an image I can read ({}).": "那个文件不是我能读取的图片（{0}）。",
    "That image is too small to start from (16 pixels a side at least).": "那张图片太小，无法作为起点（每边至少 16 像素）。",
    "There is no server setting {}; the settings are: {}.": "没有名为 {0} 的服务器设置；可用的设置有：{1}。",
    "A server may allow at most {} (the bot owner's ceiling, ZBOT_MAX_SERVER_RATE_LIMITS); ask for that or less.":
        "服务器最多只能允许 {0}（机器人所有者设定的上限，ZBOT_MAX_SERVER_RATE_LIMITS）；请设为这个或更少。",
    "The tier of role {} allows more than {}, the bot owner's ceiling (ZBOT_MAX_SERVER_RATE_LIMITS).":
        "角色 {0} 的额度超过了 {1}，即机器人所有者设定的上限（ZBOT_MAX_SERVER_RATE_LIMITS）。",
    "A server may allow at most {} images a request (ZBOT_MAX_COUNT).": "服务器每个请求最多只能允许 {0} 张图片（ZBOT_MAX_COUNT）。",
    "The bot owner limits the bot to some channels (ZBOT_CHANNEL_IDS); a server may choose among those only.":
        "机器人所有者只允许在部分频道使用（ZBOT_CHANNEL_IDS）；服务器只能在这些频道中选择。",
    "The bot owner has flagged images posted as spoilers (ZBOT_SAFETY_NSFW_CHANNELS); a server can't show them plainly.":
        "机器人所有者设定被标记的图片以剧透形式发布（ZBOT_SAFETY_NSFW_CHANNELS）；服务器不能直接显示它们。",
    "{} has the default value here already.": "{0} 在这里已经是默认值了。",
    "{}: {} is too large: a window allows at most {} images and lasts at most {} days.":
        "{0}：{1} 超出范围：一个时间窗最多允许 {2} 张图片，最长 {3} 天。",
    # -- /quota and /stats -------------------------------------------------------------------------------
    "**Your limits** ({})": "**你的额度**（{0}）",
    "no per-user limits apply to you": "你不受个人额度限制",
    "everyone's limits": "所有人的额度",
    "the {} role's limits": "{0} 角色的额度",
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

CATALOGUES = {"zh-CN": ZH_CN, "zh-TW": {**ZH_CN, **ZH_TW}}


def language(locale) -> str | None:
    """The catalogue for a Discord locale (discord.Locale or its value), or None for English."""
    value = getattr(locale, "value", locale)
    return value if value in CATALOGUES else None


def t(locale, template: str, *values) -> str:
    """`template` with `values`, in the locale's language when it has the template."""
    lang = language(locale)
    translated = CATALOGUES[lang].get(template) if lang else None
    if translated is None:
        return template.format(*values)
    return translated.format(*(tr(locale, str(value)) if isinstance(value, str) else value for value in values))


@cache
def _patterns(lang: str) -> list[tuple[re.Pattern[str], str]]:
    """Each template with placeholders as a regex, the most specific (longest literal text) first."""
    out = []
    for english, translated in CATALOGUES[lang].items():
        if "{}" not in english:
            continue
        parts = [re.escape(part) for part in english.split("{}")]
        out.append((re.compile("(.+?)".join(parts), re.DOTALL), translated, len("".join(english.split("{}")))))
    out.sort(key=lambda item: -item[2])
    return [(pattern, translated) for pattern, translated, _ in out]


def tr(locale, text: str) -> str:
    """A finished English sentence in the locale's language: an exact entry, else the template it
    matches with its values translated too; else the text as it is."""
    lang = language(locale)
    if lang is None or not text:
        return text
    catalogue = CATALOGUES[lang]
    if text in catalogue:
        return catalogue[text]
    for pattern, translated in _patterns(lang):
        match = pattern.fullmatch(text)
        if match:
            return translated.format(*(tr(locale, value) for value in match.groups()))
    if "\n" in text:  # a list (/settings view, /queue): line by line
        return "\n".join(tr(locale, line) for line in text.split("\n"))
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
