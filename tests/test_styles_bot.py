"""Styles end to end through the fake Discord and the tiny model (issue 29): a style chosen from /draw's
autocomplete, rerolled and varied with the style kept across a restart, a server limited to two styles
with its own default, /stats by style."""

from __future__ import annotations

import json

from support.botkit import bot_settings, control, finished, image_of, running_bot

SIZES = {"square": "256x256", "small": "64x64"}
STYLES = {"watercolor": {"description": "Soft watercolor", "template": "{prompt}, watercolor on rough paper"},
          "ink": {"description": "Black ink", "template": "{prompt}, ink drawing"},
          "clay": {"description": "Clay figures", "template": "{prompt}, clay figures"}}


def said(callback) -> str:
    return callback.data.get("content", "")


async def setting(fake, name: str, value: str, user_id: int) -> str:
    interaction = await fake.slash("settings", {"name": name, "value": value}, subcommand="set", user_id=user_id)
    return said(await interaction.wait_response())


async def row_of(run, job_id: int) -> dict:
    [row] = await run.core.store.query("SELECT * FROM generations WHERE id = ?", (job_id,))
    return dict(row)


async def test_a_style_from_autocomplete_is_kept_by_reroll_and_vary_across_a_restart(fake, tmp_path, tiny_model):
    mod = fake.add_member(name="mod", roles=(fake.add_role("Mods", permissions=1 << 5),))  # Manage Server
    settings = bot_settings(tmp_path, tiny_model, sizes=SIZES, styles=json.dumps(STYLES))
    async with running_bot(fake, settings) as run:
        limited = await setting(fake, "styles", "watercolor,ink", mod)
        unknown = await setting(fake, "styles", "watercolor,oil", mod)
        not_offered = await setting(fake, "default_style", "clay", mod)
        typed = await fake.autocomplete("draw", {"prompt": "a fox", "style": "wat"}, focused="style")
        offered = await fake.autocomplete("draw", {"prompt": "a fox", "style": ""}, focused="style")
        clay = await (await fake.slash("draw", {"prompt": "a fox", "size": "small", "style": "clay"})).wait_response()
        parent = await (await fake.slash("draw", {"prompt": "a fox", "size": "small", "seed": 11,
                                                  "style": "watercolor"})).wait_original(finished, timeout=60)
        # The template is applied where the prompt is encoded: the same pixels as it written out in full.
        spelled = await (await fake.slash("draw", {"prompt": "a fox, watercolor on rough paper", "size": "small",
                                                   "seed": 11})).wait_original(finished, timeout=60)
        await run.settle()
        first = await row_of(run, 1)
    async with running_bot(fake, settings) as run:  # a restart in between: the style comes from the row
        rerolled = await (await fake.click(parent, control(parent, "reroll"))).wait_original(finished, timeout=60)
        varied = await (await fake.click(parent, control(parent, "vary"))).wait_original(finished, timeout=60)
        defaulted = await setting(fake, "default_style", "ink", mod)
        plain = await (await fake.slash("draw", {"prompt": "a hen", "size": "small"})).wait_original(finished,
                                                                                                      timeout=60)
        await run.settle()
        rows = [await row_of(run, job_id) for job_id in (3, 4, 5)]
        [stats] = await (await fake.slash("stats", user_id=fake.owner_id)).wait_followups(1)
    assert "is now" in limited
    assert "The bot has no style 'oil'; a server may offer these: watercolor, ink, clay." in unknown
    assert "The default style must be one this server offers: watercolor, ink." in not_offered
    assert typed.choices == [{"name": "watercolor · Soft watercolor", "value": "watercolor"}]
    assert [choice["value"] for choice in offered.choices] == ["watercolor", "ink"]  # not clay: not offered here
    assert "There is no style 'clay' here; choose one of: watercolor, ink." in said(clay)
    assert first["style"] == "watercolor" and first["prompt"] == "a fox"  # stored as the user typed it
    assert "style watercolor" in parent.content and "style" not in spelled.content
    assert image_of(parent).tobytes() == image_of(spelled).tobytes()
    assert [(row["operation"], row["style"]) for row in rows] == [("reroll", "watercolor"), ("vary", "watercolor"),
                                                                  ("draw", "ink")]
    assert "style watercolor" in rerolled.content and "style watercolor" in varied.content
    assert "is now" in defaulted and "style ink" in plain.content
    fields = {field["name"]: field["value"] for embed in stats.embeds for field in embed.get("fields", [])}
    assert fields["By style"] == "watercolor: 3\nink: 1"
