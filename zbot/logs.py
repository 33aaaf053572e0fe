"""Logging: text lines for people or one JSON object a line for log collectors, and secrets (the Discord
token, API keys) replaced by "[redacted]" wherever they would appear: messages, arguments, tracebacks."""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pydantic import SecretStr

from zbot.config import Settings

REDACTED = "[redacted]"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Attributes every LogRecord has; anything else on a record came from `extra=` and goes into the JSON.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def secret_values(settings: Settings) -> list[str]:
    """Every SecretStr in the settings (the token, each API key), as plain strings."""
    found: list[str] = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(item, SecretStr) and item.get_secret_value():
                found.append(item.get_secret_value())
    return found


class Redact(logging.Filter):
    """Replaces each secret in a record's message, arguments, `extra=` values and traceback.
    Installed on the handler, so records from every library pass through it."""

    def __init__(self, secrets: Iterable[str]):
        super().__init__()
        # Longest first, so a secret that contains another is replaced whole.
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        record.msg = self.scrub(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = self.scrub(record.stack_info)
        for key, value in vars(record).items():
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, self.scrub(value))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, any `extra=` fields, and
    the traceback as `exc` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False, default=str)


def setup_logging(level: str = "INFO", fmt: str = "text", secrets: Iterable[str] = ()) -> logging.Handler:
    """Send every log record to stderr as text or JSON, secrets redacted. Calling it again replaces the
    handler it installed before (and leaves others, such as pytest's, alone)."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_zbot", False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler()
    handler._zbot = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(Redact(secrets))
    handler.addFilter(_QuietModelScope())
    root.addHandler(handler)
    root.setLevel(level)
    # Python's warnings as log records too, so a JSON log stays all JSON.
    logging.captureWarnings(fmt == "json")
    quiet_libraries()
    return handler


def quiet_libraries() -> None:
    """What other libraries say that isn't news: discord.py's voice warning, ModelScope's retry
    warnings (zbot says in one line what failed). Imports nothing: `zbot settings` stays fast."""
    voice = logging.getLogger("discord.client")
    if not any(getattr(f, "_zbot", False) for f in voice.filters):
        voice.addFilter(_NoVoiceWarning())
    # modelscope_hub puts a stderr handler of its own on its logger unless one is there: ours makes its
    # records come to zbot's handler instead, where _QuietModelScope keeps only its errors.
    hub = logging.getLogger("modelscope_hub")
    if not hub.handlers:
        hub.addHandler(logging.NullHandler())
    # The older modelscope package logs everything to one logger with a handler of its own, always; and
    # either package may have been imported before this ran.
    old = logging.getLogger("modelscope")
    if not any(getattr(f, "_zbot", False) for f in old.filters):
        old.addFilter(_QuietModelScope())
    for handler in hub.handlers:
        if not any(getattr(f, "_zbot", False) for f in handler.filters):
            handler.addFilter(_QuietModelScope())


def quiet_model_libraries() -> None:
    """diffusers' and transformers' loading bars and advice (our own log line says enough). Called where
    they are imported anyway (the engine's and the checker's load): importing them takes seconds."""
    import diffusers
    import transformers

    for library in (diffusers, transformers):
        library.utils.logging.set_verbosity_error()
        library.utils.logging.disable_progress_bar()


class _QuietModelScope(logging.Filter):
    """ModelScope's records below ERROR (a retry, a cache notice) are not zbot's to show."""

    _zbot = True

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or not record.name.startswith("modelscope")


class _NoVoiceWarning(logging.Filter):
    """discord.py warns at every start that PyNaCl is missing; zbot never joins voice."""

    _zbot = True

    def filter(self, record: logging.LogRecord) -> bool:
        return "voice will NOT" not in record.getMessage()
