"""The OpenAPI 3.1 description of zbot's HTTP server (served at /openapi.json), with this
configuration's sizes and limits."""

from __future__ import annotations

from typing import Any

from zbot.config import SEED_LIMIT, Settings

# Control characters other than tab, newline and carriage return; the Service refuses them too.
_CONTROL = "\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f"
# Not blank and no control characters, as an ECMA-262 regex (what JSON Schema uses).
PROMPT_PATTERN = f"^[^{_CONTROL}]*[^\\s{_CONTROL}][^{_CONTROL}]*$"



def openapi(settings: Settings) -> dict[str, Any]:
    """An OpenAPI 3.1 description of this server, with this configuration's sizes and limits."""
    error = {"$ref": "#/components/schemas/Error"}
    retry = {"Retry-After": {"description": "Seconds until a retry may succeed.",
                             "schema": {"type": "integer", "minimum": 1}}}

    def answer(description: str, headers: dict | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": error}}}
        if headers:
            out["headers"] = headers
        return out

    header = {"schema": {"type": "string"}}
    responses = {
        "200": {"description": "The image (count 1), or the images as JSON (count 2 or more).",
                "content": {"image/png": {"schema": {"type": "string", "contentMediaType": "image/png"}},
                            "application/json": {"schema": {"$ref": "#/components/schemas/Images"}}},
            "headers": {"X-Zbot-Seed": {"description": "The seed; send it back to draw the "
                                        "same image again.", "schema": {"type": "integer"}},
                        "X-Zbot-Job-Id": {"schema": {"type": "integer"}},
                        "X-Zbot-Size": header, "X-Zbot-Steps": header,
                        "X-Zbot-Render-Seconds": header, "X-Zbot-Wait-Seconds": header,
                        "X-Zbot-Safety-Score": {"description": "The safety check's score, 0-1 "
                                                "(absent when the check is off).", "schema": header["schema"]},
                        "X-Zbot-Flagged": {"description": "true when the check flagged the image "
                                           "(only keys in ZBOT_API_KEYS_ADULT get those).",
                                           "schema": header["schema"]}}},
        "400": answer("The body is not JSON."),
        "401": answer("No valid API key."),
        "413": answer("The body is larger than 64 KiB."),
        "415": answer("The body is not application/json."),
        "422": answer("A field is missing, of the wrong type, or not allowed (the message "
                      "says which); or, with code image_blocked, the safety check flagged the image "
                      "and this key may not receive it (it still counts against the key's limits)."),
        "429": answer("This key's rate limit, or its number of unfinished images, is reached.",
                      retry),
        "500": answer("The render failed."),
        "503": answer("The queue is full or zbot is restarting.", retry),
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "zbot", "version": "1",
                 "description": "Images from Z-Image-Turbo, through the same queue and limits as Discord's."},
        "paths": {
            "/v1/images": {"post": {
                "operationId": "createImage",
                "summary": "Draw one image and return it as a PNG.",
                "description": "Waits until the image is drawn; the request joins the queue Discord's use. "
                               "Each API key is rate-limited like one Discord user.",
                "security": [{"bearer": []}],
                "requestBody": {"required": True, "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/ImageRequest"}},
                    # The same fields as form fields, the picture as a file part named image.
                    "multipart/form-data": {"schema": {"$ref": "#/components/schemas/ImageRequest"},
                                            "encoding": {"image": {"contentType": "image/*"}}}}},
                "responses": responses,
            }},
            "/v1/images/{id}/{operation}": {"post": {
                "operationId": "refineImage",
                "summary": "Make a new image from one this key made: a variation, an upscale, an edited prompt "
                           "or another size.",
                "description": "variations: image to image with a new seed (strength "
                               f"{settings.vary_strength}); upscale: the image enlarged 2x per side (at most "
                               f"2048 on the longer side) and redrawn at strength {settings.upscale_strength}, "
                               f"counting {settings.upscale_weight} images; edit: the new prompt with the same seed "
                               "and size; size: the same prompt and seed at another named size; zoom: the image "
                               "shrunk by factor (2 or 1.5) into its own size and the border painted, a new seed; "
                               "pan: the canvas grown by half towards direction and the new strip painted (refused "
                               "where that side is at 2048), counted at its size. The answer is "
                               "the new image, as for createImage, with X-Zbot-Parent-Id and X-Zbot-Operation.",
                "security": [{"bearer": []}],
                "parameters": [
                    {"name": "id", "in": "path", "required": True,
                     "schema": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
                     "description": "The image's X-Zbot-Job-Id (or job_id)."},
                    {"name": "operation", "in": "path", "required": True,
                     "schema": {"type": "string", "enum": ["variations", "upscale", "edit", "size", "zoom", "pan"]}}],
                "requestBody": {"required": False, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/RefineRequest"}}}},
                "responses": {**responses, "404": answer("No image of this key's has that id, or no such "
                                                         "operation.")},
            }},
            "/healthz": {"get": {
                "operationId": "health",
                "summary": "Ready when the model is loaded and Discord is connected.",
                "responses": {"200": {"description": "Ready.", "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Health"}}}},
                    "503": {"description": "Not ready; `missing` says what is.", "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}}},
            }},
            "/metrics": {"get": {
                "operationId": "metrics", "summary": "Prometheus metrics.",
                "responses": {"200": {"description": "Prometheus text format.",
                                      "content": {"text/plain": {"schema": {"type": "string"}}}}},
            }},
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "One of the keys in ZBOT_API_KEYS."}},
            "schemas": {
                "ImageRequest": {
                    "type": "object", "additionalProperties": False, "required": ["prompt"],
                    "properties": {
                        "prompt": {"type": "string", "minLength": 1, "maxLength": settings.max_prompt_chars,
                                   "pattern": PROMPT_PATTERN,
                                   "description": "What to draw: not blank, no control characters but tab "
                                   "and newline."},
                        "size": {"type": ["string", "null"], "enum": [*settings.sizes, None],
                                 "description": "A named size: " + ", ".join(
                                     f"{name} ({size})" for name, size in settings.sizes.items())
                                 + f". Default {settings.default_size}."},
                        "seed": {"type": ["integer", "null"], "minimum": 0, "maximum": SEED_LIMIT - 1,
                                 "description": "The same prompt, size and seed draw the same image; "
                                 "random when left out."},
                        "count": {"type": ["integer", "null"], "minimum": 1, "maximum": settings.max_count,
                                  "description": f"How many images, of the seeds seed, seed + 1, ... (default "
                                  f"{settings.default_count}); each counts against the key's limits. More than one "
                                  "is answered in JSON (Images)."},
                        "style": {"type": ["string", "null"], "enum": [*settings.styles, "", None],
                                  "description": "A style: " + (", ".join(
                                      f"{name} ({style.description})" if style.description else name
                                      for name, style in settings.styles.items()) or "none configured")
                                  + f". Default {settings.default_style or 'none'}; an empty string: none. Refining "
                                  "an image keeps its style."},
                        "image": {"type": ["string", "null"], "contentEncoding": "base64",
                                  "description": "A picture of your own to draw from (PNG, JPEG, WebP or GIF, at most "
                                  "16 MB and 16 megapixels), drawn at the named size closest to its shape unless size "
                                  "says; in multipart/form-data, a file part."},
                        "strength": {"type": ["number", "null"], "exclusiveMinimum": 0, "maximum": 1,
                                     "description": "With an image: how much of it is redrawn (default "
                                     f"{settings.vary_strength})."},
                    },
                },
                "RefineRequest": {
                    "type": "object", "additionalProperties": False,
                    "properties": {
                        "image": {"type": "integer", "minimum": 0, "maximum": settings.max_count - 1, "default": 0,
                                  "description": "Which image of a grid (count 2 or more) to start from, from 0."},
                        "seed": {"type": ["integer", "null"], "minimum": 0, "maximum": SEED_LIMIT - 1,
                                 "description": "variations: the new seed (random when left out)."},
                        "prompt": {"type": ["string", "null"], "maxLength": settings.max_prompt_chars,
                                   "description": "edit: the edited prompt (required there)."},
                        "size": {"type": ["string", "null"], "enum": [*settings.sizes, None],
                                 "description": "size: the named size to draw it at (required there)."},
                        "factor": {"type": ["number", "null"], "enum": [2, 1.5, None],
                                   "description": "zoom: how much the image shrinks (required there)."},
                        "direction": {"type": ["string", "null"], "enum": ["left", "right", "up", "down", None],
                                      "description": "pan: which way the canvas grows (required there)."},
                    },
                },
                "Images": {"type": "object", "required": ["job_id", "images"], "properties": {
                    "job_id": {"type": "integer"}, "size": {"type": "string"}, "steps": {"type": "integer"},
                    "render_seconds": {"type": "number"},
                    "images": {"type": "array", "items": {
                        "type": "object", "required": ["seed", "flagged", "png"], "properties": {
                            "seed": {"type": "integer", "description": "Draws this image alone again."},
                            "flagged": {"type": "boolean", "description": "The safety check flagged it."},
                            "safety_score": {"type": "number"},
                            "png": {"type": ["string", "null"], "contentEncoding": "base64",
                                    "contentMediaType": "image/png",
                                    "description": "The PNG; null for a flagged image this key may not have."}}}}}},
                "Error": {"type": "object", "required": ["error", "code"], "properties": {
                    "error": {"type": "string", "description": "A sentence to show a person."},
                    "code": {"type": "string", "description": "bad_input, rate_limited, too_many_pending, "
                             "queue_full, unauthorized, render_failed, image_blocked, ..."},
                    "retry_after": {"type": "integer", "description": "Seconds, as in Retry-After."}}},
                "Health": {"type": "object", "required": ["ready", "missing"], "properties": {
                    "ready": {"type": "boolean"},
                    "model": {"type": "boolean", "description": "The model is loaded."},
                    "gateway": {"type": "boolean", "description": "Connected to Discord's gateway."},
                    "accepting": {"type": "boolean", "description": "Taking requests (false while it "
                                  "shuts down)."},
                    "safety": {"type": "string", "description": "The safety check that inspects every image "
                               "(vit, nudenet), or off."},
                    "missing": {"type": "array", "items": {"type": "string"}}}},
            },
        },
    }
