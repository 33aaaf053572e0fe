"""Styles as settings (ZBOT_STYLES, ZBOT_STYLES_FILE) refused one line each; `zbot styles` and `zbot download`
on styles' adapters (hubs faked: no network)."""

from __future__ import annotations

import importlib
import json

import pytest
from test_styles_engine import make_lora

from zbot.cli.main import main
from zbot.config import SettingsError, load_settings
from zbot.core.styles import Style


@pytest.mark.parametrize(("styles", "said"), [
    ('{"ink": {"template": "watercolor"}}', "the template must contain {prompt} exactly once"),
    ('{"ink": {"template": "{prompt} and {prompt}"}}', "the template must contain {prompt} exactly once"),
    ('{"%s": {"template": "{prompt}"}}' % ("x" * 101), "a name is 1 to 100 characters"),
    ('{"ink": {"lora": "ink.ckpt"}}', "is not a .safetensors file"),
    ('{"ink": {"lora": "hf:just-a-name"}}', "is not hf:ORG/NAME"),
    ('{"ink": {"lora": "ink.safetensors", "scale": 9}}', "scale is a number from -4 to 4"),
    ('{"ink": {"lora": "ink.safetensors", "weight": 1}}', "unknown field 'weight'"),
    ('{"ink": {}}', "give it a template, a lora, or both"),
    ('{"ink": ', "not valid JSON"),
])
def test_a_bad_style_is_one_line_naming_the_setting(settings, monkeypatch, styles, said):
    monkeypatch.setenv("ZBOT_STYLES", styles)
    with pytest.raises(SettingsError) as refused:
        load_settings()
    line = str(refused.value)
    assert "\n" not in line and line.startswith("bad setting ZBOT_STYLES: ") and said in line


def test_a_styles_file_in_toml_adds_to_the_environment_s_and_a_name_in_both_is_refused(settings, monkeypatch,
                                                                                        tmp_path):
    monkeypatch.setenv("ZBOT_STYLES", '{"ink": {"template": "{prompt}, ink drawing"}}')
    path = tmp_path / "styles.toml"
    path.write_text('[clay]\ndescription = "Clay figures"\nlora = "hf:someone/clay-lora"\nscale = 0.7\n')
    monkeypatch.setenv("ZBOT_STYLES_FILE", str(path))
    styles = load_settings().styles
    assert styles["clay"] == Style("clay", "Clay figures", None, "hf:someone/clay-lora", 0.7)
    assert styles["ink"].prompt("a fox") == "a fox, ink drawing"
    path.write_text('[ink]\ntemplate = "{prompt}"\n')
    with pytest.raises(SettingsError, match="both in ZBOT_STYLES and in ZBOT_STYLES_FILE"):
        load_settings()
    path.write_text('[ink\n')
    with pytest.raises(SettingsError, match="ZBOT_STYLES_FILE: .* is not valid TOML") as refused:
        load_settings()
    assert "\n" not in str(refused.value)


def test_zbot_styles_checks_each_adapter_against_the_model(settings, monkeypatch, tiny_model, tmp_path, capsys):
    good = make_lora(tiny_model, tmp_path / "good.safetensors", rank=4)
    other = make_lora(tiny_model, tmp_path / "other.safetensors", widen=8)
    monkeypatch.setenv("ZBOT_MODEL", str(tiny_model))
    monkeypatch.setenv("ZBOT_STYLES", json.dumps({"good": {"lora": str(good), "description": "Good"},
                                                  "other": {"lora": str(other)},
                                                  "plain": {"template": "{prompt}, flat"}}))
    assert main(["styles"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("ok  good: Good; LoRA") and "rank 4" in out[0]
    assert out[1].startswith("BAD other:") and "is for another model" in out[1]
    assert out[2].startswith("ok  plain:")


def test_zbot_download_fetches_a_styles_lora_from_its_hub_then_it_loads_offline(settings, monkeypatch, tiny_model,
                                                                                tmp_path, capsys):
    cache = tmp_path / "hub-cache"
    calls = []

    def hub(name):
        def snapshot_download(repo, allow_patterns=None, local_files_only=False, **kwargs):
            calls.append((name, repo, local_files_only))
            folder = cache / name / repo
            if not (folder / "style.safetensors").is_file():
                if local_files_only:
                    raise FileNotFoundError(repo)  # what "not in the cache" raises, more or less
                folder.mkdir(parents=True)
                make_lora(tiny_model, folder / "style.safetensors")
            return str(folder)
        return snapshot_download

    monkeypatch.setattr(importlib.import_module("huggingface_hub"), "snapshot_download", hub("hf"))
    monkeypatch.setattr(importlib.import_module("modelscope.hub.snapshot_download"), "snapshot_download",
                        hub("modelscope"))
    monkeypatch.setenv("ZBOT_MODEL", str(tiny_model))
    monkeypatch.setenv("ZBOT_SAFETY", "off")
    monkeypatch.setenv("ZBOT_STYLES", '{"a": {"lora": "hf:someone/ink"}, "b": {"lora": "modelscope:someone/clay"}}')
    assert main(["styles"]) == 1  # not downloaded yet: said, nothing fetched
    assert "is not downloaded" in capsys.readouterr().out and all(offline for *_, offline in calls)
    calls.clear()
    assert main(["download"]) == 0
    assert [call[:2] for call in calls] == [("hf", "someone/ink"), ("modelscope", "someone/clay")]
    calls.clear()
    assert main(["styles"]) == 0 and all(offline for *_, offline in calls)
