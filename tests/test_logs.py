"""Logging: text or JSON lines, and the token and API keys never in them."""

from __future__ import annotations

import io
import json
import logging
import warnings

import pytest
from pydantic import SecretStr

from zbot.logs import REDACTED, JsonFormatter, Redact, secret_values, setup_logging

TOKEN = "MTEwMDAwMDAwMDAwMDAwMDAx.Gx1y2z.abcdefghijklmnopqrstuvwxyz012345"
KEYS = ["team-key-0123456789", "team-key-0123456789-longer"]


@pytest.fixture
def captured():
    """setup_logging's handler, writing into a buffer; the root logger put back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()

    def setup(fmt: str, secrets=(TOKEN, *KEYS), level: str = "INFO") -> io.StringIO:
        handler = setup_logging(level, fmt, secrets)
        handler.setStream(stream)
        return stream

    yield setup
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)


def test_secrets_are_every_secret_setting(settings):
    s = settings.model_copy(update={"discord_token": SecretStr(TOKEN),
                                    "api_keys": [SecretStr(k) for k in KEYS]})
    assert sorted(secret_values(s)) == sorted([TOKEN, *KEYS])
    assert secret_values(settings) == []


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_no_secret_survives_in_message_arguments_extras_or_traceback(captured, fmt):
    stream = captured(fmt)
    log = logging.getLogger("zbot.test")
    log.info("logging in with %s", TOKEN)
    log.warning("headers: %r", {"Authorization": f"Bearer {KEYS[1]}"}, extra={"key": KEYS[0]})
    try:
        raise RuntimeError(f"Discord said no to {TOKEN}")
    except RuntimeError:
        log.exception("login failed")
    logging.getLogger("aiohttp.client").error("a library logs %s", KEYS[0])
    text = stream.getvalue()
    assert TOKEN not in text and not any(key in text for key in KEYS)
    assert "team-key" not in text  # the longer key was redacted whole, not as the shorter one plus a tail
    assert text.count(REDACTED) >= 4
    assert "RuntimeError" in text and "login failed" in text


def test_text_lines_are_as_before(captured):
    stream = captured("text")
    logging.getLogger("zbot.core.service").info("job %s done", 12)
    line = stream.getvalue().strip()
    assert line.endswith(" INFO zbot.core.service: job 12 done") and line[:4].isdigit()


def test_json_is_one_object_a_line_with_the_extra_fields(captured):
    stream = captured("json")
    log = logging.getLogger("zbot.core.service")
    log.info("job %s (http, user %s) done: wait %.2f s, render %.2f s", 12, -345, 0.2, 0.91,
             extra={"job_id": 12, "user_id": -345, "source": "http", "wait_s": 0.2, "render_s": 0.91})
    try:
        raise ZeroDivisionError("division by zero")
    except ZeroDivisionError:
        log.exception("boom")
    first, second = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert first["message"] == "job 12 (http, user -345) done: wait 0.20 s, render 0.91 s"
    assert (first["level"], first["logger"], first["job_id"], first["user_id"], first["render_s"]) == \
        ("INFO", "zbot.core.service", 12, -345, 0.91)
    assert first["time"].endswith("+00:00")
    assert second["level"] == "ERROR" and "ZeroDivisionError" in second["exc"]


def test_json_takes_python_warnings_too_and_levels_filter(captured):
    stream = captured("json", level="WARNING")
    logging.getLogger("zbot").info("not shown")
    warnings.warn("something is deprecated", UserWarning, stacklevel=1)
    [entry] = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert entry["logger"] == "py.warnings" and "something is deprecated" in entry["message"]


def test_calling_setup_again_replaces_its_handler_and_keeps_others(captured):
    root = logging.getLogger()
    foreign = logging.NullHandler()
    root.addHandler(foreign)
    captured("text")
    captured("json")
    ours = [h for h in root.handlers if getattr(h, "_zbot", False)]
    assert len(ours) == 1 and isinstance(ours[0].formatter, JsonFormatter) and foreign in root.handlers
    root.removeHandler(foreign)


def test_the_discord_voice_warning_is_dropped(captured):
    stream = captured("text")
    logging.getLogger("discord.client").warning("PyNaCl is not installed, voice will NOT be supported")
    logging.getLogger("discord.client").warning("something else")
    assert "voice" not in stream.getvalue() and "something else" in stream.getvalue()


def test_no_secrets_means_records_pass_untouched():
    record = logging.makeLogRecord({"msg": "x %s", "args": ("y",)})
    assert Redact([]).filter(record) and record.args == ("y",)
