"""Styles through the core, HTTP and the engine (issue 29): the style reaches the renderer in queue order and
is kept by refining; a server's styles stay within the owner's after the owner drops one; the engine draws
a source that is no longer kept in the source's own style."""

from __future__ import annotations

import asyncio
import io
import json

from support.renderers import FakeRenderer
from test_http import KEY, serving, with_keys

from zbot.app import open_core
from zbot.config import Settings
from zbot.core.jobs import RenderSpec, Source
from zbot.core.server_settings import ServerSettings
from zbot.core.styles import Style

STYLES = {"ink": {"description": "Black ink", "template": "{prompt}, ink drawing"},
          "clay": {"template": "{prompt}, clay figures"}, "oil": {"template": "{prompt}, oil on canvas"}}


async def test_http_style_reaches_the_renderer_in_queue_order_and_variations_keep_it(settings):
    renderer = FakeRenderer()
    styled = with_keys(settings, KEY, max_pending_per_user=5, styles=Settings.model_validate({"styles": json.dumps(STYLES)}).styles)
    async with open_core(styled, [renderer]) as core, serving(core) as client:
        renderer.gate.clear()  # held: all three wait in the queue together
        tasks = []
        for body in ({"prompt": "a fox", "style": "ink"}, {"prompt": "a hen", "style": "clay"}, {"prompt": "a cat"}):
            tasks.append(asyncio.create_task(client.draw(body)))
            for _ in range(500):  # admitted in this order
                if len(await core.store.query("SELECT id FROM generations")) == len(tasks) or tasks[-1].done():
                    break
                await asyncio.sleep(0.01)
        renderer.gate.set()
        answers = await asyncio.gather(*tasks)
        varied = await client.post(f"/v1/images/{answers[0].headers['X-Zbot-Job-Id']}/variations")
        unknown = await client.draw({"prompt": "a fox", "style": "pastel"})
        await core.service.drain()
        rows = await core.store.query("SELECT prompt, style, operation FROM generations ORDER BY id")
    assert [a.status for a in answers] == [200, 200, 200] and varied.status == 200
    # First come, first served: no reordering to batch styles.
    assert [(spec.prompt, spec.style) for spec in renderer.specs] == [
        ("a fox", "ink"), ("a hen", "clay"), ("a cat", None), ("a fox", "ink")]
    assert [tuple(row) for row in rows] == [("a fox", "ink", "draw"), ("a hen", "clay", "draw"),
                                            ("a cat", None, "draw"), ("a fox", "ink", "vary")]
    assert unknown.status == 422
    assert "There is no style 'pastel' here; choose one of: ink, clay, oil." in (await unknown.json())["error"]


async def test_a_servers_styles_stay_within_the_owners_after_the_owner_drops_one(settings, store):
    owner = settings.model_copy(update={"styles": Settings.model_validate({"styles": json.dumps(STYLES)}).styles})
    servers = ServerSettings(owner, store)
    await servers.set(1, "styles", "ink,clay", actor_id=7, owner=False)
    await servers.set(1, "default_style", "clay", actor_id=7, owner=False)
    await servers.set(1, "max_count", "2", actor_id=7, owner=False)  # a checked assignment after the styles
    assert list(servers.effective(1).styles) == ["ink", "clay"] and servers.effective(1).default_style == "clay"
    # The owner takes clay out: ink still applies (not the owner's ink and oil), the default goes, both held.
    fewer = settings.model_copy(update={"styles": {name: owner.styles[name] for name in ("ink", "oil")}})
    again = ServerSettings(fewer, store)
    await again.load()
    here = again.effective(1)
    assert list(here.styles) == ["ink"] and here.default_style is None and here.max_count == 2
    assert again.held(1) == {"default_style": "clay", "styles": "ink,clay"}


def test_a_source_drawn_again_is_drawn_in_its_own_style(tiny_model):
    from zbot.engine.engine import Engine

    styles = {"ink": Style("ink", template="{prompt}, ink drawing"), "clay": Style("clay", template="{prompt}, clay")}
    engine = Engine(str(tiny_model), device="cpu", compile="off", styles=styles)
    engine.load()
    parent = RenderSpec(1, "a fox", 5, 64, 64, 2, style="ink")
    kept = io.BytesIO()
    engine.render(parent, lambda *_: None).save(kept, format="PNG")

    def vary(source: Source) -> bytes:
        spec = RenderSpec(2, "a fox", 9, 64, 64, 2, source=source, strength=0.6, style="clay")
        return engine.render(spec, lambda *_: None).tobytes()

    assert vary(Source(redraw=parent)) == vary(Source(png=kept.getvalue()))


async def test_a_server_setting_changes_when_the_styles_come_from_a_file(settings, store, tmp_path):
    styles_file = tmp_path / "styles.toml"
    styles_file.write_text('[ink]\ntemplate = "{prompt}, ink drawing"\n', encoding="utf-8")
    owner = Settings(_env_file=None, database=settings.database, styles_file=styles_file,
                     styles='{"clay": {"template": "{prompt}, clay"}}')
    servers = ServerSettings(owner, store)
    await servers.set(1, "styles", "ink", actor_id=7, owner=False)
    # A checked assignment after it: the file's styles were merged again ("both in ZBOT_STYLES and the file").
    await servers.set(1, "max_count", "2", actor_id=7, owner=False)
    assert list(servers.effective(1).styles) == ["ink"] and servers.effective(1).max_count == 2
