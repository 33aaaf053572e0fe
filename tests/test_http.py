"""The HTTP server as the team's tools and Prometheus see it: a real socket on 127.0.0.1, aiohttp's client."""

from __future__ import annotations

import asyncio
import contextlib
import io
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from support.botkit import bot_settings, finished, running_bot
from support.fake_discord import FakeDiscord
from support.renderers import FakeRenderer

from zbot.app import Core, open_core
from zbot.config import Settings, parse_windows
from zbot.http.api import bound_port, build_app, key_user_id, start_http
from zbot.metrics import Metrics
from zbot.run import bot_health

KEY, OTHER_KEY = "k-team-tools-0123456789", "k-other-tool-9876543210"


def with_keys(settings: Settings, *keys: str, **changes: Any) -> Settings:
    if "rate_limits" in changes:
        changes["rate_limits"] = parse_windows(changes["rate_limits"])
    return settings.model_copy(update={"api_keys": [SecretStr(k) for k in keys], **changes})


def metrics_for(core: Core) -> Metrics:
    """The core's Metrics once open_core builds one; until then one of our own, reporting to the
    Service if it takes reports."""
    existing = getattr(core, "metrics", None)
    if existing is not None:
        return existing
    metrics = Metrics(lambda: core.executor.depth)
    if hasattr(core.service, "events"):
        core.service.events = metrics
    return metrics


@dataclass
class Client:
    session: aiohttp.ClientSession
    base: str

    async def draw(self, body: Any = None, key: str | None = KEY, **kwargs: Any) -> aiohttp.ClientResponse:
        headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
        response = await self.session.post(f"{self.base}/v1/images", json=body, headers=headers, **kwargs)
        await response.read()
        return response

    async def post(self, path: str, body: Any = None, key: str | None = KEY) -> aiohttp.ClientResponse:
        headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
        response = await self.session.post(self.base + path, json=body, headers=headers)
        await response.read()
        return response

    async def get(self, path: str) -> aiohttp.ClientResponse:
        response = await self.session.get(self.base + path)
        await response.read()
        return response


@contextlib.asynccontextmanager
async def serving(core: Core, health=None, metrics: Metrics | None = None) -> AsyncIterator[Client]:
    app = build_app(core.service, health=health or (lambda: {"model": True, "gateway": True}),
                    metrics=metrics or metrics_for(core))
    runner = await start_http(app, "127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession() as session:
            yield Client(session, f"http://127.0.0.1:{bound_port(runner)}")
    finally:
        await runner.cleanup()


async def until(condition, timeout: float = 20) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(b"\x89PNG")
    return Image.open(io.BytesIO(data)).size


# -- /healthz ---------------------------------------------------------------------------------------

class SlowLoad(FakeRenderer):
    def __init__(self):
        super().__init__()
        self.may_load = threading.Event()

    def load(self):
        self.may_load.wait(10)
        super().load()


class FakeGatewayClient:
    """What bot_health reads from discord.py's client."""

    def __init__(self):
        self.ready, self.closed, self.ws = False, False, None

    def is_ready(self):
        return self.ready

    def is_closed(self):
        return self.closed


class FakeSocket:
    open = True


async def test_healthz_is_ready_only_once_the_model_is_loaded_and_the_gateway_connected(settings):
    renderer, bot = SlowLoad(), FakeGatewayClient()
    async with open_core(settings, [renderer]) as core, serving(core, bot_health(core, bot)) as client:
        kept = {"bytes": 0, "budget_bytes": 20 * 10**9}  # ZBOT_KEEP_IMAGES_MAX_GB's default, informing only
        response = await client.get("/healthz")
        assert response.status == 503
        assert await response.json() == {"ready": False, "model": False, "gateway": False, "accepting": True,
                                          "database": True, "safety": "off", "kept_images": kept,
                                          "missing": ["model", "gateway"]}

        renderer.may_load.set()
        await core.executor.wait_ready()
        response = await client.get("/healthz")
        assert response.status == 503 and (await response.json())["missing"] == ["gateway"]

        bot.ready, bot.ws = True, FakeSocket()
        response = await client.get("/healthz")
        assert response.status == 200
        assert await response.json() == {"ready": True, "model": True, "gateway": True, "accepting": True,
                                          "database": True, "safety": "off", "kept_images": kept, "missing": []}

        bot.ws.open = False  # dropped; discord.py is reconnecting
        response = await client.get("/healthz")
        assert response.status == 503 and (await response.json())["missing"] == ["gateway"]

        bot.ws.open = True
        core.service.close()  # shutting down: a load balancer should send requests elsewhere
        response = await client.get("/healthz")
        assert response.status == 503 and (await response.json())["missing"] == ["accepting"]


class BrokenModel(FakeRenderer):
    def load(self):
        raise RuntimeError("no weights")


async def test_healthz_reports_a_model_that_failed_to_load(settings):
    bot = FakeGatewayClient()
    bot.ready, bot.ws = True, FakeSocket()
    async with open_core(settings, [BrokenModel()]) as core, serving(core, bot_health(core, bot)) as client:
        with pytest.raises(RuntimeError):
            await core.executor.wait_ready()
        response = await client.get("/healthz")
    assert response.status == 503 and (await response.json())["missing"] == ["model"]


# -- POST /v1/images ------------------------------------------------------------------------------

async def test_an_image_comes_back_as_png_with_its_seed_and_job_in_headers(settings):
    async with open_core(with_keys(settings, KEY), [FakeRenderer()]) as core, serving(core) as client:
        response = await client.draw({"prompt": "  a red fox  ", "size": "wide", "seed": 42})
        again = await client.draw({"prompt": "a red fox", "size": "wide", "seed": 42})
        random = await client.draw({"prompt": "a red fox", "size": None, "seed": None})
        as_float = await client.draw({"prompt": "a red fox", "size": "wide", "seed": 42.0})
        await core.service.drain()
        rows = await core.store.query("SELECT id, source, user_id, prompt, seed, size, status "
                                      "FROM generations")

    assert response.status == 200 and response.content_type == "image/png"
    body = await response.read()
    assert png_size(body) == (96, 64) and body == await again.read()  # same prompt, size and seed
    assert await as_float.read() == body  # 42.0 is the integer 42 in JSON
    assert response.headers["X-Zbot-Seed"] == "42" and response.headers["X-Zbot-Size"] == "96x64"
    assert float(response.headers["X-Zbot-Render-Seconds"]) >= 0
    assert float(response.headers["X-Zbot-Wait-Seconds"]) >= 0
    assert png_size(await random.read()) == (64, 64)  # the first configured size is the default
    first = rows[0]
    assert int(response.headers["X-Zbot-Job-Id"]) == first["id"]
    assert tuple(first)[1:] == ("http", key_user_id(KEY), "a red fox", 42, "wide", "posted")
    assert int(random.headers["X-Zbot-Seed"]) == rows[2]["seed"] and rows[3]["seed"] == 42


def test_a_key_stands_for_a_stable_negative_user_that_reveals_nothing_of_it():
    ids = {key_user_id(KEY), key_user_id(OTHER_KEY)}
    assert len(ids) == 2 and all(-(2**56) <= i < 0 for i in ids)
    assert key_user_id(KEY) == key_user_id(KEY)
    assert str(key_user_id(KEY)) not in KEY


@pytest.mark.parametrize("headers, message", [
    ({}, "Authorization: Bearer KEY"),
    ({"Authorization": KEY}, "Authorization: Bearer KEY"),
    ({"Authorization": "Basic " + KEY}, "Authorization: Bearer KEY"),
    ({"Authorization": "Bearer "}, "Authorization: Bearer KEY"),
    ({"Authorization": "Bearer " + KEY[:-1]}, "not valid"),
    ({"Authorization": "Bearer " + KEY + "x"}, "not valid"),
    ({"Authorization": "Bearer " + KEY.upper()}, "not valid"),
])
async def test_no_valid_key_is_401_and_nothing_is_drawn_or_recorded(settings, headers, message):
    renderer = FakeRenderer()
    async with open_core(with_keys(settings, KEY, OTHER_KEY), [renderer]) as core, serving(core) as client:
        response = await client.session.post(f"{client.base}/v1/images", json={"prompt": "a fox"},
                                             headers=headers)
        rows = await core.store.query("SELECT count(*) FROM generations")
    assert response.status == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")
    body = await response.json()
    assert message in body["error"] and body["code"] == "unauthorized" and KEY not in body["error"]
    assert rows[0][0] == 0 and renderer.ran == []


async def test_without_configured_keys_every_request_is_401_saying_so(settings):
    async with open_core(settings, [FakeRenderer()]) as core, serving(core) as client:
        response = await client.draw({"prompt": "a fox"}, key="anything")
    assert response.status == 401 and "ZBOT_API_KEYS" in (await response.json())["error"]


@pytest.mark.parametrize("body, status, message", [
    (b"not json", 400, "not valid JSON"),
    ({"size": "wide"}, 422, "prompt: Field required"),
    ({"prompt": 7}, 422, "prompt: Input should be a valid string"),
    ({"prompt": "a fox", "seed": "42"}, 422, "seed: Input should be a valid integer"),
    ({"prompt": "a fox", "seed": True}, 422, "seed: Input should be a valid integer"),
    ({"prompt": "a fox", "seed": 1.5}, 422, "seed: Input should be a valid integer"),
    ({"prompt": "a fox", "steps": 50}, 422, "steps: unknown field (allowed: prompt, size, seed, count, style, image, strength)"),
    (["a fox"], 422, "must be a JSON object"),
    ({"prompt": "   "}, 422, "the prompt is empty"),
    ({"prompt": "a fox\x00"}, 422, "prompt: contains control characters"),
    ({"prompt": "a fox", "size": None, "seed": 3.5}, 422, "seed: Input should be a valid integer"),
    ({"prompt": "x" * 1001}, 422, "the most allowed is 1000"),
    ({"prompt": "a fox", "seed": -1}, 422, "from 0 to 4294967295"),
    ({"prompt": "a fox", "seed": 2**32}, 422, "from 0 to 4294967295"),
    ({"prompt": "a fox", "size": "huge"}, 422, "choose one of: square, wide"),
    ({"prompt": "a fox", "size": ""}, 422, "size: give a named size, or null"),
    ({"prompt": "a fox"}, 413, "Request Entity Too Large"),  # with 70 kB of padding, below
])
async def test_bad_input_is_a_clear_4xx_in_json(settings, body, status, message):
    renderer = FakeRenderer()
    async with open_core(with_keys(settings, KEY), [renderer]) as core, serving(core) as client:
        if status == 413:
            body = {**body, "pad": "x" * 70_000}
        if isinstance(body, bytes):
            response = await client.session.post(f"{client.base}/v1/images", data=body, headers={
                "Authorization": f"Bearer {KEY}", "Content-Type": "application/json"})
        else:
            response = await client.draw(body)
        answer = await response.json()
    assert response.status == status, answer
    assert message in answer["error"] and answer["code"]
    assert renderer.ran == []


async def test_a_body_that_is_not_json_by_its_content_type_is_415(settings):
    async with open_core(with_keys(settings, KEY), [FakeRenderer()]) as core, serving(core) as client:
        response = await client.session.post(f"{client.base}/v1/images", data="prompt=a fox",
                                             headers={"Authorization": f"Bearer {KEY}"})
    assert response.status == 415 and "application/json" in (await response.json())["error"]


async def test_a_blocked_word_is_refused_with_the_services_own_sentence(settings):
    s = with_keys(settings, KEY, blocked_words=["gore"])
    async with open_core(s, [FakeRenderer()]) as core, serving(core) as client:
        response = await client.draw({"prompt": "Gore everywhere"})
    assert response.status == 422 and "blocked word" in (await response.json())["error"]


async def test_each_key_is_rate_limited_like_one_discord_user(settings):
    s = with_keys(settings, KEY, OTHER_KEY, rate_limits="2/minute")
    async with open_core(s, [FakeRenderer()]) as core, serving(core) as client:
        first = [await client.draw({"prompt": f"fox {i}"}) for i in range(2)]
        limited = await client.draw({"prompt": "fox 3"})
        other = await client.draw({"prompt": "fox 4"}, key=OTHER_KEY)
    assert [r.status for r in first] == [200, 200] and other.status == 200
    assert limited.status == 429
    answer = await limited.json()
    assert answer["code"] == "rate_limited" and "2 images per minute" in answer["error"]
    retry_after = int(limited.headers["Retry-After"])
    assert 1 <= retry_after <= 60 and answer["retry_after"] == retry_after


async def test_too_many_unfinished_images_is_429_and_a_full_queue_503(settings):
    renderer = FakeRenderer()
    renderer.gate.clear()
    s = with_keys(settings, KEY, OTHER_KEY, max_pending_per_user=1, queue_size=1)
    async with open_core(s, [renderer]) as core, serving(core) as client:
        waiting = asyncio.create_task(client.draw({"prompt": "a slow fox"}))
        await until(lambda: core.executor.depth == 1)
        pending = await client.draw({"prompt": "another fox"})
        full = await client.draw({"prompt": "a fox from elsewhere"}, key=OTHER_KEY)
        renderer.gate.set()
        assert (await waiting).status == 200
    assert pending.status == 429 and (await pending.json())["code"] == "too_many_pending"
    assert full.status == 503 and (await full.json())["code"] == "queue_full"
    assert int(full.headers["Retry-After"]) >= 1


async def test_a_failed_render_is_500_with_its_reason_and_no_traceback(settings):
    async with open_core(with_keys(settings, KEY), [FakeRenderer(fail_prompts=("bad",))]) as core, \
            serving(core) as client:
        response = await client.draw({"prompt": "bad"})
        answer = await response.json()
    assert response.status == 500 and answer["code"] == "render_failed"
    assert "renderer failed (RuntimeError)" in answer["error"] and "Traceback" not in answer["error"]


async def test_unknown_paths_and_methods_answer_in_json(settings):
    async with open_core(settings, [FakeRenderer()]) as core, serving(core) as client:
        missing = await client.get("/v2/images")
        wrong = await client.get("/v1/images")
    assert missing.status == 404 and (await missing.json())["code"] == "not_found"
    assert wrong.status == 405 and wrong.headers["Allow"] == "POST" and (await wrong.json())["error"]


# -- /metrics ---------------------------------------------------------------------------------------

def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def test_metrics_after_renders_carry_the_counters(settings):
    s = with_keys(settings, KEY, rate_limits="2/minute")
    async with open_core(s, [FakeRenderer(fail_prompts=("bad",))]) as core, serving(core) as client:
        before = samples(await (await client.get("/metrics")).text())
        assert before[("zbot_jobs_total", (("outcome", "done"),))] == 0
        assert (await client.draw({"prompt": "a fox"})).status == 200
        assert (await client.draw({"prompt": "bad"})).status == 500  # a failed render doesn't count
        assert (await client.draw({"prompt": "a fox"})).status == 200
        assert (await client.draw({"prompt": "a fox"})).status == 429
        assert (await client.draw({"prompt": "a fox", "size": "huge"})).status == 422
        await core.service.drain()
        response = await client.get("/metrics")
        text = await response.text()
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    got = samples(text)
    assert got[("zbot_jobs_total", (("outcome", "done"),))] == 2
    assert got[("zbot_jobs_total", (("outcome", "failed"),))] == 1
    assert got[("zbot_jobs_total", (("outcome", "rejected"),))] == 2
    assert got[("zbot_refusals_total", (("reason", "rate_limited"),))] == 1
    assert got[("zbot_refusals_total", (("reason", "bad_input"),))] == 1
    assert got[("zbot_refusals_total", (("reason", "queue_full"),))] == 0
    assert got[("zbot_render_seconds_count", ())] == 2 and got[("zbot_wait_seconds_count", ())] == 2
    assert got[("zbot_queue_depth", ())] == 0


# -- one queue for Discord and HTTP ---------------------------------------------------------------

async def test_http_and_discord_requests_share_one_queue_in_arrival_order(tmp_path, tiny_model):
    settings = bot_settings(tmp_path, tiny_model, api_keys=KEY)
    async with (FakeDiscord(watch_loggers=("discord", "zbot")) as fake, running_bot(fake, settings) as run,
                serving(run.core, bot_health(run.core, run.bot)) as client):
        health = await client.get("/healthz")
        assert health.status == 200 and (await health.json())["ready"] is True

        run.engine.gate.clear()
        first = await fake.slash("draw", {"prompt": "first, from discord", "size": "small"})
        await until(run.engine.started.is_set)
        over_http = asyncio.create_task(client.draw({"prompt": "second, over http", "size": "small"}))
        await until(lambda: run.core.executor.depth == 2)
        third = await fake.slash("draw", {"prompt": "third, from discord", "size": "small"})
        await until(lambda: run.core.executor.depth == 3)
        run.engine.gate.set()

        response = await over_http
        assert response.status == 200 and png_size(await response.read()) == (64, 64)
        await first.wait_original(finished, timeout=60)
        await third.wait_original(finished, timeout=60)
        await run.settle()
        rows = await run.core.store.query("SELECT id, source, prompt FROM generations ORDER BY started_at")
    assert [(r["source"], r["prompt"]) for r in rows] == [
        ("discord", "first, from discord"), ("http", "second, over http"), ("discord", "third, from discord")]
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)
    assert int(response.headers["X-Zbot-Job-Id"]) == rows[1]["id"]


# -- /openapi.json --------------------------------------------------------------------------------

async def test_openapi_describes_every_route_with_this_configurations_sizes(settings):
    async with open_core(settings, [FakeRenderer()]) as core, serving(core) as client:
        response = await client.get("/openapi.json")
        doc = await response.json()
    assert response.status == 200 and doc["openapi"].startswith("3.1")
    assert set(doc["paths"]) == {"/v1/images", "/v1/images/{id}/{operation}", "/healthz", "/metrics"}
    refine = doc["components"]["schemas"]["RefineRequest"]["properties"]
    assert set(refine) == {"image", "seed", "prompt", "size", "factor", "direction"} and refine["size"]["enum"] == ["square", "wide", None]
    request = doc["components"]["schemas"]["ImageRequest"]["properties"]
    assert request["size"]["enum"] == ["square", "wide", None] and request["prompt"]["maxLength"] == 1000
    assert request["seed"]["maximum"] == 2**32 - 1
    import openapi_spec_validator as validator  # a test dependency: missing, the test fails
    validator.validate(doc)


async def test_during_shutdown_requests_are_refused_and_no_job_is_left_behind(settings):
    renderer = FakeRenderer()
    renderer.gate.clear()
    async with open_core(with_keys(settings, KEY, OTHER_KEY), [renderer]) as core, serving(core) as client:
        running = asyncio.create_task(client.draw({"prompt": "running"}))
        await until(lambda: core.executor.position(1) == 0)
        waiting = asyncio.create_task(client.draw({"prompt": "waiting"}, key=OTHER_KEY))
        await until(lambda: core.executor.position(2) == 1)
        # What `zbot run` does on SIGTERM: take nothing new, then let the running render finish.
        core.service.close()
        stopping = asyncio.create_task(core.executor.shutdown(timeout=30))
        late = await client.draw({"prompt": "too late"})
        renderer.gate.set()
        await stopping
        finished, queued = await running, await waiting
        await core.service.drain()
        rows = [tuple(r) for r in await core.store.query("SELECT prompt, status FROM generations ORDER BY id")]
    assert late.status == 503 and int(late.headers["Retry-After"]) > 0
    assert "restarting" in (await late.json())["error"]
    assert finished.status == 200 and queued.status == 503
    # Nothing stays queued for a restart to draw for a caller who is gone.
    assert rows == [("running", "posted"), ("waiting", "failed")]
