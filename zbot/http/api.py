"""The HTTP server on the bot's own event loop: /healthz, /metrics, and POST /v1/images for the team's
other tools.

An image request is a front end like Discord: an API key stands for a user (with that user's rate
limits), the request goes through `Service.submit` into the same queue as Discord's, and the answer
is the PNG. The keys themselves are never stored or logged; each maps to a stable negative user id.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import math
import secrets
import unicodedata
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from aiohttp import web
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictStr,
    ValidationError,
    field_validator,
)

from zbot.core.jobs import (
    BadInput,
    DrawRequest,
    NotReady,
    Operation,
    QueueFull,
    RateLimited,
    Refused,
    RenderFailed,
    ShuttingDown,
    TooManyPending,
)
from zbot.core.service import Service
from zbot.core.uploads import MAX_BYTES
from zbot.http import forms
from zbot.http.openapi import openapi
from zbot.metrics import CONTENT_TYPE, Metrics

log = logging.getLogger(__name__)

Health = Callable[[], dict[str, bool]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_BODY = 64 * 1024
MAX_UPLOAD_BODY = MAX_BYTES * 4 // 3 + MAX_BODY  # a picture in base64 (a third larger) and the rest
SHUTDOWN_RETRY_S = 30
STOP_S = 5.0  # at shutdown, how long requests in flight may take to finish (zbot.run.worst_shutdown_s)

_BODY_HEADERS = {"content-type", "content-length"}
_SERVICE = web.AppKey("service", Service)
_HEALTH = web.AppKey("health", Callable)
_METRICS = web.AppKey("metrics", Metrics)
_KEYS = web.AppKey("keys", list)
_ADULT = web.AppKey("adult", frozenset)  # the users (keys) that are given flagged images too
_OPENAPI = web.AppKey("openapi", dict)


def _json_integer(value: Any) -> Any:
    """42.0 is an integer to JSON Schema too; 42.5, "42" and true are not (pydantic's lax mode takes them)."""
    if isinstance(value, (bool, str)):
        raise ValueError("Input should be a valid integer")  # noqa: TRY004 - pydantic wants ValueError
    return value


JsonInt = Annotated[int, BeforeValidator(_json_integer)]


class ImageRequest(BaseModel):
    """The body of POST /v1/images. Types are checked here; what is allowed (sizes, prompt length,
    blocked words, the seed's range) is the Service's to say, as for Discord."""

    model_config = ConfigDict(extra="forbid")

    prompt: StrictStr
    size: StrictStr | None = None
    seed: JsonInt | None = None
    count: JsonInt | None = None  # images of consecutive seeds; more than one: a JSON answer
    style: StrictStr | None = None  # a configured style's name; "": none; null: the default (ZBOT_DEFAULT_STYLE)
    image: StrictStr | None = None  # a picture of one's own to draw from, base64 (or a multipart file part)
    strength: Annotated[float, Field(gt=0, le=1)] | None = None  # with an image: how much is redrawn

    @field_validator("size")
    @classmethod
    def _not_empty(cls, size: str | None) -> str | None:
        if size == "":
            raise ValueError("give a named size, or null (or nothing) for the default")
        return size


    @field_validator("prompt")
    @classmethod
    def _no_control_characters(cls, prompt: str) -> str:
        # Anywhere in the prompt, as the OpenAPI pattern says (the Service looks inside the stripped one).
        if any(unicodedata.category(ch) == "Cc" and ch not in "\t\n\r" for ch in prompt):
            raise ValueError("contains control characters; remove them and try again")
        return prompt


class RefineRequest(BaseModel):
    """The body of POST /v1/images/{id}/{operation} (all optional but edit's prompt and size's size)."""

    model_config = ConfigDict(extra="forbid")

    image: JsonInt = 0  # which image of a grid, from 0
    seed: JsonInt | None = None  # variations: random when left out
    prompt: StrictStr | None = None  # edit: the new prompt
    size: StrictStr | None = None  # size: the named size to draw it at
    factor: float | None = None  # zoom: 2 or 1.5
    direction: StrictStr | None = None  # pan: left, right, up or down


# The operations on an image the HTTP API offers, by the last part of their path.
OPERATIONS = {"variations": Operation.VARY, "upscale": Operation.UPSCALE, "edit": Operation.EDIT,
              "size": Operation.RESIZE, "zoom": Operation.ZOOM, "pan": Operation.PAN}


def key_user_id(key: str) -> int:
    """The user an API key stands for: negative, so it never collides with a Discord snowflake, and
    derived from a hash, so the key itself never reaches the database."""
    digest = hashlib.sha256(b"zbot api key\0" + key.encode()).digest()
    return -(int.from_bytes(digest[:7], "big") + 1)


def build_app(service: Service, *, health: Health, metrics: Metrics) -> web.Application:
    """The aiohttp application over the service (every image request is one call to it); `health` gives
    /healthz's checks. Serve it with `start_http`."""
    app = web.Application(client_max_size=MAX_UPLOAD_BODY, middlewares=[_errors_as_json])
    settings = service.settings
    app[_SERVICE] = service
    app[_HEALTH] = health
    app[_METRICS] = metrics
    app[_KEYS] = [(secret.get_secret_value().encode(), key_user_id(secret.get_secret_value()))
                  for secret in settings.api_keys if secret.get_secret_value()]
    app[_ADULT] = frozenset(key_user_id(secret.get_secret_value()) for secret in settings.api_keys_adult)
    app[_OPENAPI] = openapi(settings)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/openapi.json", _openapi)
    app.router.add_post("/v1/images", _images)
    app.router.add_post("/v1/images/{id:[0-9]+}/{operation}", _refine)
    return app


async def start_http(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Listen on host:port (port 0: any free port; see `bound_port`). Raises OSError when it can't.
    Stop it with `await runner.cleanup()`."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=STOP_S)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    log.info("HTTP server on http://%s:%s (/healthz, /metrics, /v1/images)", host, bound_port(runner))
    return runner


def bound_port(runner: web.AppRunner) -> int:
    return runner.addresses[0][1]


# -- handlers -------------------------------------------------------------------------------------

async def _healthz(request: web.Request) -> web.Response:
    checks = request.app[_HEALTH]()
    missing = [name for name, ok in checks.items() if ok is False]  # other values only inform
    kept_bytes, budget = request.app[_SERVICE].kept_bytes()  # the database's disk: how full zbot makes it
    kept = {"bytes": kept_bytes, "budget_bytes": budget}
    return web.json_response({"ready": not missing, **checks, "kept_images": kept, "missing": missing},
                             status=503 if missing else 200)


async def _metrics(request: web.Request) -> web.Response:
    body = request.app[_METRICS].exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def _openapi(request: web.Request) -> web.Response:
    return web.json_response(request.app[_OPENAPI])


async def _images(request: web.Request) -> web.Response:
    user_id = _authenticate(request)
    picture = None
    if request.content_type == "multipart/form-data":
        fields, picture = await forms.multipart(request, MAX_BYTES)
        body = _validated(ImageRequest, fields)
    else:
        body = await _read_body(request, ImageRequest)
        if body.image is not None:
            try:
                picture = base64.b64decode(body.image, validate=True)
            except ValueError:
                return _error(422, "bad_input", "image: give the picture's file as base64.")
    draw = DrawRequest(user_id=user_id, prompt=body.prompt, size=body.size, seed=body.seed, count=body.count,
                       source="http", style=body.style, from_image=picture, strength=body.strength,
                       flagged_ok=user_id in request.app[_ADULT])
    return await _draw(request, draw)



async def _refine(request: web.Request) -> web.Response:
    """An operation on an image this key made: variations, upscale, edit (a new prompt, the same seed)
    or size (the same prompt and seed at another size). The answer is the new image, as for /v1/images."""
    user_id = _authenticate(request)
    operation = OPERATIONS.get(request.match_info["operation"])
    if operation is None:
        return _error(404, "not_found", f"No such operation; use one of: {', '.join(OPERATIONS)}.")
    body = await _read_body(request, RefineRequest, optional=True)
    service = request.app[_SERVICE]
    parent = await service.own_image(user_id, int(request.match_info["id"]))  # another key's are not this one's
    if parent is None:
        return _error(404, "not_found", "This key has made no image with that id.")
    if parent.count > 1 and user_id not in request.app[_ADULT] and await _held_back(service, parent, body.image):
        return _error(422, "image_blocked", "The safety check flagged that image of the grid, and this key may not "
                      "receive such images, so it can't be worked from.")
    if operation == Operation.EDIT and not (body.prompt or "").strip():
        return _error(422, "bad_input", "prompt: give the edited prompt.")
    if operation == Operation.RESIZE and not body.size:
        return _error(422, "bad_input", "size: give the named size to draw it at.")
    draw = DrawRequest(user_id=user_id, prompt=body.prompt or parent.prompt, size=body.size, seed=body.seed,
                       source="http", parent_id=parent.id, operation=operation, image=body.image,
                       factor=body.factor, direction=body.direction)
    lineage = {"X-Zbot-Parent-Id": str(parent.id), "X-Zbot-Operation": operation.value}
    return await _draw(request, draw, lineage)


async def _held_back(service: Service, grid, index: int) -> bool:
    """Whether image `index` of a grid is one the safety check flags (its JSON answer gave it no PNG)."""
    if not 0 <= index < grid.count:
        return False
    png = await service.kept_image(grid.id, index)
    if png is None:
        return False  # drawn again first, and the new image is checked like any other
    [verdict] = await service.check_kept([png])
    return verdict is not None and verdict.flagged


async def _draw(request: web.Request, draw: DrawRequest, headers: dict[str, str] | None = None) -> web.Response:
    service = request.app[_SERVICE]
    user_id = draw.user_id
    try:
        ticket = await service.submit(draw)
        result = await ticket.result()
    except Refused as refusal:
        return _refusal(refusal)
    except RenderFailed as failure:
        return _error(500, "render_failed", f"The image could not be drawn: {failure.reason}.")
    except ShuttingDown:
        return _error(503, "shutting_down", "zbot is restarting; send the request again.",
                      retry_after=SHUTDOWN_RETRY_S)
    adult = user_id in request.app[_ADULT]
    if all(picture.flagged for picture in result.pictures) and not adult:
        await service.withheld(result.job_id)
        return _error(422, "image_blocked", "The safety check flagged the image as adult content, and this key "
                      "may not receive such images; it still counts against the key's limits.")
    await service.delivered(result.job_id)  # handed over: the job is over
    if result.count > 1:
        return web.json_response({"job_id": result.job_id, "size": f"{result.width}x{result.height}",
                                  "steps": result.steps, "render_seconds": round(result.render_s, 3),
                                  "images": [_picture(p, adult) for p in result.pictures]})
    headers = {
        **(headers or {}),
        "X-Zbot-Job-Id": str(result.job_id),
        "X-Zbot-Seed": str(result.seed),
        "X-Zbot-Size": f"{result.width}x{result.height}",
        "X-Zbot-Steps": str(result.steps),
        "X-Zbot-Render-Seconds": f"{result.render_s:.3f}",
        "X-Zbot-Wait-Seconds": f"{result.wait_s:.3f}",
    }
    if result.verdict is not None:
        headers["X-Zbot-Safety-Score"] = f"{result.verdict.score:.4f}"
        headers["X-Zbot-Flagged"] = "true" if result.verdict.flagged else "false"
    return web.Response(body=result.png, content_type="image/png", headers=headers)


def _picture(picture, adult: bool) -> dict[str, Any]:
    """One image of a JSON answer; a flagged one without its PNG unless the key may have it."""
    out: dict[str, Any] = {"seed": picture.seed, "flagged": picture.flagged}
    if picture.verdict is not None:
        out["safety_score"] = picture.verdict.score
    out["png"] = None if picture.flagged and not adult else base64.b64encode(picture.png).decode("ascii")
    return out


def _authenticate(request: web.Request) -> int:
    keys = request.app[_KEYS]
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if not keys:
        raise _http_error(web.HTTPUnauthorized, "unauthorized", "No API keys are configured: the server's "
                          "owner sets them in ZBOT_API_KEYS.", headers={"WWW-Authenticate": "Bearer"})
    if scheme.lower() != "bearer" or not given.strip():
        raise _http_error(web.HTTPUnauthorized, "unauthorized", "Send an API key as "
                          "'Authorization: Bearer KEY'.", headers={"WWW-Authenticate": "Bearer"})
    candidate = given.strip().encode()
    user_id = None
    for key, key_user in keys:  # every key compared, in constant time: no hint of how close a guess was
        if hmac.compare_digest(candidate, key):
            user_id = key_user
    if user_id is None:
        log.info("HTTP: refused a request from %s with an unknown API key", request.remote)
        raise _http_error(web.HTTPUnauthorized, "unauthorized", "That API key is not valid.",
                          headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    return user_id


async def _read_body(request: web.Request, model: type[BaseModel], *, optional: bool = False) -> Any:
    """The JSON body as `model`; with `optional`, no body at all means every field's default."""
    if optional and not request.can_read_body:
        return model()
    if request.content_type != "application/json":
        raise _http_error(web.HTTPUnsupportedMediaType, "bad_request",
                          "Send a JSON body with 'Content-Type: application/json'.")
    try:
        data = await request.json()
    except ValueError:
        raise _http_error(web.HTTPBadRequest, "bad_request", "The body is not valid JSON.") from None
    if request.content_length is not None and request.content_length > MAX_BODY and not (
            isinstance(data, dict) and "image" in model.model_fields and isinstance(data.get("image"), str)):
        # Past the small bodies' cap: only a body that brings a picture may be larger.
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=request.content_length)
    return _validated(model, data)


def _validated(model: type[BaseModel], data: Any) -> Any:
    if not isinstance(data, dict):
        raise _http_error(web.HTTPUnprocessableEntity, "bad_input",
                          'The body must be a JSON object like {"prompt": "a red fox"}.')
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _http_error(web.HTTPUnprocessableEntity, "bad_input", _describe(exc, model)) from None


def _describe(exc: ValidationError, model: type[BaseModel]) -> str:
    problems = []
    for error in exc.errors()[:3]:
        where = ".".join(str(part) for part in error["loc"]) or "body"
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{where}: {message}" if error["type"] != "extra_forbidden"
                        else f"{where}: unknown field (allowed: {', '.join(model.model_fields)})")
    return "; ".join(problems) + "."


_REFUSAL_STATUS: list[tuple[type[Refused], int]] = [
    (BadInput, 422), (RateLimited, 429), (TooManyPending, 429), (QueueFull, 503), (NotReady, 503)]


def _refusal(refusal: Refused) -> web.Response:
    status = next((code for kind, code in _REFUSAL_STATUS if isinstance(refusal, kind)), 409)
    retry_after = None
    if refusal.retry_at is not None:
        retry_after = max(1, math.ceil((refusal.retry_at - datetime.now(UTC)).total_seconds()))
    return _error(status, refusal.kind, refusal.message, retry_after=retry_after)


def _error(status: int, code: str, message: str, *, retry_after: int | None = None) -> web.Response:
    body: dict[str, Any] = {"error": message, "code": code}
    headers = {}
    if retry_after is not None:
        body["retry_after"] = retry_after
        headers["Retry-After"] = str(retry_after)
    return web.json_response(body, status=status, headers=headers)


def _http_error(kind: type[web.HTTPException], code: str, message: str, **kwargs: Any) -> web.HTTPException:
    body = web.json_response({"error": message, "code": code}).text
    return kind(text=body, content_type="application/json", **kwargs)


@web.middleware
async def _errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error is JSON {"error", "code"}; an unexpected one is logged with its traceback and the
    client gets an id to quote, never the traceback."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.content_type == "application/json" or exc.status < 400:
            raise
        # aiohttp's own (404, 405 with its Allow header, 413): the same JSON shape as ours.
        response = _error(exc.status, exc.reason.lower().replace(" ", "_"), f"{exc.reason}.")
        response.headers.extend((k, v) for k, v in exc.headers.items() if k.lower() not in _BODY_HEADERS)
        return response
    except Exception:
        incident = secrets.token_hex(4)
        log.exception("HTTP %s %s failed (incident %s)", request.method, request.path, incident)
        return _error(500, "internal", f"Something went wrong on our side (incident {incident}).")
