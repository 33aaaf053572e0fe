"""Settings: every knob is a ZBOT_* environment variable (or a line in .env).

Lists are comma-separated (`ZBOT_ADMIN_IDS=123,456`); maps are JSON. Names are a public
interface: users' .env files depend on them, so rename nothing once released.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, PrivateAttr, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from zbot.catalogue import Text
from zbot.core.styles import Style, StyleError, parse_styles, read_styles_file

SEED_LIMIT = 2**32
MIN_STEPS, MAX_STEPS = 1, 50

# Named sizes around one megapixel, each side a multiple of 16 (the pipeline's requirement).
DEFAULT_SIZES: dict[str, str] = {
    "square": "1024x1024",
    "portrait": "864x1152",
    "landscape": "1152x864",
    "tall": "720x1280",
    "wide": "1280x720",
}

UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400}
# A window's bounds, far beyond any real use: SQLite binds integers up to 2**63 - 1 and the refusal's
# wording goes through timedelta (at most 999999999 days); past them every request raised OverflowError.
MAX_WINDOW_LIMIT = 10**9
MAX_WINDOW_DAYS = 3650
# Discord takes at most 100 characters for a command choice's name and value and a menu option's label
# and value; /draw and the size menu show a size as "name (2048×2048)", 12 more characters at most.
MAX_SIZE_NAME = 100 - len(" (2048×2048)")
_WINDOW_RE = re.compile(r"^\s*(\d+)\s*(?:/|per)\s*(\d+)?\s*(second|minute|hour|day|week)s?\s*$", re.I)


@dataclass(frozen=True)
class Window:
    """At most `limit` images per `seconds`, e.g. 5/minute."""

    limit: int
    seconds: int
    text: str

    def __str__(self) -> str:
        return self.text


def parse_windows(text: str) -> tuple[Window, ...]:
    """Parse "5/minute,100/day" (also "5 per minute", "10/6 hours") into windows."""
    windows = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        match = _WINDOW_RE.match(part)
        if not match:
            raise ValueError(f"{part!r} is not a rate like 5/minute or 100/day")
        if len(match[1]) > 12 or len(match[2] or "") > 12:  # int() of thousands of digits is refused, or slow
            raise _too_large(part)
        limit, count, unit = int(match[1]), int(match[2] or 1), match[3].lower()
        if limit < 1 or count < 1:
            raise ValueError(f"{part!r} must allow at least 1 image per window")
        if limit > MAX_WINDOW_LIMIT or count * UNIT_SECONDS[unit] > MAX_WINDOW_DAYS * 86400:
            raise _too_large(part)
        windows.append(Window(limit, count * UNIT_SECONDS[unit], part))
    return tuple(windows)


def _too_large(part: str) -> ValueError:
    return ValueError(Text("window.too_large", {"window": part[:40], "limit": MAX_WINDOW_LIMIT, "days": MAX_WINDOW_DAYS}))


def parse_size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*[x×]\s*(\d+)\s*", text)
    if not match:
        raise ValueError(f"{text!r} is not WIDTHxHEIGHT")
    width, height = int(match[1]), int(match[2])
    if width % 16 or height % 16 or not (16 <= width <= 2048 and 16 <= height <= 2048):
        raise ValueError(f"{text!r}: each side must be a multiple of 16 between 16 and 2048")
    return width, height


def _split_list(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    if isinstance(value, int):
        return [value]
    return value


def _json_map(value: Any) -> Any:
    if isinstance(value, str):
        return json.loads(value) if value.strip() else {}
    return value


class Settings(BaseSettings):
    """All of zbot's configuration. See .env.example for every field with its default."""

    model_config = SettingsConfigDict(env_prefix="ZBOT_", env_file=".env", extra="ignore")
    _styles_read: bool = PrivateAttr(False)  # ZBOT_STYLES_FILE merged into styles

    # The model
    model: str = Field("Tongyi-MAI/Z-Image-Turbo", description="ModelScope model id, or a local directory "
                       "holding a diffusers-format Z-Image pipeline.")
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$",
                        description="auto (cuda when available, else cpu), cpu, cuda or cuda:N.")
    dtype: Literal["auto", "bf16", "fp16", "fp32"] = Field(
        "auto", description="Weights' precision; auto is bf16 on cuda, fp32 on cpu (fp16 is refused: it gives "
        "black images with this model).")
    steps: int = Field(8, ge=MIN_STEPS, le=MAX_STEPS, description="Transformer forwards per image "
                       "(8 is the model's distilled schedule).")
    compile: Literal["auto", "on", "off"] = Field(
        "auto", description="torch.compile the transformer blocks and VAE decoder; auto is on for cuda.")
    quantize: Literal["none", "fp8"] = Field(
        "none", description="fp8: torchao float8 on the transformer; GPUs of compute capability 8.9+ (RTX 40xx, "
        "L4, L40, H100); needs pip install 'zbot[fp8]'; off by default until judged on real weights.")
    offload: Literal["none", "model"] = Field(
        "none", description="model: the text encoder waits in pinned CPU memory and streams in per prompt; "
        "~13 GiB instead of ~21 GiB at 1024x1024, ~0.6 s more per image (24 GB cards).")
    compile_cache: Path | None = Field(
        None, description="Folder for torch.compile's cache and the image blocks compiled ahead of time; on a "
        "volume, later starts warm up faster.")
    styles: Annotated[dict[str, Style], NoDecode] = Field(
        default_factory=dict, description='Styles users may pick, JSON {"NAME": {"description": "...", "template": '
        '"{prompt}, watercolor", "lora": "FILE.safetensors, hf:ORG/NAME or modelscope:ORG/NAME", "scale": 0.8}}; '
        "template and lora are each optional.")
    styles_file: Path | None = Field(
        None, description="A JSON or TOML file of more styles, the same map as ZBOT_STYLES (a name in both is "
        "refused).")
    default_style: str | None = Field(
        None, description="The style a /draw uses when it names none (one of ZBOT_STYLES); empty: none. A server may "
        "choose its own among the styles it offers.")
    lora_max_rank: int = Field(
        0, ge=0, le=1024, description="The LoRA rank the compiled model is prepared for; 0: the largest rank "
        "among the styles' adapters. Set it higher to leave room for adapters added later.")
    sizes: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=lambda: dict(DEFAULT_SIZES),
        description='Named sizes offered to users, JSON {"name": "WIDTHxHEIGHT"}; the first is the default.')

    # Storage and limits
    database: Path = Field(Path("zbot.sqlite3"), description="SQLite file: jobs, history and limits.")
    rate_limits: Annotated[tuple[Window, ...], NoDecode] = Field(
        default_factory=lambda: parse_windows("5/minute,100/day"),
        description="Per-user windows, comma-separated, e.g. 5/minute,100/day. Empty for none.")
    max_server_rate_limits: Annotated[tuple[Window, ...], NoDecode] = Field(
        default_factory=tuple, description="The most generous rate limits (and role tiers) a server's managers "
        "may set with /settings, e.g. 20/minute,500/day; empty: ZBOT_RATE_LIMITS (they may only tighten them). "
        "Bot owners may set any.")
    limits_scope: Literal["server", "global"] = Field(
        "server", description="server: each user's rate limits count their images in each server apart (and "
        "over HTTP apart); global: all of them together.")
    max_pending_per_user: int = Field(2, ge=1, description="Unfinished jobs a user may have at once.")
    queue_size: int = Field(100, ge=1, description="Unfinished jobs the whole queue may hold.")
    max_prompt_chars: int = Field(1000, ge=1, le=10000, description="Longest prompt accepted.")
    default_count: int = Field(1, ge=1, le=4, description="Images a /draw makes when it doesn't say (1-4); "
                               "several come as a grid to choose from.")
    max_count: int = Field(4, ge=1, le=4, description="The most images one request may ask for (1-4); each counts "
                           "against the limits.")
    keep_images_days: float = Field(7, ge=0, description="Days posted images are kept at full size beside the "
                                    "database: picking from a grid, Vary and Upscale start from them at once; "
                                    "older ones are drawn again from their seed first.")
    keep_images_max_gb: float = Field(20, ge=0, description="The most the kept images may take on disk, in GB "
                                      "(10^9 bytes); beyond it the oldest go first (drawn again from their seed "
                                      "when needed), never one still to be posted or worked from. 0: no cap.")
    vary_strength: float = Field(0.7, gt=0, le=1, description="How much of an image Vary (Strong) redraws (0-1): "
                                 "0.6 keeps its layout, 0.9 keeps little more than its colours. Also what "
                                 "/draw with an image redraws when it gives no strength.")
    vary_subtle_strength: float = Field(0.45, gt=0, le=1, description="How much of an image Vary (Subtle) redraws "
                                        "(0-1): the same picture with small changes.")
    grid_vary: Literal["subtle", "strong"] = Field("strong", description="Which Vary the V1-V4 buttons under a grid "
                                                   "do: subtle or strong.")
    upscale_strength: float = Field(0.4, gt=0, le=1, description="How much of the enlarged image Upscale redraws "
                                    "(0-1): detail added at 0.3-0.5, a different picture above.")
    upscale_weight: int = Field(4, ge=1, description="Images an upscale (an image larger than every size in "
                                "ZBOT_SIZES) counts as against the limits: about the work it is.")
    admin_ids: Annotated[list[int], NoDecode] = Field(
        default_factory=list, description="Bot owners, comma-separated user ids: no per-user limits, /settings and "
        "/stats in every server, may delete any image.")
    exempt_managers: bool = Field(False, description="true: members with Manage Server are free of per-user "
                                  "limits in their server (they always see its /stats).")

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log verbosity.")
    log_format: Literal["text", "json"] = Field("text", description="text for people, json (one object a line) "
                                                "for log collectors.")

    # HTTP: health, metrics and the image API for the team's other tools
    http_host: str = Field("127.0.0.1", description="Address of the HTTP server (/healthz, /metrics, /v1/images).")
    http_port: int = Field(8080, ge=0, le=65535, description="Port of the HTTP server; 0 turns it off.")
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list, description="Keys for POST /v1/images (Authorization: Bearer KEY), comma-separated; "
        "each is rate-limited like a Discord user.")

    # More than one GPU
    executor: Literal["local", "ray"] = Field("local", description="local: one GPU in this process; ray: one "
                                              "render worker per GPU on a Ray cluster (pip install 'zbot[ray]').")
    ray_address: str | None = Field(None, description="Ray cluster to join: empty or auto (this machine's "
                                    "cluster, else a local Ray), HEAD:6379, or ray://HEAD:10001.")
    workers: int | None = Field(None, ge=1, description="Render workers with ZBOT_EXECUTOR=ray; empty: one per GPU "
                                "Ray sees.")

    blocked_words: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Words a prompt may not contain, comma-separated: whole words, "
        "however written (case, full-width letters, accents, invisible characters); Chinese or Japanese ones "
        "anywhere in the prompt.")

    # Discord
    discord_token: SecretStr | None = Field(None, description="The bot's token (Developer Portal > Bot).")
    discord_api_url: str = Field("https://discord.com/api/v10",
                                 description="Discord's REST API, or a REST proxy in front of it.")
    discord_gateway_url: str = Field("wss://gateway.discord.gg/",
                                     description="Discord's gateway, or a gateway proxy.")
    guild_ids: Annotated[list[int], NoDecode] = Field(
        default_factory=list, description="Servers to sync the commands to at start (instant); empty: global.")
    allowed_guild_ids: Annotated[list[int], NoDecode] = Field(
        default_factory=list, description="Servers the bot draws in, comma-separated; others are told no. Empty: "
        "the ZBOT_GUILD_IDS servers, or any server when that is empty too.")
    channel_ids: Annotated[list[int], NoDecode] = Field(
        default_factory=list, description="Channels the bot draws in, comma-separated; empty: everywhere.")
    role_rate_limits: Annotated[dict[int, tuple[Window, ...]], NoDecode] = Field(
        default_factory=dict, description='Role tiers, JSON {"ROLE_ID": "20/minute,500/day"}; a member '
        "with several gets the most generous.")
    recovery_max_age: int = Field(
        3600, ge=0, description="Seconds: after a crash, unfinished jobs younger than this are drawn and "
        "posted; older ones are marked failed and their users told.")

    # Content safety: every image is checked before anyone sees it
    safety: Literal["block", "off"] = Field(
        "block", description="block: an image the checker flags as adult is not posted outside age-restricted "
        "channels (its requester is told privately; it still counts against their limits); off: no check.")
    safety_checker: Literal["vit", "nudenet"] = Field(
        "vit", description="vit: an image classifier for transformers (ZBOT_SAFETY_MODEL, Apache-2.0); nudenet: "
        "NudeNet's detector (pip install 'zbot[nudenet]'; AGPL-3.0, see the README).")
    safety_model: str = Field(
        "Falconsai/nsfw_image_detection", description="For the vit checker: a Hugging Face model id (fetched "
        "once, like the image model; HF_ENDPOINT picks a mirror; the default falls back to its ModelScope copy), "
        "modelscope:ORG/NAME for a ModelScope id, or a local folder.")
    safety_threshold: float = Field(0.5, gt=0, le=1, description="Scores at or above this are flagged (0-1).")
    safety_device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$",
                               description="Where the vit checker runs: auto (the GPU when there is one, in a "
                               "stream of its own; else the CPU), cpu or cuda.")
    safety_nsfw_channels: Literal["post", "spoiler"] = Field(
        "post", description="In age-restricted channels flagged images are posted as they are, or as spoilers.")
    report_channel_id: int | None = Field(
        None, description="Channel where the Report button's reports go (the bot needs Send Messages there); "
        "empty: reports are kept in the database and the log only.")
    api_keys_adult: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list, description="Those of ZBOT_API_KEYS that are also given images the checker "
        "flags (other keys get an image_blocked error).")

    @field_validator("discord_token", "compile_cache", "styles_file", "default_style", "ray_address", "workers", "report_channel_id",
                     mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("api_keys")
    @classmethod
    def _long_keys(cls, keys: list[SecretStr]) -> list[SecretStr]:
        # A key's hash names its user in the database, and logs redact keys by value: short ones would
        # be guessable from the one and match ordinary words in the other.
        if any(len(key.get_secret_value()) < 16 for key in keys):
            raise ValueError("each API key must be at least 16 characters (e.g. `openssl rand -hex 24`)")
        return keys

    @field_validator("dtype")
    @classmethod
    def _no_fp16(cls, dtype: str) -> str:
        if dtype == "fp16":  # upstream issue 14: the transformer's activations overflow half precision
            raise ValueError("fp16 gives black images with Z-Image (NaN latents); use bf16 (the default on "
                             "cuda) or fp32")
        return dtype

    @model_validator(mode="after")
    def _counts(self) -> Settings:
        if self.default_count > self.max_count:
            raise ValueError(f"ZBOT_DEFAULT_COUNT ({self.default_count}) is more than ZBOT_MAX_COUNT ({self.max_count})")
        return self

    @model_validator(mode="after")
    def _adult_keys_are_keys(self) -> Settings:
        keys = {key.get_secret_value() for key in self.api_keys}
        if any(key.get_secret_value() not in keys for key in self.api_keys_adult):
            raise ValueError("every key in ZBOT_API_KEYS_ADULT must also be in ZBOT_API_KEYS")
        return self

    @field_validator("blocked_words", mode="before")
    @classmethod
    def _words(cls, value: Any) -> Any:
        return [word.casefold() for word in _split_list(value)]

    @field_validator("role_rate_limits", mode="before")
    @classmethod
    def _tiers(cls, value: Any) -> Any:
        tiers = _json_map(value)
        if not isinstance(tiers, dict):
            raise ValueError('must be a JSON object like {"123456789": "20/minute,500/day"}')
        parsed = {}
        for role, text in tiers.items():
            if isinstance(text, str):
                parsed[int(role)] = parse_windows(text)
            elif isinstance(text, tuple) and all(isinstance(w, Window) for w in text):  # already parsed
                parsed[int(role)] = text
            else:
                raise ValueError(f'each tier is text like "20/minute,500/day", not {type(text).__name__}')
        return parsed

    @field_validator("admin_ids", "guild_ids", "allowed_guild_ids", "channel_ids", "api_keys", "api_keys_adult",
                     mode="before")
    @classmethod
    def _list(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("rate_limits", "max_server_rate_limits", mode="before")
    @classmethod
    def _windows(cls, value: Any) -> Any:
        return parse_windows(value) if isinstance(value, str) else value

    @field_validator("styles", mode="before")
    @classmethod
    def _styles(cls, value: Any) -> Any:
        try:
            return parse_styles(value)
        except StyleError as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _styles_from_file(self) -> Settings:
        # Once: pydantic runs this again on each checked assignment (a server's /settings), where the
        # file's styles are in already and a server may have narrowed them (zbot.core.server_settings).
        if self.styles_file is None or self._styles_read:
            return self
        try:
            more = read_styles_file(self.styles_file)
        except StyleError as exc:
            raise ValueError(f"ZBOT_STYLES_FILE: {exc}") from None
        if twice := sorted(set(more) & set(self.styles)):
            raise ValueError(f"the style {twice[0]!r} is both in ZBOT_STYLES and in ZBOT_STYLES_FILE; keep one")
        self.styles = {**self.styles, **more}
        self._styles_read = True
        return self

    @model_validator(mode="after")
    def _default_style_is_a_style(self) -> Settings:
        if self.default_style is not None and self.default_style not in self.styles:
            raise ValueError(f"ZBOT_DEFAULT_STYLE {self.default_style!r} is not one of the styles (ZBOT_STYLES, "
                             "ZBOT_STYLES_FILE)")
        return self

    @field_validator("sizes", mode="before")
    @classmethod
    def _sizes(cls, value: Any) -> Any:
        sizes = _json_map(value)
        if not isinstance(sizes, dict) or not sizes:
            raise ValueError('must be a JSON object like {"square": "1024x1024"}')
        for name, text in sizes.items():
            if len(str(name)) > MAX_SIZE_NAME:  # else Discord refuses every command at registration
                raise ValueError(f"the size name {str(name)[:30]!r}... is {len(str(name))} characters; at most "
                                 f"{MAX_SIZE_NAME} characters")
            parse_size(str(text))
        return sizes

    @property
    def size_table(self) -> dict[str, tuple[int, int]]:
        return {name: parse_size(text) for name, text in self.sizes.items()}

    @property
    def default_size(self) -> str:
        return next(iter(self.sizes))

    @property
    def served_guild_ids(self) -> list[int]:
        """The servers the bot answers in; empty: every server."""
        return self.allowed_guild_ids or self.guild_ids


class SettingsError(Exception):
    """A bad setting, already phrased as one line that names the variable."""


def load_settings(**overrides: Any) -> Settings:
    """Read the settings, turning pydantic's report into one readable line per bad setting."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError("\n".join(_one_line(error) for error in exc.errors())) from None


def _one_line(error: Any) -> str:
    message = error["msg"].removeprefix("Value error, ")
    if not error["loc"]:  # a rule across settings: its message names them
        return f"bad settings: {message}"
    field = str(error["loc"][0])
    given = error.get("input")
    # A secret's value is never echoed, not even a part of it: the line goes to logs and terminals.
    secret = field in SECRET_FIELDS
    shown = "" if secret or isinstance(given, dict) or given is None else f" (got {str(given)[:60]!r})"
    return f"bad setting ZBOT_{field.upper()}: {message}{shown}"


# Settings whose values are secrets (SecretStr, or lists of them).
SECRET_FIELDS = frozenset(name for name, info in Settings.model_fields.items() if "SecretStr" in str(info.annotation))


def env_value(value: Any) -> str:
    """A default written the way it would be set in the environment."""
    if value is None or isinstance(value, SecretStr):
        return ""
    if isinstance(value, (list, tuple)):
        return ",".join(str(item) for item in value)
    if isinstance(value, dict):
        return json.dumps({str(k): env_value(v) for k, v in value.items()}, separators=(",", ":"))
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
