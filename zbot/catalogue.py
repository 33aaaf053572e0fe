"""Every sentence zbot says to its users, keyed by id, each language side by side, with named
placeholders. Plain data and `render`: the core raises refusals by key and values (English comes out of
here for HTTP, the command line and the logs); the Discord side renders the same key in the member's
language. Nothing is ever translated by matching finished English back against a template.

A language is a column: add "zh-TW": "..." beside "zh-CN" in an entry and Traditional readers get it;
until then they fall back to zh-CN (FALLBACK), then English. Values that are themselves sentences (a
rate window, a noun) are `Text`s, rendered from their own keys in the same language; a list of values
(`Items`) is joined with the language's list separator.

Plural forms are separate keys (".one" / ".many"), so that every translation has exactly the English's
placeholders (tests/test_i18n.py checks it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from zbot.catalogue_zh_tw import ZH_TW as TRADITIONAL

EN, ZH_CN, ZH_TW = "en", "zh-CN", "zh-TW"
FALLBACK = {ZH_TW: ZH_CN}  # a language without an entry borrows this one's, then English's

MESSAGES: dict[str, dict[str, str]] = {
    "list.separator": {EN: ", ", ZH_CN: "、"},
    # -- rate windows (zbot.core.limits) -------------------------------------------------------------------
    "window.one": {EN: "{limit} image per {span}", ZH_CN: "每{span} {limit} 张"},
    "window.many": {EN: "{limit} images per {span}", ZH_CN: "每{span} {limit} 张"},
    "window.rate": {EN: "{limit}/{span}", ZH_CN: "{limit} 张/{span}"},
    "span.second": {EN: "second", ZH_CN: "秒"},
    "span.minute": {EN: "minute", ZH_CN: "分钟"},
    "span.hour": {EN: "hour", ZH_CN: "小时"},
    "span.day": {EN: "day", ZH_CN: "天"},
    "span.week": {EN: "week", ZH_CN: "周"},
    "span.seconds": {EN: "{count} seconds", ZH_CN: "{count} 秒"},
    "span.minutes": {EN: "{count} minutes", ZH_CN: "{count} 分钟"},
    "span.hours": {EN: "{count} hours", ZH_CN: "{count} 小时"},
    "span.days": {EN: "{count} days", ZH_CN: "{count} 天"},
    "span.weeks": {EN: "{count} weeks", ZH_CN: "{count} 周"},
    # -- admission (zbot.core.limits) ---------------------------------------------------------------------
    "queue.full": {EN: "The queue is full ({waiting} requests waiting).", ZH_CN: "队列已满（{waiting} 个请求在等待）。"},
    "queue.busy": {EN: "The queue is too busy right now.", ZH_CN: "队列现在太忙了。"},
    "limit.pending.one": {
        EN: "You already have {pending} request in the queue, the most allowed at once; send another when one is "
            "finished.",
        ZH_CN: "你已经有 {pending} 个请求在队列中，已达同时允许的上限；等其中一个完成后再发吧。"},
    "limit.pending.many": {
        EN: "You already have {pending} requests in the queue, the most allowed at once; send another when one is "
            "finished.",
        ZH_CN: "你已经有 {pending} 个请求在队列中，已达同时允许的上限；等其中一个完成后再发吧。"},
    "limit.too_big": {
        EN: "You may draw at most {window}, and this counts as {wanted}; ask for {limit} or fewer (an upscale counts "
            "as several).",
        ZH_CN: "你最多可以画 {window}，而这次算作 {wanted} 张；请求 {limit} 张或更少（放大会算作多张）。"},
    "limit.left.one": {
        EN: "You may draw only {left} more image right now ({window}): ask for {left} or fewer, or for {wanted} later.",
        ZH_CN: "你现在只能再画 {left} 张（{window}）：请求 {left} 张或更少，或稍后再请求 {wanted} 张。"},
    "limit.left.many": {
        EN: "You may draw only {left} more images right now ({window}): ask for {left} or fewer, or for {wanted} "
            "later.",
        ZH_CN: "你现在只能再画 {left} 张（{window}）：请求 {left} 张或更少，或稍后再请求 {wanted} 张。"},
    "limit.reached": {EN: "You've reached your limit of {window}.", ZH_CN: "你已达到额度上限：{window}。"},
    # -- the request itself (zbot.core.validation) --------------------------------------------------------
    "prompt.channel": {EN: "I don't draw in this channel; try {channels}.", ZH_CN: "我不在这个频道画图；请试试 {channels}。"},
    "prompt.empty": {EN: "Describe the image you want: the prompt is empty.", ZH_CN: "请描述你想要的图片：提示词是空的。"},
    "prompt.too_long": {EN: "Your prompt is {length} characters long; the most allowed is {most}.",
                        ZH_CN: "你的提示词有 {length} 个字符；最多允许 {most} 个。"},
    "prompt.control": {EN: "Your prompt contains control characters; remove them and try again.",
                       ZH_CN: "你的提示词包含控制字符；请删除后再试。"},
    "prompt.surrogates": {EN: "Your prompt contains broken characters (lone surrogates); remove them and try again.",
                          ZH_CN: "你的提示词包含损坏的字符（孤立代理项）；请删除后再试。"},
    "style.unknown": {EN: "There is no style {style!r} here; choose one of: {styles}.",
                      ZH_CN: "这里没有风格 {style!r}；请从这些中选择：{styles}。"},
    "style.none": {EN: "No styles are offered here; draw without one.", ZH_CN: "这里不提供风格；请不选风格作画。"},
    "prompt.blocked": {EN: "Your prompt contains a blocked word ({word!r}); please rephrase it.",
                       ZH_CN: "你的提示词包含屏蔽词（{word!r}）；请换个说法。"},
    "seed.range": {EN: "The seed must be a whole number from 0 to {most}.", ZH_CN: "种子必须是 0 到 {most} 之间的整数。"},
    "size.unknown": {EN: "Unknown size {size!r}; choose one of: {sizes}.", ZH_CN: "未知尺寸 {size!r}；请从这些中选择：{sizes}。"},
    "steps.range": {EN: "Steps must be between {least} and {most}.", ZH_CN: "步数必须在 {least} 到 {most} 之间。"},
    "count.range": {EN: "Ask for 1 to {most} images at a time.", ZH_CN: "每次请求 1 到 {most} 张图片。"},
    "count.one": {EN: "This bot draws one image at a time.", ZH_CN: "这个机器人每次只画一张图。"},
    # -- the service (zbot.core.service) ------------------------------------------------------------------
    "service.database": {
        EN: "Sorry, I can't take requests right now: my database won't save them (the admins can see why).",
        ZH_CN: "抱歉，我现在无法接受请求：我的数据库无法保存它们（管理员可以看到原因）。"},
    "service.restarting": {EN: "zbot is restarting.", ZH_CN: "zbot 正在重启。"},
    "service.stays_queued": {
        EN: "The bot is restarting; your image stays in the queue and will be posted here when it's back.",
        ZH_CN: "机器人正在重启；你的图片仍在队列中，恢复后会发到这里。"},
    "report.gone": {EN: "That report's image is no longer in my records.", ZH_CN: "那条举报对应的图片已不在我的记录中。"},
    # -- bans (zbot.core.bans) ----------------------------------------------------------------------------
    "ban.everywhere.reason": {EN: "You can't use zbot (reason: {reason}).", ZH_CN: "你不能使用 zbot（原因：{reason}）。"},
    "ban.everywhere": {EN: "You can't use zbot.", ZH_CN: "你不能使用 zbot。"},
    "ban.here.reason": {EN: "You can't use zbot in this server (reason: {reason}).",
                        ZH_CN: "你不能在本服务器使用 zbot（原因：{reason}）。"},
    "ban.here": {EN: "You can't use zbot in this server.", ZH_CN: "你不能在本服务器使用 zbot。"},
    "ban.owner": {EN: "The bot's owners can't be banned.", ZH_CN: "机器人的所有者不能被封禁。"},
    "ban.days": {EN: "A ban lasts 1 to {most} days; leave the days out for one until it is lifted.",
                 ZH_CN: "封禁时长为 1 到 {most} 天；不填天数则封禁直到被解除。"},
    "ban.already": {EN: "That user is banned from zbot there already.", ZH_CN: "该用户已经在那里被禁止使用 zbot 了。"},
    "ban.not_banned": {EN: "That user isn't banned from zbot there.", ZH_CN: "该用户没有在那里被禁止使用 zbot。"},
    "ban.everywhere.owners": {EN: "Only the bot's owners can ban someone from zbot in every server.",
                              ZH_CN: "只有机器人的所有者能在所有服务器禁止某人使用 zbot。"},
    "ban.managers": {EN: "Only managers of that server (Manage Server) and the bot's owners can ban or unban there.",
                     ZH_CN: "只有该服务器的管理者（管理服务器权限）和机器人的所有者能在那里封禁或解封。"},
    # -- working from an image (zbot.core.refining) -------------------------------------------------------
    "refine.strength": {EN: "The strength must be more than 0 and at most 1.", ZH_CN: "强度必须大于 0 且不超过 1。"},
    "refine.unreadable": {EN: "That file is not an image I can read ({error}).", ZH_CN: "那个文件不是我能读取的图片（{error}）。"},
    "refine.too_small": {EN: "That image is too small to start from (16 pixels a side at least).",
                         ZH_CN: "那张图片太小，无法作为起点（每边至少 16 像素）。"},
    "refine.gone": {
        EN: "That image is no longer in my records (or was deleted), so I can't work from it; use /draw.",
        ZH_CN: "那张图片已不在我的记录中（或已被删除），我无法基于它作画；请使用 /draw。"},
    "refine.operation": {EN: "Unknown operation {operation!r}.", ZH_CN: "未知操作 {operation!r}。"},
    "refine.too_large": {
        EN: "That image is as large as I draw ({side} pixels on its longer side); it can't be upscaled again.",
        ZH_CN: "那张图片已是我能画的最大尺寸（长边 {side} 像素）；无法再放大。"},
    "refine.sizes": {EN: "Choose one of the sizes: {sizes}.", ZH_CN: "请从这些尺寸中选择：{sizes}。"},
    "refine.same_size": {EN: "That image is that size already; choose another.", ZH_CN: "那张图片已经是这个尺寸了；请选择别的尺寸。"},
    "pick.range": {EN: "That grid has {count} images; choose one of 1 to {count}.",
                   ZH_CN: "那个网格有 {count} 张图片；请在 1 到 {count} 中选择。"},
    "source.deleted": {EN: "The image this starts from was deleted, so I can't work from it; use /draw.",
                       ZH_CN: "它所基于的图片已被删除，我无法基于它作画；请使用 /draw。"},
    "source.not_kept": {EN: "The image this starts from is no longer kept, so I can't work from it; use /draw.",
                        ZH_CN: "它所基于的图片已不再保存，我无法基于它作画；请使用 /draw。"},
    # -- a server's settings (zbot.core.server_settings) --------------------------------------------------
    "settings.unknown": {EN: "There is no server setting {name!r}; the settings are: {names}.",
                         ZH_CN: "没有名为 {name!r} 的服务器设置；可用的设置有：{names}。"},
    "settings.invalid": {EN: "{name}: {detail}.", ZH_CN: "{name}：{detail}。"},  # detail: pydantic's, English
    "window.too_large": {  # raised by zbot.config while parsing a rate; said inside settings.invalid
        EN: "{window!r} is too large: a window allows at most {limit} images and lasts at most {days} days",
        ZH_CN: "{window!r} 超出范围：一个时间窗最多允许 {limit} 张图片，最长 {days} 天"},
    "settings.rate_ceiling": {
        EN: "A server may allow at most {ceiling} (the bot owner's ceiling, ZBOT_MAX_SERVER_RATE_LIMITS); ask for "
            "that or less.",
        ZH_CN: "服务器最多只能允许 {ceiling}（机器人所有者设定的上限，ZBOT_MAX_SERVER_RATE_LIMITS）；请设为这个或更少。"},
    "settings.role_ceiling": {
        EN: "The tier of role {role} allows more than {ceiling}, the bot owner's ceiling (ZBOT_MAX_SERVER_RATE_LIMITS).",
        ZH_CN: "角色 {role} 的额度超过了 {ceiling}，即机器人所有者设定的上限（ZBOT_MAX_SERVER_RATE_LIMITS）。"},
    "settings.max_count": {EN: "A server may allow at most {most} images a request (ZBOT_MAX_COUNT).",
                           ZH_CN: "服务器每个请求最多只能允许 {most} 张图片（ZBOT_MAX_COUNT）。"},
    "settings.channels": {
        EN: "The bot owner limits the bot to some channels (ZBOT_CHANNEL_IDS); a server may choose among those only.",
        ZH_CN: "机器人所有者只允许在部分频道使用（ZBOT_CHANNEL_IDS）；服务器只能在这些频道中选择。"},
    "settings.spoilers": {
        EN: "The bot owner has flagged images posted as spoilers (ZBOT_SAFETY_NSFW_CHANNELS); a server can't show "
            "them plainly.",
        ZH_CN: "机器人所有者设定被标记的图片以剧透形式发布（ZBOT_SAFETY_NSFW_CHANNELS）；服务器不能直接显示它们。"},
    "settings.default_already": {EN: "{name} has the default value here already.", ZH_CN: "{name} 在这里已经是默认值了。"},
    "settings.style_unknown": {EN: "The bot has no style {style!r}; a server may offer these: {styles}.",
                               ZH_CN: "机器人没有风格 {style!r}；服务器可以提供这些：{styles}。"},
    "settings.no_styles": {EN: "The bot owner has configured no styles (ZBOT_STYLES); leave this empty.",
                           ZH_CN: "机器人所有者没有配置任何风格（ZBOT_STYLES）；请留空。"},
    "settings.default_style": {EN: "The default style must be one this server offers: {styles}.",
                               ZH_CN: "默认风格必须是本服务器提供的风格之一：{styles}。"},
    # -- answers on Discord (zbot.bot.messages, zbot.bot.errors, zbot.bot.access) --------------------------
    "error.apology": {EN: "Sorry, something went wrong on my side (error `{error_id}`); the admins can find it in the logs.",
                      ZH_CN: "抱歉，我这边出了问题（错误 `{error_id}`）；管理员可以在日志中查到。"},
    "error.check": {EN: "You can't use this command here.", ZH_CN: "你不能在这里使用这个命令。"},
    "retry.when": {EN: "Try again {when}.", ZH_CN: "请{when}再试。"},  # when: Discord's "in 40 seconds"
    "here.dm": {EN: "I only draw in servers; use me in a channel of your server.",
                ZH_CN: "我只在服务器里画图；请在你的服务器频道里使用我。"},
    "here.private": {EN: "This bot is private to the servers it was set up for; it doesn't draw here.",
                     ZH_CN: "这个机器人只为设置它的服务器服务；它不在这里画图。"},
    "tier.everyone": {EN: "everyone's limits", ZH_CN: "所有人的额度"},
    "tier.role": {EN: "the {role} role's limits", ZH_CN: "{role} 角色的额度"},
    "progress.warming": {EN: "Warming up: the model is loading. You're #{position} in the queue.",
                         ZH_CN: "正在预热：模型加载中。你排在第 {position} 位。"},
    "progress.starting": {EN: "Starting…", ZH_CN: "即将开始…"},
    "progress.next": {EN: "Queued: you're next, about {eta}.", ZH_CN: "排队中：下一个就是你，大约 {eta}。"},
    "progress.queued": {EN: "Queued: you're #{position} in the queue, about {eta}.",
                        ZH_CN: "排队中：你排在第 {position} 位，大约 {eta}。"},
    "progress.step": {EN: "Drawing… `{bar}` step {step}/{steps}", ZH_CN: "正在画… `{bar}` 第 {step}/{steps} 步"},
    "progress.image": {EN: "Drawing… `{bar}` image {image} of {images} · step {step}/{steps}",
                       ZH_CN: "正在画… `{bar}` 第 {image}/{images} 张 · 第 {step}/{steps} 步"},
    "eta.moment": {EN: "a moment", ZH_CN: "片刻"},
    "eta.seconds": {EN: "{seconds} s", ZH_CN: "{seconds} 秒"},
    "eta.minutes": {EN: "{minutes} min", ZH_CN: "{minutes} 分钟"},
    "origin.reroll": {EN: "reroll of {link}", ZH_CN: "重画，来自 {link}"},
    "origin.vary": {EN: "variation of {link}", ZH_CN: "变体，来自 {link}"},
    "origin.upscale": {EN: "upscale of {link}", ZH_CN: "放大，来自 {link}"},
    "origin.edit": {EN: "edited from {link}", ZH_CN: "改写提示词，来自 {link}"},
    "origin.size": {EN: "resized from {link}", ZH_CN: "换尺寸，来自 {link}"},
    "origin.reroll.bare": {EN: "reroll", ZH_CN: "重画"},
    "origin.vary.bare": {EN: "variation", ZH_CN: "变体"},
    "origin.upscale.bare": {EN: "upscale", ZH_CN: "放大"},
    "origin.edit.bare": {EN: "edited", ZH_CN: "改写提示词"},
    "origin.size.bare": {EN: "resized", ZH_CN: "换尺寸"},
    "origin.zoom": {EN: "zoomed out from {link}", ZH_CN: "缩小，来自 {link}"},
    "origin.pan": {EN: "panned from {link}", ZH_CN: "平移，来自 {link}"},
    "origin.zoom.bare": {EN: "zoomed out", ZH_CN: "缩小"},
    "origin.pan.bare": {EN: "panned", ZH_CN: "平移"},
    "draw.failed": {EN: "Sorry, this image could not be drawn: {reason}. It did not count against your limits.",
                    ZH_CN: "抱歉，这张图没能画出来：{reason}。它没有计入你的额度。"},
    "draw.cancelled": {EN: "Cancelled: it left the queue, and it did not count against your limits.",
                       ZH_CN: "已取消：它已离开队列，没有计入你的额度。"},
    "draw.cancelled_by_admin": {
        EN: "An admin took this request out of the queue; it did not count against your limits.",
        ZH_CN: "管理员把这个请求移出了队列；它没有计入你的额度。"},
    "draw.started": {EN: "It's being drawn already, so it can't be cancelled now.", ZH_CN: "它已经在画了，现在无法取消。"},
    "draw.withheld": {
        EN: "Your image wasn't posted: the safety check flagged it as adult content, which is only shown in "
            "age-restricted channels. It still counts against your limits.",
        ZH_CN: "你的图片没有发出：安全检查把它标记为成人内容，这类内容只在年龄限制频道中显示。它仍然计入你的额度。"},
    "draw.withheld_public": {EN: "your image couldn't be posted here (and your direct messages are closed to me).",
                             ZH_CN: "你的图片无法在这里发出（而你的私信也没有对我开放）。"},
    "draw.not_posted": {EN: "This image wasn't posted.", ZH_CN: "这张图片没有发出。"},
    "draw.unpostable": {
        EN: "Sorry, your image was drawn but Discord wouldn't let me post it here (missing permissions?); it did not "
            "count against your limits.",
        ZH_CN: "抱歉，你的图片已经画好，但 Discord 不让我在这里发出（缺少权限？）；它没有计入你的额度。"},
    "draw.lost": {
        EN: "sorry, your image for “{prompt}” was lost when the bot restarted; please /draw it again. It did not "
            "count against your limits.",
        ZH_CN: "抱歉，你的图片“{prompt}”在机器人重启时丢失了；请再用 /draw 画一次。它没有计入你的额度。"},
    "pick.withheld": {EN: "That image was withheld by the safety check: it is only shown in age-restricted channels.",
                      ZH_CN: "这张图片被安全检查拦下了：它只在年龄限制频道中显示。"},
    "report.thanks": {EN: "Thanks: the report is with the admins.", ZH_CN: "谢谢：举报已交给管理员。"},
    "report.already": {EN: "You have reported this image already; the admins have it.",
                       ZH_CN: "你已经举报过这张图片了；管理员已收到。"},
    # -- moderation, picking, uploads (zbot.core) and the cogs' own refusals (zbot/bot/cogs) ----------------
    "image.gone": {EN: "That image is no longer in my records.", ZH_CN: "那张图片已不在我的记录中。"},
    "delete.owners_or_managers": {
        EN: "Only the bot's owners, or managers of the server the image is in, can delete it.",
        ZH_CN: "只有机器人的所有者，或图片所在服务器的管理者，能删除它。"},
    "queue.not_here": {EN: "That request isn't in this server's queue.", ZH_CN: "这个请求不在本服务器的队列中。"},
    "queue.started": {
        EN: "That request has started (or finished) already, so it can't be cancelled.",
        ZH_CN: "这个请求已经开始（或已完成），无法取消。"},
    "pick.gone": {
        EN: "That grid is no longer on show, so its images can't be picked; use /draw.",
        ZH_CN: "那个网格已不再展示，无法挑选其中的图片；请使用 /draw。"},
    "pick.not_yours": {
        EN: "Only the person who asked for these images (or an admin) can pick one.",
        ZH_CN: "只有请求这些图片的人（或管理员）能挑选。"},
    "stats.not_allowed": {
        EN: "Only server managers and the bot's owners can see usage statistics.",
        ZH_CN: "只有服务器管理者和机器人的所有者能查看使用统计。"},
    "admin.only": {
        EN: "Only server managers (Manage Server) and the bot's owners can do that.",
        ZH_CN: "只有服务器管理者（管理服务器权限）和机器人的所有者能这样做。"},
    "reroll.none": {
        EN: "You have no image in this channel to reroll yet; use /draw first.",
        ZH_CN: "你在本频道还没有可以重画的图片；请先使用 /draw。"},
    "reroll.not_zbot": {
        EN: "That message isn't a zbot image; Reroll works on images I posted.",
        ZH_CN: "那条消息不是 zbot 的图片；重画只适用于我发的图片。"},
    "reroll.gone": {
        EN: "That image is no longer in my records, so it can't be rerolled; use /draw.",
        ZH_CN: "那张图片已不在我的记录中，无法重画；请使用 /draw。"},
    "reroll.deleted": {
        EN: "That image was deleted, so it can't be rerolled; use /draw.",
        ZH_CN: "那张图片已被删除，无法重画；请使用 /draw。"},
    "cancel.not_yours": {
        EN: "Only the person who asked for this image, or an admin, can cancel it.",
        ZH_CN: "只有请求这张图片的人或管理员能取消它。"},
    "button.wrong": {EN: "That button doesn't belong to this message.", ZH_CN: "那个按钮不属于这条消息。"},
    "delete.not_yours": {
        EN: "Only the person who asked for this image, a server manager or a bot owner can delete it.",
        ZH_CN: "只有请求这张图片的人、服务器管理者或机器人所有者能删除它。"},
    "refine.image_gone": {
        EN: "That image is no longer in my records, so I can't work from it; use /draw.",
        ZH_CN: "那张图片已不在我的记录中，我无法基于它作画；请使用 /draw。"},
    "delete.not_on_show": {
        EN: "That image isn't on show (it was deleted already, or never posted).",
        ZH_CN: "那张图片没有在展示（已被删除，或从未发出）。"},
    "delete.failed": {EN: "I couldn't delete it ({error}); delete the message by hand: {link}",
                      ZH_CN: "我没能删除它（{error}）；请手动删除这条消息：{link}"},
    "upload.too_big": {
        EN: "That file is larger than {mb} MB; send an image of at most {mb} MB.",
        ZH_CN: "那个文件超过 {mb} MB；请发送不超过 {mb} MB 的图片。"},
    "upload.timeout": {
        EN: "The image took more than {seconds} seconds to download; send a smaller file or try again later.",
        ZH_CN: "图片下载超过了 {seconds} 秒；请发送更小的文件或稍后再试。"},
    "upload.pixels": {
        EN: "That image is {width}x{height} pixels; send one of at most {megapixels} megapixels.",
        ZH_CN: "那张图片有 {width}x{height} 像素；请发送不超过 {megapixels} 百万像素的图片。"},
    "upload.bomb": {
        EN: "That image has too many pixels; send one of at most {megapixels} megapixels.",
        ZH_CN: "那张图片的像素太多；请发送不超过 {megapixels} 百万像素的图片。"},
    "upload.unreadable": {
        EN: "That file isn't an image I can read; send a PNG, JPEG, WebP or GIF.",
        ZH_CN: "那个文件不是我能读取的图片；请发送 PNG、JPEG、WebP 或 GIF。"},
    "upload.damaged": {
        EN: "That image file is damaged or incomplete; send it again as a PNG, JPEG, WebP or GIF.",
        ZH_CN: "那个图片文件已损坏或不完整；请以 PNG、JPEG、WebP 或 GIF 格式重新发送。"},
    # -- your own picture, Zoom out, Pan (issue 28: zbot.core.refining) ---------------------------------
    "upload.flagged": {
        EN: "That image was flagged by the safety check; I only draw from it in age-restricted channels.",
        ZH_CN: "那张图片被安全检查标记；我只在年龄限制频道中基于它作画。"},
    "upload.none": {
        EN: "That message has no image; use it on a message with a PNG, JPEG, WebP or GIF.",
        ZH_CN: "那条消息没有图片；请在带有 PNG、JPEG、WebP 或 GIF 的消息上使用。"},
    "upload.download": {
        EN: "I couldn't download that image; attach it again.", ZH_CN: "我没能下载那张图片；请重新附上它。"},
    "reframe.factor": {EN: "Zoom out by one of: {factors}.", ZH_CN: "请按以下倍数之一缩小：{factors}。"},
    "reframe.direction": {EN: "Pan one of: {directions}.", ZH_CN: "请向以下方向之一平移：{directions}。"},
    "reframe.pan_cap": {
        EN: "That side is at {side} pixels already; pan the other way or zoom out.",
        ZH_CN: "那一边已经是 {side} 像素；请向另一个方向平移或缩小。"},
    # -- a member's own records and /help (zbot.core.privacy, zbot/bot/cogs/privacy.py, help.py) -----------
    "history.empty": {EN: "You have no images in this server yet; use /draw.", ZH_CN: "你在本服务器还没有图片；请使用 /draw。"},
    "history.title": {EN: "**Your images in this server**, newest first (page {page} of {pages}, {total} in all):",
                      ZH_CN: "**你在本服务器的图片**，最新的在前（第 {page}/{pages} 页，共 {total} 张）："},
    "history.deleted": {EN: "deleted", ZH_CN: "已删除"},
    "history.withheld": {EN: "withheld by the safety check", ZH_CN: "被安全检查拦下"},
    "history.not_posted": {EN: "not posted", ZH_CN: "没有发出"},
    "forget.confirm": {
        EN: "This deletes what zbot keeps about you in this server: your prompts, your kept images and your "
            "reports' notes; it can't be undone. Your limits still count your recent images (their time only) "
            "until their windows pass. Requests still waiting are drawn and posted first.",
        ZH_CN: "这会删除 zbot 在本服务器保存的关于你的内容：你的提示词、保存的图片和举报备注；删除后无法恢复。"
               "你的额度仍会计算近期的图片（只保留时间），直到其时间窗过去。仍在排队的请求会先画完并发出。"},
    "forget.working": {EN: "Forgetting…", ZH_CN: "正在删除…"},
    "forget.kept": {EN: "Nothing was deleted.", ZH_CN: "没有删除任何内容。"},
    "forget.done": {EN: "Done: I forgot your prompts and images in this server ({images} in my records).",
                    ZH_CN: "完成：我已删除你在本服务器的提示词和图片（记录中共 {images} 条）。"},
    "forget.done_messages": {
        EN: "Done: I forgot your prompts and images in this server ({images} in my records) and deleted {deleted} "
            "of my messages with your images.",
        ZH_CN: "完成：我已删除你在本服务器的提示词和图片（记录中共 {images} 条），并删除了 {deleted} 条带有你的图片的消息。"},
    "forget.messages_left": {
        EN: "I couldn't delete {left} of those messages; ask a server admin to delete them.",
        ZH_CN: "其中有 {left} 条消息我没能删除；请让服务器管理员删除它们。"},
    "help.intro": {
        EN: "**zbot** draws images from your words with Z-Image-Turbo, one request at a time for everyone here.",
        ZH_CN: "**zbot** 用 Z-Image-Turbo 根据你的文字画图，所有人的请求依次进行。"},
    "help.limits": {EN: "**Your limits here**: {windows}; at most {pending} requests waiting at once (/quota shows "
                        "what you have left).",
                    ZH_CN: "**你在这里的额度**：{windows}；同时最多 {pending} 个请求排队（/quota 显示剩余额度）。"},
    "help.no_limits": {EN: "**Your limits here**: no rate limits; at most {pending} requests waiting at once.",
                       ZH_CN: "**你在这里的额度**：没有频率限制；同时最多 {pending} 个请求排队。"},
    "help.sizes": {EN: "**Sizes**: {sizes}; up to {most} images a request to choose from.",
                   ZH_CN: "**尺寸**：{sizes}；每个请求最多 {most} 张供挑选。"},
    "help.styles": {EN: "**Styles**: {styles}.", ZH_CN: "**风格**：{styles}。"},
    "help.buttons": {
        EN: "**Under each image**: Reroll draws it again with a new seed; Vary, Upscale, Edit prompt and another "
            "size start from it; Delete takes it down (yours, or as an admin).",
        ZH_CN: "**每张图片下方**：重画会用新种子再画一次；变体、放大、改写提示词和换尺寸都以它为起点；删除会撤下它（你自己的，或管理员）。"},
    "help.report": {
        EN: "**Report** (under each image) sends the image, with a note if you like, to this server's admins; "
            "only they see it, and one report per image is enough.",
        ZH_CN: "**举报**（每张图片下方）会把图片连同你的备注（可选）交给本服务器的管理员；只有他们能看到，每张图片举报一次就够了。"},
    "help.commands": {
        EN: "**Commands**: /draw, /reroll, /quota, /history (your images here), /forget (delete what zbot keeps "
            "about you here), /help.",
        ZH_CN: "**命令**：/draw、/reroll、/quota、/history（你在这里的图片）、/forget（删除 zbot 在这里保存的关于你的内容）、/help。"},
    "help.privacy": {
        EN: "zbot keeps your prompts and images so that you can work from them later; /forget deletes them.",
        ZH_CN: "zbot 保存你的提示词和图片，方便你以后继续使用；/forget 可以删除它们。"},
}

# The zh-TW column, kept in its own file (this one would pass 400 lines with it); a key it lacks falls back.
for _key, _said in TRADITIONAL.items():
    if _key in MESSAGES:
        MESSAGES[_key][ZH_TW] = _said



class Text(str):
    """A sentence of the catalogue. It *is* its English (a str, so logs, HTTP and the command line use it
    as they always did) and carries its key and values, so that a front end can say it in another
    language without parsing the English back."""

    key: str
    values: dict[str, Any]

    def __new__(cls, key: str, values: Mapping[str, Any] | None = None) -> Text:
        values = dict(values or {})
        self = super().__new__(cls, render(key, values, EN))
        self.key, self.values = key, values
        return self

    def __reduce__(self):  # pickled (a refusal crossing processes) as its key and values, not its English
        return Text, (self.key, self.values)

    def in_language(self, lang: str | None) -> str:
        return render(self.key, self.values, lang)


def text(key: str, **values: Any) -> Text:
    """The sentence `key` with its values: `text("limit.reached", window=...)`."""
    return Text(key, values)


class Items(tuple):
    """A list of values shown in a sentence, joined with the reader's list separator ("a, b" / "a、b")."""


def items(values: Iterable[Any]) -> Items:
    return Items(values)


def template(key: str, lang: str | None = None) -> str:
    """The key's template in `lang`, else its fallback language's, else English."""
    entry = MESSAGES[key]
    return entry.get(lang or EN) or entry.get(FALLBACK.get(lang or EN, EN)) or entry[EN]


def render(key: str, values: Mapping[str, Any] | None = None, lang: str | None = None) -> str:
    """The sentence `key` in `lang` (None: English), each value rendered in the same language."""
    return template(key, lang).format(**{name: _shown(value, lang) for name, value in (values or {}).items()})


def _shown(value: Any, lang: str | None) -> Any:
    if isinstance(value, Text):
        return value.in_language(lang)
    if isinstance(value, Items):
        return template("list.separator", lang).join(str(_shown(item, lang)) for item in value)
    return value
