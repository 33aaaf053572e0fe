"""The README's configuration table and .env.example are generated from Settings: they must match."""

from pathlib import Path

from zbot.config import Settings
from zbot.docs import env_example, markdown_table

ROOT = Path(__file__).resolve().parent.parent


def test_readme_table_matches_the_settings_class():
    readme = (ROOT / "README.md").read_text()
    start = readme.index("-->", readme.index("<!-- settings-table")) + 3
    end = readme.index("<!-- /settings-table -->")
    assert readme[start:end].strip() == markdown_table(), "run: python -m zbot.docs, paste into README.md"


def test_env_example_matches_and_loads_as_the_defaults(tmp_path, monkeypatch):
    assert (ROOT / ".env.example").read_text() == env_example() + "\n", "run: python -m zbot.docs --env > .env.example"
    for name in list(__import__("os").environ):
        if name.startswith("ZBOT_"):
            monkeypatch.delenv(name)
    (tmp_path / ".env").write_text(env_example())
    monkeypatch.chdir(tmp_path)
    assert Settings() == Settings(_env_file=None)
