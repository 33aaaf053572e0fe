"""What a request may ask for: the checks every front end's requests pass before admission."""

from __future__ import annotations

import re
import secrets
import unicodedata

from zbot.catalogue import items
from zbot.config import MAX_STEPS, MIN_STEPS, SEED_LIMIT, Settings
from zbot.core.jobs import BadInput, DrawRequest, NewJob, Operation

# Characters that change nothing on screen and so can hide a word: format characters (zero-width
# space and joiners, soft hyphen, bidi controls), combining marks, and the other default-ignorables.
_IGNORABLE_CATEGORIES = {"Cf", "Mn", "Me"}
_IGNORABLE = {0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x3164, 0xFFA0} | set(range(0x180B, 0x1810))


def comparable(text: str) -> str:
    """Text as a reader sees it, for matching words: compatibility forms folded (full-width letters,
    mathematical alphabets, ligatures), accents and invisible characters removed, case folded."""
    decomposed = unicodedata.normalize("NFKD", text)
    visible = "".join(ch for ch in decomposed
                      if unicodedata.category(ch) not in _IGNORABLE_CATEGORIES and ord(ch) not in _IGNORABLE)
    return unicodedata.normalize("NFKC", visible).casefold()


def blocked_word(prompt: str, words: list[str]) -> str | None:
    """The first blocked word the prompt contains, however it is written: as a whole word, or anywhere
    for words in scripts written without spaces (Chinese, Japanese)."""
    seen = comparable(prompt)
    for word in words:
        wanted = comparable(word)
        if any(unicodedata.east_asian_width(ch) in "WF" for ch in wanted):
            if wanted in seen:
                return word
        elif re.search(rf"(?<!\w){re.escape(wanted)}(?!\w)", seen):
            return word
    return None


def cost_of(settings: Settings, width: int, height: int, count: int = 1) -> int:
    """Images of work: one per image at a configured size, ZBOT_UPSCALE_WEIGHT for an image larger
    than every configured size (an upscale, or a variation or edit of one)."""
    largest = max(w * h for w, h in settings.size_table.values())
    return count * (settings.upscale_weight if width * height > largest else 1)


def style_of(s: Settings, asked: str | None) -> str | None:
    """The style a request draws in: the one it names ("" for none), else the server's default; BadInput
    unless the server offers it."""
    style = s.default_style if asked is None else (asked.strip() or None)
    if style is None or style in s.styles:
        return style
    if not s.styles:
        raise BadInput("style.none")
    raise BadInput("style.unknown", {"style": style[:40], "styles": items(list(s.styles)[:25])})


def validate(s: Settings, request: DrawRequest) -> NewJob:
    """The job to admit for a request, or BadInput saying what is allowed."""
    if s.channel_ids and request.channel_id is not None and request.channel_id not in s.channel_ids:
        raise BadInput("prompt.channel", {"channels": items(f"<#{c}>" for c in s.channel_ids[:5])})
    prompt = request.prompt.strip()
    if not prompt:
        raise BadInput("prompt.empty")
    if len(prompt) > s.max_prompt_chars:
        raise BadInput("prompt.too_long", {"length": len(prompt), "most": s.max_prompt_chars})
    if any(unicodedata.category(ch) == "Cc" and ch not in "\t\n\r" for ch in prompt):
        raise BadInput("prompt.control")
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in prompt):  # a lone surrogate: JSON allows it, UTF-8 (SQLite) not
        raise BadInput("prompt.surrogates")
    blocked = blocked_word(prompt, s.blocked_words)
    if blocked:
        raise BadInput("prompt.blocked", {"word": blocked})
    seed = request.seed
    if seed is not None and not 0 <= seed < SEED_LIMIT:
        raise BadInput("seed.range", {"most": SEED_LIMIT - 1})
    size = request.size or s.default_size
    sizes = s.size_table
    if size not in sizes:
        raise BadInput("size.unknown", {"size": size[:40], "sizes": items(sizes)})
    steps = s.steps if request.steps is None else request.steps
    if not MIN_STEPS <= steps <= MAX_STEPS:
        raise BadInput("steps.range", {"least": MIN_STEPS, "most": MAX_STEPS})
    # ZBOT_DEFAULT_COUNT is for /draw; other tools ask for what they want (one image unless they say).
    default = s.default_count if request.source == "discord" else 1
    count = default if request.count is None else request.count
    if not 1 <= count <= s.max_count:
        raise BadInput("count.range", {"most": s.max_count}) if s.max_count > 1 else BadInput("count.one")
    width, height = sizes[size]
    style = style_of(s, request.style)
    operation = request.operation or (Operation.REROLL if request.parent_id is not None else Operation.DRAW)
    return NewJob(source=request.source, user_id=request.user_id, guild_id=request.guild_id,
                  channel_id=request.channel_id, prompt=prompt,
                  seed=secrets.randbelow(SEED_LIMIT) if seed is None else seed,
                  size=size, width=width, height=height, steps=steps, parent_id=request.parent_id,
                  interaction_id=request.interaction_id, count=count, operation=operation, style=style,
                  factor=request.factor, direction=request.direction, upload=request.upload,
                  # a pick posts an image its grid already paid for
                  cost=0 if operation == Operation.PICK else cost_of(s, width, height, count))
