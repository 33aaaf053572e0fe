"""The configuration table (docs/configuration.md) and .env.example are generated from Settings: they must match."""

import io
import re
from pathlib import Path

from dotenv import dotenv_values

from zbot.cli.docs import env_example, markdown_table, settings_rows
from zbot.config import Settings

ROOT = Path(__file__).resolve().parent.parent


def test_configuration_table_matches_the_settings_class():
    page = (ROOT / "docs" / "configuration.md").read_text()
    start = page.index("-->", page.index("<!-- settings-table")) + 3
    end = page.index("<!-- /settings-table -->")
    assert page[start:end].strip() == markdown_table(), (
        "run: python -m zbot.cli.docs, paste between the settings-table markers in docs/configuration.md")


def test_env_example_matches_and_pins_no_default(tmp_path, monkeypatch):
    text = (ROOT / ".env.example").read_text()
    assert text == env_example() + "\n", "run: python -m zbot.cli.docs --env > .env.example"
    for name in list(__import__("os").environ):
        if name.startswith("ZBOT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    # Copied as it is, it sets only the (empty) token: every other setting follows zbot's default, also
    # when a later version changes one. The token comes first, the one line everybody edits.
    assert dotenv_values(stream=io.StringIO(text)) == {"ZBOT_DISCORD_TOKEN": ""}
    assert text.split("\n\n")[1].splitlines()[-1] == "ZBOT_DISCORD_TOKEN="
    # Every setting is there once, commented out at its default: uncommented, they load as the defaults.
    shown = re.findall(r"^# (ZBOT_\w+)=", text, re.M)
    assert sorted(shown + ["ZBOT_DISCORD_TOKEN"]) == sorted(name for name, _, _ in settings_rows())
    (tmp_path / ".env").write_text(re.sub(r"^# (ZBOT_\w+=)", r"\1", text, flags=re.M))
    assert Settings() == Settings(_env_file=None)
